"""Operator commands: tokens on sale and the monitoring figures."""

from __future__ import annotations

from typing import Any

import psycopg
import typer
from psycopg.rows import dict_row

from cli.settings import operator_settings
from shared import chain
from shared.db.queries import SQL_DIR, parse_blocks, q

token_app = typer.Typer(help="Tokens on sale.", no_args_is_help=True)


@token_app.command("add")
def token_add(
    address: str, description: str = typer.Option("", help="Shown in the x402 402 answer.")
) -> None:
    """Register (or refresh) a deployed MintToken: its terms are read from its contract."""
    from cli.devnet.deploy import read_token, register_token

    settings = operator_settings()
    terms = read_token(chain.connect(settings.rpc_url), address)
    if terms["chain_id"] != settings.chain_id:
        raise typer.BadParameter(f"the node is on chain {terms['chain_id']}, CHAIN_ID is {settings.chain_id}")
    terms["description"] = description
    register_token(settings.database_url, terms)
    typer.echo(
        f"registered {terms['symbol']} at {terms['address']}: price {terms['price_per_mint']} "
        f"(asset {terms['asset']}), {terms['mint_amount']} per mint, max {terms['max_mint_count']}"
    )
    for warning in refund_warnings(chain.connect(settings.rpc_url), address, settings.refund_keys):
        typer.echo(f"warning: {warning}", err=True)


def refund_warnings(w3: Any, address: str, keys: tuple[str, ...]) -> list[str]:
    """What would keep refunds of this token from going out (an older MintToken without refund(), or
    refund keys without REFUNDER_ROLE)."""
    from web3 import Web3

    from shared.chain.contracts import load_artifact

    token = w3.eth.contract(address=Web3.to_checksum_address(address), abi=load_artifact("MintToken").abi)
    try:
        role = token.functions.REFUNDER_ROLE().call()
    except Exception:
        return ["this MintToken has no refund(): money owed for it cannot be refunded on chain"]
    return [
        f"refund key {account.address} lacks REFUNDER_ROLE: grant it, or refunds of this token fail"
        for account in (chain.relayer(key) for key in keys)
        if not token.functions.hasRole(role, account.address).call()
    ]


@token_app.command("list")
def token_list() -> None:
    """The tokens on sale."""
    with psycopg.connect(operator_settings().database_url, row_factory=dict_row) as conn:
        for row in conn.execute(q("list_tokens")):
            typer.echo(
                f"{row['address']}  {row['symbol']:<8} price={row['price_per_mint']} "
                f"mint_amount={row['mint_amount']} max={row['max_mint_count']} asset={row['asset']}"
            )


def monitoring_queries() -> dict[str, str]:
    return parse_blocks((SQL_DIR / "monitoring.sql").read_text())


def stats() -> None:
    """Queue depth by status, payments per minute (last 5 min), stuck payments, paid-but-not-minted."""
    queries = monitoring_queries()
    with psycopg.connect(operator_settings().database_url) as conn:
        for name, sql in queries.items():
            rows = conn.execute(sql).fetchall()
            typer.echo(f"== {name.replace('_', ' ')}")
            if not rows:
                typer.echo("   (none)")
            for row in rows:
                typer.echo("   " + "  ".join(str(v) for v in row))


def requeue(item_id: str = typer.Argument(..., help="A payment id, or a mint id (mint_queue.id).")) -> None:
    """Send failed work back: a failed payment to payment-sender (its pre-flight asks the chain again),
    or the failed mints of a payment (or one failed mint) to mint-sender with fresh attempts."""
    import uuid

    try:
        key = uuid.UUID(item_id)
    except ValueError as exc:
        raise typer.BadParameter("an id is a UUID") from exc
    with psycopg.connect(operator_settings().database_url) as conn:
        payments = conn.execute(q("requeue_payment"), {"id": key}).fetchall()
        mints = conn.execute(q("requeue_mints"), {"id": key}).fetchall()
    if not payments and not mints:
        typer.echo(f"nothing to requeue: {item_id} is not a failed payment nor has failed mints", err=True)
        raise typer.Exit(1)
    typer.echo(f"requeued {len(payments)} payment(s) and {len(mints)} mint(s)")


def archive(
    older_than_days: int = typer.Option(30, "--older-than-days", help="Only rows finished this long ago."),
    batch: int = typer.Option(5000, help="Payments moved per transaction."),
) -> None:
    """Move finished payments (and their mints) older than the cut-off to the archive tables."""
    total = 0
    with psycopg.connect(operator_settings().database_url) as conn:
        while True:
            with conn.transaction():
                moved = len(
                    conn.execute(q("archive_finished"), {"days": older_than_days, "limit": batch}).fetchall()
                )
            total += moved
            if moved < batch:
                break
    typer.echo(f"archived {total} finished payment(s) older than {older_than_days} day(s), with their mints")


def metrics(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (beyond loopback: set METRICS_TOKEN)."),
    port: int = typer.Option(9402, help="Port of /metrics."),
) -> None:
    """Serve the Prometheus metrics of this host's processes (PROMETHEUS_MULTIPROC_DIR) and the
    database's figures, for a host that runs stages but no API (the API serves the same at /metrics)."""
    from dataclasses import replace

    import uvicorn

    from api.app import create_exporter
    from shared.logs import stdlib_logging_config

    settings = replace(operator_settings(), api_host=host)
    uvicorn.run(
        create_exporter(settings),
        host=host,
        port=port,
        access_log=False,
        log_config=stdlib_logging_config(settings.log_level, settings.log_format, component="metrics"),
    )
