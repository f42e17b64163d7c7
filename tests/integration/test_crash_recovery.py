"""A process that dies at any point of a payment's life leaves work another process finishes exactly
once: stored transactions are re-sent (never re-signed) and the pay-first transaction is atomic."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from starlette.testclient import TestClient
from web3 import Web3

from api.app import create_app
from cli.devnet import anvil
from shared.config import Settings
from shared.settlement import outcomes
from shared.txs import relayer as relayer_module
from tests.integration.conftest import Chain, Deployment
from tests.integration.helpers import buy
from tests.integration.stages import Stages, attempts, chain_tx, finished, payment, query, rpc

pytestmark = pytest.mark.chain
BUYER = anvil.dev_account(17)


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return replace(settings, rebroadcast_after_seconds=1.0, stuck_after_seconds=30.0)


@pytest.fixture
def client(fast: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(fast)) as c:
        yield c


@pytest.fixture
def stages(fast: Settings) -> Iterator[Stages]:
    s = Stages(fast)
    yield s
    s.close()


def die_before_broadcast(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The sender commits its signed transactions and dies before sending them."""
    lost: list[Any] = []
    monkeypatch.setattr(
        relayer_module, "broadcast_stored", lambda rt, outgoing, event: lost.extend(outgoing) or set()
    )
    return lost


def test_crash_between_store_and_broadcast_resends_the_stored_bytes(
    client: TestClient,
    stages: Stages,
    fast: Settings,
    deployment: Deployment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    payment_id = buy(client, deployment.token.address, BUYER.key.hex(), 3)
    with monkeypatch.context() as m:
        lost = die_before_broadcast(m)
        stages.payment.run_once()
    assert len(lost) == 1
    row = payment(fast, payment_id)
    assert row["state"] == "sent" and row["tx_hash"] == lost[0].tx_hash
    assert chain_tx(fast, row["chain_tx_id"])["broadcast_count"] == 0

    stages.run_until(lambda: finished(fast, payment_id))

    row = payment(fast, payment_id)
    assert row["state"] == "completed" and row["minted"] == 3
    assert row["tx_hash"] == lost[0].tx_hash  # the very bytes stored before the crash
    assert [a["kind"] for a in attempts(fast, row["chain_tx_id"])] == ["work"]  # never re-signed


def test_crash_after_broadcast_before_bookkeeping_settles_once(
    client: TestClient,
    stages: Stages,
    fast: Settings,
    deployment: Deployment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    payment_id = buy(client, deployment.token.address, BUYER.key.hex(), 2)

    def broadcast_then_die(rt: Any, outgoing: list[Any], event: str) -> None:
        from shared import chain

        for item in outgoing:
            chain.broadcast(rt.w3, item.raw)
        raise SystemExit("killed after broadcast")

    with monkeypatch.context() as m:
        m.setattr(relayer_module, "broadcast_stored", broadcast_then_die)
        with pytest.raises(SystemExit):
            stages.payment.run_once()
    stages.run_until(lambda: finished(fast, payment_id))
    row = payment(fast, payment_id)
    assert row["state"] == "completed" and row["mints"] == row["minted"] == 2


def test_crash_between_receipt_and_mint_creation_leaves_no_half_state(
    client: TestClient,
    stages: Stages,
    fast: Settings,
    deployment: Deployment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    payment_id = buy(client, deployment.token.address, BUYER.key.hex(), 4)
    original = outcomes.settle_payments

    def complete_then_die(conn: Any, *args: Any) -> None:
        original(conn, *args)  # payment completed and mints inserted … inside the transaction
        raise RuntimeError("killed before commit")

    with monkeypatch.context() as m:
        m.setattr(outcomes, "settle_payments", complete_then_die)
        stages.payment.run_once()
        for _ in range(20):
            stages.confirmer.run_once()
            row = payment(fast, payment_id)
            assert (row["state"], row["mints"]) == ("sent", 0)  # rolled back whole
            if query(
                fast,
                "SELECT 1 FROM chain_txs WHERE id = %s AND locked_until > now() + interval '1 s'",
                row["chain_tx_id"],
            ):
                break
    query(fast, "UPDATE chain_txs SET locked_until = NULL WHERE state = 'unconfirmed' RETURNING id")
    stages.run_until(lambda: finished(fast, payment_id))
    row = payment(fast, payment_id)
    assert row["state"] == "completed" and row["mints"] == row["minted"] == 4


def test_nonce_gap_from_a_lost_broadcast_is_filled(
    client: TestClient,
    stages: Stages,
    fast: Settings,
    deployment: Deployment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = buy(client, deployment.token.address, BUYER.key.hex(), 1)
    with monkeypatch.context() as m:
        die_before_broadcast(m)
        stages.payment.run_once()  # nonce N stored, never sent
    second = buy(client, deployment.token.address, BUYER.key.hex(), 1)
    stages.payment.run_once()  # nonce N+1 sent: the node holds it behind the gap
    n = chain_tx(fast, payment(fast, first)["chain_tx_id"])["nonce"]
    assert chain_tx(fast, payment(fast, second)["chain_tx_id"])["nonce"] == n + 1
    stages.run_until(lambda: finished(fast, first) and finished(fast, second))
    assert payment(fast, first)["state"] == payment(fast, second)["state"] == "completed"


def test_nonce_taken_by_a_foreign_transaction_replans_the_work(
    client: TestClient,
    stages: Stages,
    fast: Settings,
    devchain: Chain,
    deployment: Deployment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    payment_id = buy(client, deployment.token.address, BUYER.key.hex(), 2)
    with monkeypatch.context() as m:
        lost = die_before_broadcast(m)
        stages.payment.run_once()
    # Someone else uses the relayer key: the nonce our stored transaction holds is consumed.
    relayer = Web3.to_checksum_address(stages.payment.relayers[0].address)
    rpc(devchain.w3, "eth_sendTransaction", {"from": relayer, "to": relayer, "value": "0x0"})
    dropped_id = payment(fast, payment_id)["chain_tx_id"]

    stages.run_until(lambda: finished(fast, payment_id))

    assert chain_tx(fast, dropped_id)["status"] == "dropped"
    row = payment(fast, payment_id)
    assert row["state"] == "completed" and row["minted"] == 2
    assert row["tx_hash"] != lost[0].tx_hash and row["chain_tx_id"] != dropped_id


def test_nonce_too_low_on_send_lines_the_stored_nonce_up_with_the_chain(
    client: TestClient, stages: Stages, fast: Settings, devchain: Chain, deployment: Deployment
) -> None:
    relayer = Web3.to_checksum_address(stages.payment.relayers[0].address)
    for _ in range(3):  # the key is used elsewhere, three times, after our sender started
        rpc(devchain.w3, "eth_sendTransaction", {"from": relayer, "to": relayer, "value": "0x0"})
    payment_id = buy(client, deployment.token.address, BUYER.key.hex(), 1)
    stages.payment.run_once()  # sent with a stale nonce: "nonce too low" → reconcile
    (stored,) = query(
        fast, "SELECT next_nonce FROM relayer_nonces WHERE address = %s", stages.payment.relayers[0].address
    )
    assert stored["next_nonce"] >= devchain.w3.eth.get_transaction_count(relayer, "pending")
    stages.run_until(lambda: finished(fast, payment_id))
    row = payment(fast, payment_id)
    assert row["state"] == "completed" and row["minted"] == 1


def test_an_allocated_nonce_with_no_stored_transaction_is_filled(
    client: TestClient, stages: Stages, fast: Settings, devchain: Chain, deployment: Deployment
) -> None:
    # Nonces handed out with nothing stored behind them (a restored backup, a reset chain).
    query(
        fast,
        "UPDATE relayer_nonces SET next_nonce = next_nonce + 3 WHERE address = %s RETURNING next_nonce",
        stages.payment.relayers[0].address,
    )
    payment_id = buy(client, deployment.token.address, BUYER.key.hex(), 1)
    stages.run_until(lambda: finished(fast, payment_id))
    assert payment(fast, payment_id)["state"] == "completed"
    fillers = query(
        fast,
        "SELECT state::text AS state FROM chain_txs WHERE purpose = 'filler' AND from_address = %s",
        stages.payment.relayers[0].address,
    )
    assert len(fillers) >= 3 and {f["state"] for f in fillers} == {"confirmed"}
