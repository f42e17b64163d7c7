"""Adversarial, on chain: a seeded random interleaving, against the running stages (processes), of
honest purchases, strangers executing buyers' authorizations alone or co-batched through Multicall3,
same-nonce 0-value authorizations, cancellations, plain USDC transfers to the token, reorgs shallower
than CONFIRMATIONS and SIGKILLs of stages — on a node mining a block a second, with a token that sells
out midway (so money can arrive after a sell-out and be owed back). Then the faults stop and the work
drains, an operator refunding what is owed; every invariant is checked on chain and in the database.

Size: ADVERSARY_STEPS (default 40; the closing figures come from a long run), ADVERSARY_SEED."""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from web3 import Web3

from api.app import create_app
from cli.devnet import anvil, deploy
from shared.chain.contracts import load_artifact
from shared.config import Settings, StageSettings
from shared.db.migrations import migrate
from shared.runtime import open_runtime
from shared.settlement import review
from shared.settlement.authorizations import AUTHORIZATION_USED_TOPIC, TRANSFER_TOPIC
from shared.settlement.mint_ids import purchase_key
from shared.settlement.refunds import REFUNDED_TOPIC
from tests.integration.adversary import Adversary, Order
from tests.integration.conftest import CHAIN_ID, Chain, running_chain, scratch_database
from tests.integration.faults import WorkerProcess
from tests.integration.stages import query, rpc

pytestmark = [pytest.mark.chain, pytest.mark.slow]
STEPS = int(os.environ.get("ADVERSARY_STEPS", "40"))
SEED = int(os.environ.get("ADVERSARY_SEED", "3009"))
CONFIRMATIONS = 3
DRAIN_BOUND_SECONDS = 240  # every payment final (or needs_review) this long after the faults stop
QUIET_SECONDS = 12  # nothing changed for this long (longer than the watch's 10 s look): drained
STAGES = ("payment-sender", "confirmer", "mint-sender", "refund-sender")
FINAL = {"completed", "failed", "refund_owed", "refunded"}


@pytest.fixture
def own_chain(tmp_path: Path) -> Iterator[Chain]:
    with running_chain(48545, tmp_path / "anvil.log") as node:
        yield node


@pytest.fixture
def own_db(pg_server: str) -> Iterator[str]:
    with scratch_database(pg_server, "x402_adversary") as url:
        migrate(url)
        yield url


def _word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address.lower()[2:])


def _topics(entry: Any) -> list[bytes]:
    return [bytes(t) for t in entry["topics"]]


def test_adversary(own_chain: Chain, own_db: str, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    w3 = own_chain.w3
    deployer = anvil.dev_account(anvil.DEPLOYER).address
    payment_relayer, mint_relayer = (
        anvil.dev_account(anvil.PAYMENT_RELAYER),
        anvil.dev_account(anvil.MINT_RELAYER),
    )
    deploy.install_multicall3(w3)
    usdc = deploy.deploy_usdc(w3, deployer)
    # Sized to sell out midway: payments whose money arrives after that are owed a refund.
    token = deploy.deploy_token(
        w3, deployer, usdc.address, minter=mint_relayer.address, max_mint_count=max(10, 2 * STEPS // 3)
    )
    deploy.register_token(own_db, deploy.read_token(w3, token.address))
    first_block = int(w3.eth.block_number)
    cfg = Settings(
        database_url=own_db,
        rpc_url=own_chain.rpc_url,
        chain_id=CHAIN_ID,
        payment_relayer_keys=(payment_relayer.key.hex(),),
        mint_relayer_keys=(mint_relayer.key.hex(),),
        confirmations=CONFIRMATIONS,
        payment_stage=StageSettings(50, 0.5),
        confirm_stage=StageSettings(20, 0.5),
        mint_stage=StageSettings(50, 0.5),
    )
    env = {
        **os.environ,
        "X402_ENV_FILE": "/dev/null",
        "DATABASE_URL": own_db,
        "RPC_URL": own_chain.rpc_url,
        "CHAIN_ID": str(CHAIN_ID),
        "CONFIRMATIONS": str(CONFIRMATIONS),
        "PAYMENT_RELAYER_KEY": payment_relayer.key.hex(),
        "MINT_RELAYER_KEY": mint_relayer.key.hex(),
        "PAYMENT_POLL_INTERVAL": "0.5",
        "CONFIRM_POLL_INTERVAL": "0.5",
        "MINT_POLL_INTERVAL": "0.5",
        "REFUND_POLL_INTERVAL": "0.5",
        "LEASE_SECONDS": "5",
        "REBROADCAST_AFTER_SECONDS": "2",
        "STUCK_AFTER_SECONDS": "10",
        "RETRY_CAP_SECONDS": "2",
        "DRAIN_SECONDS": "5",
    }
    workers = [WorkerProcess(stage, env, tmp_path / f"{stage}.log") for stage in STAGES]
    for worker in workers:
        worker.start()
    try:
        with TestClient(create_app(cfg)) as client:
            adversary = Adversary(
                rng, client, w3, token.address, usdc.address, CHAIN_ID, workers, CONFIRMATIONS - 1
            )
            rpc(w3, "evm_setAutomine", False)
            rpc(w3, "evm_setIntervalMining", 1)  # a block a second from here on
            started = time.monotonic()
            for _ in range(STEPS):
                adversary.step()
                time.sleep(rng.uniform(0, 0.3))
            # The faults stop; buyers post what they signed and have not posted yet.
            for worker in workers:
                if not worker.alive():
                    worker.start()
            deadline = time.monotonic() + 60
            while adversary.unposted() and time.monotonic() < deadline:
                for order in adversary.unposted():
                    adversary._post(order)
                time.sleep(0.5)
            faults_stopped = time.monotonic()
            drained = drain(cfg, deadline=faults_stopped + DRAIN_BOUND_SECONDS)
            drain_seconds = drained - faults_stopped
    finally:
        for worker in workers:
            worker.stop()
    rpc(w3, "evm_setIntervalMining", 0)  # the chain holds still while it is checked

    report = check_invariants(cfg, w3, usdc.address, token.address, first_block, adversary)
    report.update(
        {
            "seed": SEED,
            "steps": STEPS,
            "actions": dict(sorted(adversary.actions.items())),
            "sigkills": sum(w.kills for w in workers),
            "action_seconds": round(faults_stopped - started, 1),
            "drain_seconds": round(drain_seconds, 1),
            "drain_bound_seconds": DRAIN_BOUND_SECONDS,
            "invariants": "all hold",
        }
    )
    print("\nADVERSARY REPORT " + json.dumps(report))
    (tmp_path / "adversary-report.json").write_text(json.dumps(report, indent=2))


def drain(cfg: Settings, *, deadline: float) -> float:
    """Until nothing is open and nothing changed for QUIET_SECONDS; an operator refunds what is owed
    meanwhile. Returns since when nothing was open; fails past `deadline`."""
    runtime = open_runtime(cfg)
    try:
        last: list[dict[str, Any]] | None = None
        quiet_since = time.monotonic()
        settled_at: float | None = None  # since when nothing has been open
        while True:
            for owed in query(
                cfg,
                "SELECT p.id FROM payment_queue p LEFT JOIN refunds r ON r.payment_id = p.id"
                " WHERE p.status = 'refund_owed' AND r.id IS NULL",
            ):
                review.order_refund(runtime, owed["id"], "adversary test: the operator refunds what is owed")
            states = query(
                cfg,
                "SELECT 'payment' AS kind, status::text, count(*) AS n FROM payment_queue GROUP BY 2"
                " UNION ALL SELECT 'mint', status::text, count(*) FROM mint_queue GROUP BY 2"
                " UNION ALL SELECT 'refund', status::text, count(*) FROM refunds GROUP BY 2 ORDER BY 1, 2",
            )
            still_open = sum(
                s["n"] for s in states if s["status"] in ("pending", "processing", "sent", "refund_owed")
            )
            now = time.monotonic()
            settled_at = (settled_at or now) if still_open == 0 else None
            if states != last:
                last, quiet_since = states, now
            elif settled_at is not None and now - quiet_since >= QUIET_SECONDS:
                return settled_at
            assert now < deadline, f"not drained within {DRAIN_BOUND_SECONDS} s: {states}"
            time.sleep(1)
    finally:
        runtime.close()


def check_invariants(
    cfg: Settings, w3: Web3, usdc: str, token_address: str, first_block: int, adversary: Adversary
) -> dict[str, Any]:
    token = w3.eth.contract(
        address=Web3.to_checksum_address(token_address), abi=load_artifact("MintToken").abi
    )
    payments = query(
        cfg,
        "SELECT p.*, p.status::text AS state,"
        " (SELECT count(*) FROM mint_queue m WHERE m.payment_id = p.id) AS mints,"
        " (SELECT count(*) FROM mint_queue m WHERE m.payment_id = p.id AND m.status = 'completed') AS minted"
        " FROM payment_queue p",
    )
    by_state = Counter(p["state"] for p in payments)
    # Every payment final, or under review with its reason.
    assert all(p["state"] in FINAL or (p["state"] == "needs_review" and p["error"]) for p in payments), (
        by_state
    )
    completed = [p for p in payments if p["state"] == "completed"]
    paid = [p for p in payments if p["state"] in ("completed", "refund_owed", "refunded")]

    # Minted units = Σ quantity of completed payments; each has exactly its quantity; nothing else mints.
    assert all(p["mints"] == p["minted"] == p["quantity"] for p in completed)
    assert all(p["mints"] == 0 for p in payments if p["state"] != "completed")
    assert token.functions.mintCount().call() == sum(p["quantity"] for p in completed)
    for buyer in adversary.buyers + adversary.poor:
        units = sum(p["quantity"] for p in completed if p["payer"] == buyer.address.lower())
        assert token.functions.balanceOf(buyer.address).call() == units * token.functions.mintAmount().call()

    # Every paid payment has its own, distinct AuthorizationUsed + Transfer pair on chain.
    pairs: set[tuple[str, int]] = set()
    for p in paid:
        receipt = w3.eth.get_transaction_receipt(p["tx_hash"])
        logs = {int(e["logIndex"]): e for e in receipt["logs"]}
        transfer, used = logs[p["paid_log_index"]], logs[p["paid_log_index"] - 1]
        assert receipt["status"] == 1 and _canonical(w3, receipt), p
        assert str(used["address"]).lower() == str(transfer["address"]).lower() == usdc.lower()
        assert _topics(used) == [AUTHORIZATION_USED_TOPIC, _word(p["payer"]), bytes.fromhex(p["nonce"][2:])]
        assert _topics(transfer) == [TRANSFER_TOPIC, _word(p["payer"]), _word(token_address)]
        assert int.from_bytes(bytes(transfer["data"]), "big") == int(p["amount"])
        pairs.add((p["tx_hash"], p["paid_log_index"]))
    assert len(pairs) == len(paid)

    # A failed or reviewed payment's own transfer is nowhere on chain (its money never moved).
    own_transfers = _own_transfers(w3, usdc, token_address, first_block)
    for p in payments:
        if p["state"] in ("failed", "needs_review"):
            assert (p["payer"], p["nonce"]) not in own_transfers, p

    # USDC received by the token = completed + refund-owed + refunded payments + plain transfers (+ the
    # authorizations strangers ran for orders we refused, e.g. sold out: money we never accepted).
    arrivals = w3.eth.get_logs(
        {
            "address": Web3.to_checksum_address(usdc),
            "fromBlock": first_block,
            "toBlock": "latest",
            "topics": [Web3.to_hex(TRANSFER_TOPIC), None, Web3.to_hex(_word(token_address))],
        }
    )
    received = sum(int.from_bytes(bytes(e["data"]), "big") for e in arrivals)
    plain_txs = {tx: amount for tx, amount in adversary.plain_transfers if _succeeded(w3, tx)}
    refused = [o for o in adversary.orders if o.payment_id is None and _ran(o, own_transfers)]
    accounted = (
        sum(int(p["amount"]) for p in paid) + sum(plain_txs.values()) + sum(_amount(o) for o in refused)
    )
    arrived_in = {"0x" + bytes(e["transactionHash"]).hex() for e in arrivals}
    assert received == accounted, (
        f"plain transfers counted but not arrived: {set(plain_txs) - arrived_in}; "
        f"arrivals from neither a payment nor a plain transfer: "
        f"{arrived_in - set(plain_txs) - {p['tx_hash'] for p in paid} - {_tx_of(o) for o in refused}}"
    )

    # Refunds: each refunded payment's key is refunded on chain, and only those; nothing was paid twice.
    refunded = [p for p in payments if p["state"] == "refunded"]
    refund_logs = w3.eth.get_logs(
        {
            "address": Web3.to_checksum_address(token_address),
            "fromBlock": first_block,
            "toBlock": "latest",
            "topics": [Web3.to_hex(REFUNDED_TOPIC)],
        }
    )
    keys = [bytes(e["topics"][1]) for e in refund_logs]
    expected = {
        purchase_key(token_address, usdc, p["payer"], bytes.fromhex(p["nonce"][2:])) for p in refunded
    }
    assert len(keys) == len(set(keys)) and set(keys) == expected
    assert not [p for p in payments if p["state"] == "refund_owed"]  # the operator refunded all of it

    # No supply reserved by a final payment; the token's reservation is exactly what rows hold.
    assert not [
        p for p in payments if p["state"] in ("failed", "refund_owed", "refunded") and p["supply_reserved"]
    ]
    (supply,) = query(cfg, "SELECT reserved_mints FROM token_reservations WHERE address = %s", token_address)
    assert supply["reserved_mints"] == sum(p["quantity"] for p in payments if p["supply_reserved"])
    return {
        "payments": dict(sorted(by_state.items())),
        "orders_signed": len(adversary.orders),
        "orders_refused_at_ingress": Counter(o.answer for o in adversary.orders if o.payment_id is None),
        "refused_but_run_by_strangers": len(refused),
        "failed_why": Counter(str(p["error"]).split(":")[0][:40] for p in payments if p["state"] == "failed"),
        "mints": sum(p["quantity"] for p in completed),
        "usdc_received": received,
        "plain_transfers": len(adversary.plain_transfers),
        "refunds_on_chain": len(keys),
    }


def _own_transfers(w3: Web3, usdc: str, token_address: str, first_block: int) -> set[tuple[str, str]]:
    """(payer, nonce) of every authorization whose own transfer paid the token: an AuthorizationUsed
    followed at once by its Transfer(payer → token)."""
    found: set[tuple[str, str]] = set()
    used = w3.eth.get_logs(
        {
            "address": Web3.to_checksum_address(usdc),
            "fromBlock": first_block,
            "toBlock": "latest",
            "topics": [Web3.to_hex(AUTHORIZATION_USED_TOPIC)],
        }
    )
    for entry in used:
        receipt = w3.eth.get_transaction_receipt(entry["transactionHash"])
        after = [e for e in receipt["logs"] if int(e["logIndex"]) == int(entry["logIndex"]) + 1]
        payer = "0x" + bytes(entry["topics"][1])[12:].hex()
        if after and _topics(after[0]) == [TRANSFER_TOPIC, _word(payer), _word(token_address)]:
            found.add((payer, "0x" + bytes(entry["topics"][2]).hex()))
    return found


def _canonical(w3: Web3, receipt: Any) -> bool:
    return bytes(w3.eth.get_block(receipt["blockNumber"])["hash"]) == bytes(receipt["blockHash"])


def _succeeded(w3: Web3, tx_hash: str) -> bool:
    """Mined, succeeded, and still on the canonical chain (not in a block a reorg replaced)."""
    try:
        receipt = w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    except Exception:  # dropped by a reorg
        return False
    return bool(receipt["status"] == 1 and _canonical(w3, receipt))


def _ran(order: Order, own_transfers: set[tuple[str, str]]) -> bool:
    auth = order.signed.auth
    return (auth.from_address, "0x" + auth.nonce.hex()) in own_transfers


def _tx_of(order: Order) -> str:
    return f"(an order of {order.buyer.address})"


def _amount(order: Order) -> int:
    return order.signed.auth.value
