"""`x402-mint bench e2e`: N purchases through the real HTTP ingress on the dev chain with 1 s blocks,
measured until every payment is completed and every mint confirmed."""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import typer
from eth_account import Account
from psycopg.rows import dict_row
from web3 import Web3

from cli.bench_cpu import Groups, report
from cli.buyer import answer_402
from cli.devnet import anvil, deploy
from shared import chain
from shared.chain.contracts import load_artifact
from shared.db.queries import q
from shared.settlement.payment_calls import transfer_args
from shared.x402 import decode_payment_header, decode_payment_signature_header


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def e2e(
    state: dict[str, Any],
    token: str,
    payments: int,
    buyers: int,
    *,
    quantity: int,
    mixed: bool,
    rate: float,
    block_time: int,
    groups: Groups | None = None,
    clients: int = 16,
) -> None:
    """`rate` > 0 paces submissions (an open loop at that many payments/s); 0 sends them as fast as
    they are accepted, from `clients` connections at once.
    With `groups`, the CPU each process group spent is reported per payment."""
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
    quantities = [rng.randint(1, 10) if mixed else quantity for _ in range(payments)]
    with httpx.Client(base_url=state["api_url"], timeout=30) as http:
        offers = {n: http.post(f"/api/mint/{token}", json={"quantity": n}) for n in set(quantities)}
        typer.echo(f"signing {payments} payments ...")
        signed = deque(
            (n, *answer_402(offers[n].headers, offers[n].json(), keys[i % buyers])[:2])
            for i, n in enumerate(quantities)
        )
        reference = _reference_gas(w3, state, token, keys[0], offers[quantities[0]])
        w3.provider.make_request("evm_setIntervalMining", [block_time])  # type: ignore[arg-type]
        ids: list[str] = []
        try:
            cpu_before = groups.cpu_seconds() if groups else {}
            started = time.time()
            with typer.progressbar(length=payments, label="accepted (202)") as bar:
                lock = threading.Lock()
                turned_away: Counter[str] = Counter()

                def send(client: httpx.Client, paced: bool) -> None:
                    while True:
                        with lock:
                            if not signed:
                                return
                            if paced:  # open loop: the i-th payment goes out at started + i / rate
                                time.sleep(max(0.0, started + len(ids) / rate - time.time()))
                            quantity, name, header = signed.popleft()
                        reply = client.post(
                            f"/api/mint/{token}", json={"quantity": quantity}, headers={name: header}
                        )
                        with lock:
                            if reply.status_code == 202:
                                ids.append(reply.json()["paymentQueueId"])
                                bar.update(1)
                            elif reply.status_code in (429, 503):  # capped payer, or busy: again later
                                signed.append((quantity, name, header))
                                turned_away[reply.json()["reason"]] += 1
                            else:
                                raise RuntimeError(f"unexpected {reply.status_code}: {reply.text}")
                        if reply.status_code != 202:  # as a buyer's client does: after Retry-After
                            time.sleep(float(reply.headers.get("Retry-After", 0.01)))

                if rate > 0:
                    send(http, paced=True)
                else:  # unpaced: `clients` buyers' programs at once, each on its own connection
                    with ThreadPoolExecutor(clients) as pool:
                        futures = [pool.submit(_with_client, state["api_url"], send) for _ in range(clients)]
                        for future in futures:
                            future.result()
            _wait(state["database_url"], ids, sum(quantities))
            cpu_after = groups.cpu_seconds() if groups else {}
        finally:
            w3.provider.make_request("evm_setIntervalMining", [0])  # type: ignore[arg-type]
            w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    per_minute = _report(
        state["database_url"], ids, started, "mixed quantities 1-10" if mixed else f"quantity {quantity}"
    )
    typer.echo(f"  turned away, then sent again after Retry-After: {dict(turned_away) or 'none'}")
    gas_per_purchase = _report_gas(state["database_url"], ids, reference)
    _report_ceiling(w3, per_minute, gas_per_purchase, block_time)
    for line in report(cpu_before, cpu_after, len(ids)) if groups else []:
        typer.echo(line)


def _with_client(api_url: str, send: Any) -> None:
    with httpx.Client(base_url=api_url, timeout=30) as client:
        send(client, False)


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


def _report(database_url: str, ids: list[str], started: float, kind: str) -> float:
    """Prints rates and latencies; returns purchases delivered per minute (every token on chain)."""
    with psycopg.connect(database_url, row_factory=dict_row, autocommit=True) as conn:
        rows = conn.execute(q("e2e_latencies"), {"ids": ids}).fetchall()
    done = [r for r in rows if r["status"] == "completed"]
    end_paid = max(float(r["paid_at"]) for r in done)
    end_minted = max(float(r["minted_at"]) for r in done)
    mints = sum(r["quantity"] for r in done)
    paid = [float(r["paid_at"]) - float(r["accepted_at"]) for r in done]
    minted = [float(r["minted_at"]) - float(r["accepted_at"]) for r in done]
    typer.echo(f"e2e ({kind}): {len(done)}/{len(rows)} payments completed, {mints} mints confirmed")
    typer.echo(
        f"  payments/min sustained: {len(done) / (end_paid - started) * 60:.0f}   "
        f"mints/min sustained: {mints / (end_minted - started) * 60:.0f}"
    )
    typer.echo(
        f"  202 → payment confirmed: p50 {_pct(paid, 50):.1f} s  p95 {_pct(paid, 95):.1f} s;   "
        f"202 → tokens on chain: p50 {_pct(minted, 50):.1f} s  p95 {_pct(minted, 95):.1f} s"
    )
    typer.echo(f"  mean 202 → tokens on chain {statistics.fmean(minted):.1f} s")
    delivered = len(done) / (end_minted - started) * 60
    typer.echo(f"  purchases delivered (all their tokens on chain) per minute: {delivered:.0f}")
    return delivered


def _report_ceiling(w3: Any, per_minute: float, gas_per_purchase: float, block_time: int) -> None:
    """How close the run came to what the chain can carry: block gas limit ÷ gas per purchase (its
    payment's share and its mints') purchases a block, 60 / block_time blocks a minute — against the
    purchases delivered (a paid purchase whose mints still wait has not used its gas yet)."""
    gas_limit = int(w3.eth.get_block("latest")["gasLimit"])
    ceiling = gas_limit / max(1.0, gas_per_purchase) * 60 / max(1, block_time)
    typer.echo(
        f"  chain's gas ceiling: block gas limit {gas_limit:,} ÷ {gas_per_purchase:,.0f} gas per purchase "
        f"x {60 / max(1, block_time):.0f} blocks/min = {ceiling:,.0f} purchases/min; "
        f"purchases delivered used {per_minute / ceiling:.0%} of it"
    )


def _report_gas(database_url: str, ids: list[str], reference: tuple[int, int]) -> float:
    """Prints gas figures; returns the gas of one purchase (its payment's and its mints' share)."""
    with psycopg.connect(database_url, row_factory=dict_row, autocommit=True) as conn:
        txs = {r["purpose"]: r for r in conn.execute(q("e2e_transactions"), {"ids": ids}).fetchall()}
        row = conn.execute(q("e2e_completed_units"), {"ids": ids}).fetchone()
    assert row is not None
    paid, units = int(row["payments"]), int(row["units"])
    pay, mint = txs.get("payment", {}), txs.get("mint", {})
    pay_gas, mint_gas = int(pay.get("gas") or 0), int(mint.get("gas") or 0)
    single_transfer, single_mint = reference
    typer.echo(
        f"  transactions: {pay.get('txs', 0)} payment, {mint.get('txs', 0)} mint;  gas per payment "
        f"{pay_gas / max(1, paid):.0f}, mint gas per minted unit {mint_gas / max(1, units):.0f}"
    )
    typer.echo(
        f"  gas per minted unit, its payment's share included: {(pay_gas + mint_gas) / max(1, units):.0f}"
        f"  (reference, one at a time: transferWithAuthorization {single_transfer}, mint {single_mint} (mean"
        f" of ten to one new holder);"
        f" half of one transfer + ten mints, per unit: {(single_transfer + 10 * single_mint) / 20:.0f})"
    )
    return (pay_gas + mint_gas) / max(1, paid)


def _reference_gas(w3: Any, state: dict[str, Any], token: str, key: str, offer: Any) -> tuple[int, int]:
    """The yardstick, measured on the node: gas used by one transferWithAuthorization sent alone, and
    by ten single `mint` transactions of one purchase's units to one new holder (mean; with this
    contract they too share the id bitmap word, so the yardstick is the stricter one). They run
    inside an EVM snapshot that is reverted at once, so they leave nothing behind."""
    name, header, _ = answer_402(offer.headers, offer.json(), key)
    decode = decode_payment_signature_header if name == "PAYMENT-SIGNATURE" else decode_payment_header
    payment = decode(header)
    auth, sig = payment.authorization, payment.signature
    usdc = w3.eth.contract(
        address=Web3.to_checksum_address(state["usdc"]["address"]), abi=load_artifact("TestUSDC").abi
    )
    minter = w3.eth.contract(address=Web3.to_checksum_address(token), abi=load_artifact("MintToken").abi)
    holder = Account.create().address
    purchase = os.urandom(31)  # the ten units of one purchase, numbered as shared/settlement/mint_ids.py does

    def gas_used(call: Any, sender: int) -> int:
        tx_hash = call.transact({"from": anvil.dev_account(sender).address})
        return int(w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)["gasUsed"])

    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    try:
        transfer = gas_used(
            usdc.functions.transferWithAuthorization(
                *transfer_args(
                    auth.from_address,
                    auth.to,
                    auth.value,
                    auth.valid_after,
                    auth.valid_before,
                    auth.nonce,
                    sig,
                )
            ),
            anvil.DEPLOYER,
        )
        mints = [
            gas_used(minter.functions.mint(holder, purchase + bytes([i])), anvil.DEPLOYER) for i in range(10)
        ]
    finally:
        w3.provider.make_request("evm_revert", [snapshot])
    return transfer, round(statistics.fmean(mints))
