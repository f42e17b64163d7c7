"""`x402-mint bench …`: measured figures against the running dev environment (`x402-mint dev up`).

Numbers live here, never in tests. Signing happens before the clock starts.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
import typer

from cli.buyer import answer_402
from cli.devnet.paths import DEVNET_FILE, PROJECT_ROOT

app = typer.Typer(help="Benchmarks against the running dev environment.", no_args_is_help=True)


def _percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def _signer(client: httpx.Client, token: str, quantity: int) -> Callable[[str], tuple[str, str]]:
    """Sign payments for this offer as a wallet would (v2 when offered, else v1): key → (header, value)."""
    reply = client.post(f"/api/mint/{token}", json={"quantity": quantity})

    def sign(private_key: str) -> tuple[str, str]:
        name, value, _ = answer_402(reply.headers, reply.json(), private_key)
        return name, value

    return sign


@app.command("latency")
def latency(requests: int = typer.Option(1000, help="Sequential valid purchases to send.")) -> None:
    """202 latency of sequential valid payments over one keep-alive connection (p50/p99/max).
    Each payment is signed by a fresh key (no per-payer cap applies; those buyers hold no USDC, so
    payment-sender's pre-flight later fails them, releasing their reservations)."""
    from cli.dev import dev_state

    state = dev_state()
    token = bench_token(state)
    with httpx.Client(base_url=state["api_url"], timeout=10.0) as client:
        sign = _signer(client, token, 1)
        typer.echo(f"signing {requests} payments, each by a fresh key ...")
        headers = [sign("0x" + os.urandom(32).hex()) for _ in range(requests)]
        samples: list[float] = []
        statuses: dict[int, int] = {}
        for name, header in headers:
            started = time.perf_counter()
            reply = client.post(f"/api/mint/{token}", json={"quantity": 1}, headers={name: header})
            samples.append((time.perf_counter() - started) * 1000)
            statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1
    typer.echo(f"{requests} sequential POST /api/mint (1 connection): statuses {statuses}")
    typer.echo(
        f"  202 latency ms: p50 {_percentile(samples, 50):.2f}  p99 {_percentile(samples, 99):.2f}  "
        f"max {max(samples):.2f}  mean {statistics.fmean(samples):.2f}"
    )


@app.command("settle")
def settle(quantity: int = typer.Option(10, help="Mints in the purchase.")) -> None:
    """Time from 202 to payment completed and to all mints completed, for one purchase."""
    from cli.dev import dev_state

    state = dev_state()
    token = state["tokens"][0]["address"]
    with httpx.Client(base_url=state["api_url"], timeout=10.0) as client:
        name, header = _signer(client, token, quantity)(state["payers"][-1]["private_key"])
        reply = client.post(f"/api/mint/{token}", json={"quantity": quantity}, headers={name: header})
        accepted = time.perf_counter()
        payment_id = reply.json()["paymentQueueId"]
        paid_at = None
        while time.perf_counter() - accepted < 120:
            body = client.get(f"/api/payment/{payment_id}").json()
            if body["status"] == "completed" and paid_at is None:
                paid_at = time.perf_counter()
            if body["status"] == "failed":
                raise RuntimeError(f"payment failed: {body['error']}")
            mints = body["result"]["mints"]
            if paid_at and mints and all(m["status"] == "completed" for m in mints):
                done = time.perf_counter()
                typer.echo(
                    f"purchase of {quantity}: 202 → payment completed {(paid_at - accepted) * 1000:.0f} ms, "
                    f"202 → all {len(mints)} mints completed {(done - accepted) * 1000:.0f} ms"
                )
                return
            time.sleep(0.02)
    raise typer.Exit(1)


@app.command("ingress")
def ingress() -> None:
    """202 throughput and latency at 1, 16 and 1,000 connections (wrk), against /healthz."""
    from cli import bench_ingress
    from cli.dev import SUPERVISORD_CONF, dev_state

    state = dev_state()
    supervisorctl = [str(PROJECT_ROOT / ".venv" / "bin" / "supervisorctl"), "-c", str(SUPERVISORD_CONF)]
    bench_ingress.ingress(state, bench_token(state), supervisorctl)


def bench_token(state: dict[str, Any]) -> str:
    """A MintToken just for benchmarks (a billion mints), deployed and registered once per dev chain."""
    from cli.devnet import anvil, deploy
    from shared import chain

    if state.get("bench_token"):
        return str(state["bench_token"])
    w3 = chain.connect(state["rpc_url"])
    token = deploy.deploy_token(
        w3,
        anvil.dev_account(anvil.DEPLOYER).address,
        state["usdc"]["address"],
        minter=anvil.dev_account(anvil.MINT_RELAYER).address,
        symbol="BENCH",
        max_mint_count=10**9,
    )
    deploy.register_token(state["database_url"], deploy.read_token(w3, token.address))
    state["bench_token"] = token.address
    DEVNET_FILE.write_text(json.dumps(state, indent=2) + "\n")
    return token.address


@app.command("growth")
def growth(rows: int = typer.Option(1_000_000, help="Finished payments (and mints) to add.")) -> None:
    """Claim and status query times on live work alone, then with a million finished rows."""
    from cli import bench_growth
    from cli.dev import dev_state

    server = dev_state()["database_url"].rsplit("/", 1)[0] + "/postgres"
    bench_growth.growth(server, rows)


@app.command("e2e")
def e2e(
    payments: int = typer.Option(3000, help="Purchases to make."),
    buyers: int = typer.Option(400, help="Funded buyer wallets (each has at most 10 open payments)."),
    quantity: int = typer.Option(1, min=1, help="Quantity of every purchase."),
    mixed: bool = typer.Option(False, help="Quantities 1-10 (random, fixed seed) instead of --quantity."),
    rate: float = typer.Option(
        0, min=0, help="Payments per second, paced (open loop); 0 = all at once, as fast as accepted."
    ),
    block_time: int = typer.Option(1, help="Seconds per block while it runs."),
    copies: int = typer.Option(1, min=1, max=8, help="Processes of each stage (scale-out)."),
    clients: int = typer.Option(16, min=1, help="Connections sending at once when unpaced."),
) -> None:
    """Purchases through the HTTP ingress until every mint is on chain: rates, latencies, gas, the
    chain's gas ceiling, and CPU per payment of each process group."""
    from cli import bench_cpu, bench_e2e
    from cli.dev import ANVIL_PID, SUPERVISORD_CONF, dev_state
    from cli.devnet.copies import more_copies

    state = dev_state()
    supervisorctl = [str(PROJECT_ROOT / ".venv" / "bin" / "supervisorctl"), "-c", str(SUPERVISORD_CONF)]
    with more_copies(bench_cpu.STAGES, copies - 1) as extra:
        if copies > 1:
            typer.echo(f"{copies} processes of each stage ({copies - 1} more beside supervisord's)")
        node = int(ANVIL_PID.read_text()) if ANVIL_PID.exists() else None
        groups = bench_cpu.discover(supervisorctl, state["database_url"], node, extra)
        bench_e2e.e2e(
            state,
            bench_token(state),
            payments,
            buyers,
            quantity=quantity,
            mixed=mixed,
            rate=rate,
            block_time=block_time,
            groups=groups,
            clients=clients,
        )
