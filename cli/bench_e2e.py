"""`x402-mint bench e2e`: N purchases through the real HTTP ingress on the dev chain with 1 s blocks,
measured until every payment is completed and every mint confirmed."""

from __future__ import annotations

import os
import random
import statistics
import time
from collections import deque
from typing import Any

import httpx
import psycopg
import typer
from eth_account import Account
from psycopg.rows import dict_row

from cli.buyer import answer_402
from cli.devnet import anvil, deploy
from shared import chain
from shared.queries import q


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def e2e(state: dict[str, Any], token: str, payments: int, buyers: int, mixed: bool, block_time: int) -> None:
    w3 = chain.connect(state["rpc_url"])
    rng = random.Random(402)
    keys = ["0x" + os.urandom(32).hex() for _ in range(buyers)]
    typer.echo(f"funding {buyers} buyers ...")
    deploy.fund(
        w3,
        anvil.dev_account(anvil.DEPLOYER).address,
        state["usdc"]["address"],
        [Account.from_key(k).address for k in keys],
        10_000 * 10**6,
    )
    quantities = [rng.randint(1, 10) if mixed else 1 for _ in range(payments)]
    with httpx.Client(base_url=state["api_url"], timeout=30) as http:
        offers = {n: http.post(f"/api/mint/{token}", json={"quantity": n}) for n in set(quantities)}
        typer.echo(f"signing {payments} payments ...")
        signed = deque(
            (n, *answer_402(offers[n].headers, offers[n].json(), keys[i % buyers])[:2])
            for i, n in enumerate(quantities)
        )
        w3.provider.make_request("evm_setIntervalMining", [block_time])  # type: ignore[arg-type]
        ids: list[str] = []
        try:
            started = time.time()
            with typer.progressbar(length=payments, label="accepted (202)") as bar:
                while signed:
                    quantity, name, header = signed.popleft()
                    reply = http.post(
                        f"/api/mint/{token}", json={"quantity": quantity}, headers={name: header}
                    )
                    if reply.status_code == 202:
                        ids.append(reply.json()["paymentQueueId"])
                        bar.update(1)
                    elif reply.status_code == 429:  # the buyer's open payments are capped: come back later
                        signed.append((quantity, name, header))
                        time.sleep(0.01)
                    else:
                        raise RuntimeError(f"unexpected {reply.status_code}: {reply.text}")
            _wait(state["database_url"], ids, sum(quantities))
        finally:
            w3.provider.make_request("evm_setIntervalMining", [0])  # type: ignore[arg-type]
            w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    _report(state["database_url"], ids, started, mixed)


def _wait(database_url: str, ids: list[str], mints: int) -> None:
    with (
        psycopg.connect(database_url, row_factory=dict_row, autocommit=True) as conn,
        typer.progressbar(length=mints, label="minted on chain") as bar,
    ):
        done = 0
        while True:
            row = conn.execute(q("e2e_progress"), {"ids": ids}).fetchone()
            assert row is not None
            bar.update(int(row["minted"]) - done)
            done = int(row["minted"])
            if row["payments_done"] == len(ids) and done >= mints:
                return
            time.sleep(1)


def _report(database_url: str, ids: list[str], started: float, mixed: bool) -> None:
    with psycopg.connect(database_url, row_factory=dict_row, autocommit=True) as conn:
        rows = conn.execute(q("e2e_latencies"), {"ids": ids}).fetchall()
        txs = {r["purpose"]: r for r in conn.execute(q("e2e_transactions"), {"ids": ids}).fetchall()}
    done = [r for r in rows if r["status"] == "completed"]
    end_paid = max(float(r["paid_at"]) for r in done)
    end_minted = max(float(r["minted_at"]) for r in done)
    mints = sum(r["quantity"] for r in done)
    paid = [float(r["paid_at"]) - float(r["accepted_at"]) for r in done]
    minted = [float(r["minted_at"]) - float(r["accepted_at"]) for r in done]
    kind = "mixed quantities 1-10" if mixed else "quantity 1"
    typer.echo(f"e2e ({kind}): {len(done)}/{len(rows)} payments completed, {mints} mints confirmed")
    typer.echo(
        f"  payments/min sustained: {len(done) / (end_paid - started) * 60:.0f}   "
        f"mints/min sustained: {mints / (end_minted - started) * 60:.0f}"
    )
    typer.echo(
        f"  202 → payment confirmed: p50 {_pct(paid, 50):.1f} s  p95 {_pct(paid, 95):.1f} s;   "
        f"202 → tokens on chain: p50 {_pct(minted, 50):.1f} s  p95 {_pct(minted, 95):.1f} s"
    )
    pay, mint = txs.get("payment", {}), txs.get("mint", {})
    typer.echo(
        f"  transactions: {pay.get('txs', 0)} payment, {mint.get('txs', 0)} mint;  gas per payment "
        f"{int(pay.get('gas') or 0) / max(1, len(done)):.0f}, gas per minted unit "
        f"{int(mint.get('gas') or 0) / max(1, mints):.0f} (mean latency to tokens "
        f"{statistics.fmean(minted):.1f} s)"
    )
