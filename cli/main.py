"""`x402-mint`: the one command for operators, supervisord programs and developers."""

from __future__ import annotations

import threading
from enum import StrEnum

import typer

from cli import bench, demo, dev, money, ops
from cli.settings import operator_settings
from shared.config import load_settings
from shared.db.migrations import migrate
from shared.logs import configure_logging

app = typer.Typer(
    help="Sell freshly minted tokens for USDC paid over x402: pay first, mint after.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(ops.token_app, name="token")
app.add_typer(dev.app, name="dev")
app.add_typer(bench.app, name="bench")
app.command("stats")(ops.stats)
app.command("requeue")(ops.requeue)
app.command("archive")(ops.archive)
app.command("metrics")(ops.metrics)
app.command("resolve")(money.resolve)
app.command("refund")(money.refund)
app.command("demo")(demo.demo)


class StageName(StrEnum):
    payment_sender = "payment-sender"
    confirmer = "confirmer"
    mint_sender = "mint-sender"
    refund_sender = "refund-sender"


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply the numbered migrations in sql/migrations that are not applied yet."""
    settings = operator_settings()
    configure_logging(settings.log_level, "console")
    applied = migrate(settings.database_url)
    typer.echo(f"applied {len(applied)} migration(s): {applied}" if applied else "database is up to date")


@app.command("api")
def api() -> None:
    """Serve the x402 ingress with uvicorn (API_HOST, API_PORT, API_WORKERS)."""
    from api.server import serve

    serve(load_settings())


@app.command("worker")
def worker(stage: StageName) -> None:
    """Run one pipeline stage until SIGTERM (then drain within DRAIN_SECONDS). Started while the
    database or the node is down, it waits for them (with backoff) instead of exiting."""
    from shared.stage import install_stop_handlers, run_stage, start_when_ready
    from workers import confirmer, mint_sender, payment_sender, refund_sender

    modules = {
        StageName.payment_sender: payment_sender,
        StageName.confirmer: confirmer,
        StageName.mint_sender: mint_sender,
        StageName.refund_sender: refund_sender,
    }
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format, component=stage.value)
    stop = threading.Event()
    install_stop_handlers(stop, settings.drain_seconds)
    started = start_when_ready(settings, modules[stage].create, stop)
    if started is None:
        return  # stopped while waiting
    runtime, instance = started
    try:
        run_stage(instance, settings.database_url, stop, on_tick=lambda: runtime.report_health(stage.value))
    finally:
        runtime.close()


if __name__ == "__main__":
    app()
