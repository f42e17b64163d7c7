"""`x402-mint demo`: two buyers pay over x402 (402 → sign → 202 → poll) and receive their tokens."""

from __future__ import annotations

import time
from typing import Any

import httpx
import typer
from web3 import Web3

from cli.buyer import answer_402
from shared import chain
from shared.chain.contracts import load_artifact

PURCHASES = ((0, 1), (1, 3), (0, 2))  # (payer index, quantity)


def _purchase(
    client: httpx.Client, state: dict[str, Any], token: str, payer: dict[str, str], quantity: int
) -> str:
    offer = client.post(f"/api/mint/{token}", json={"quantity": quantity})
    if offer.status_code != 402:
        raise RuntimeError(f"expected 402 with payment requirements, got {offer.status_code}: {offer.text}")
    name, header, accept = answer_402(offer.headers, offer.json(), payer["private_key"])
    amount = int(accept.get("amount") or accept["maxAmountRequired"])
    typer.echo(f"  402: pay {amount / 10**6:.2f} USDC to {accept['payTo']} on {accept['network']} ({name})")
    accepted = client.post(f"/api/mint/{token}", json={"quantity": quantity}, headers={name: header})
    if accepted.status_code != 202:
        raise RuntimeError(f"payment refused: {accepted.status_code} {accepted.text}")
    payment_id: str = accepted.json()["paymentQueueId"]
    typer.echo(f"  202: payment {payment_id} queued")
    return payment_id


def _follow(
    client: httpx.Client, payment_ids: list[str], timeout: float = 120.0
) -> dict[str, dict[str, Any]]:
    deadline, last = time.monotonic() + timeout, ""
    done: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline and len(done) < len(payment_ids):
        for pid in payment_ids:
            body = client.get(f"/api/payment/{pid}").json()
            mints = body["result"]["mints"]
            finished = body["status"] == "failed" or (
                body["status"] == "completed"
                and mints
                and all(m["status"] in ("completed", "failed") for m in mints)
            )
            if finished:
                done[pid] = body
        line = "  " + "  ".join(f"{pid[:8]}:{done.get(pid, {}).get('status', '…')}" for pid in payment_ids)
        if line != last:
            typer.echo(line)
            last = line
        time.sleep(0.5)
    return done


def demo() -> None:
    """Buy tokens as two dev buyers through the running API and show what landed on chain."""
    from cli.dev import dev_state

    state = dev_state()
    token = state["tokens"][0]["address"]
    w3 = chain.connect(state["rpc_url"])
    contract = w3.eth.contract(address=Web3.to_checksum_address(token), abi=load_artifact("MintToken").abi)
    payers = state["payers"][:2]
    before = {p["address"]: contract.functions.balanceOf(p["address"]).call() for p in payers}
    started = time.monotonic()
    with httpx.Client(base_url=state["api_url"], timeout=10.0) as client:
        ids = []
        for index, quantity in PURCHASES:
            typer.echo(f"buyer {payers[index]['address']} buys {quantity} mint(s) of {token}")
            ids.append(_purchase(client, state, token, payers[index], quantity))
        typer.echo("waiting for settlement (payment → confirmation → mints):")
        results = _follow(client, ids)
    typer.echo(f"finished in {time.monotonic() - started:.1f} s")
    for pid in ids:
        body = results.get(pid)
        if body is None:
            typer.echo(f"  {pid}: not finished yet (still settling)")
            continue
        typer.echo(
            f"  {pid}: {body['status']}, payment tx {body['tx_hash']}, "
            f"{sum(m['status'] == 'completed' for m in body['result']['mints'])} mint(s) completed"
        )
    decimals = contract.functions.decimals().call()
    for p in payers:
        after = contract.functions.balanceOf(p["address"]).call()
        typer.echo(
            f"on chain: {p['address']} holds {after / 10**decimals:,.0f} "
            f"{contract.functions.symbol().call()} (+{(after - before[p['address']]) / 10**decimals:,.0f})"
        )
    if len(results) < len(ids) or any(b["status"] != "completed" for b in results.values()):
        raise typer.Exit(1)
