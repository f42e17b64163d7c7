"""Transactions the chain loses or ignores: dropped from the pool, priced below the base fee, or
mined and then reorganised away before reaching the confirmation depth."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from cli.buyer import sign_payment
from cli.devnet import anvil
from shared.config import Settings
from shared.settlement.unmined import EXPIRED_UNMINED
from tests.integration.conftest import CHAIN_ID, Chain, Deployment
from tests.integration.helpers import ask_price, buy
from tests.integration.stages import (
    Stages,
    attempts,
    chain_tx,
    finished,
    mine_past,
    new_relayer_keys,
    payment,
    query,
    rpc,
)

pytestmark = pytest.mark.chain
BUYER = anvil.dev_account(18)
GWEI = 10**9


def make_stages(settings: Settings, **changes: object) -> Stages:
    return Stages(replace(settings, **changes))  # type: ignore[arg-type]


@pytest.mark.parametrize("rebroadcast_after", [1.0, 600.0])
def test_dropped_transaction_is_sent_again_from_storage(
    client: TestClient,
    settings: Settings,
    devchain: Chain,
    deployment: Deployment,
    manual_mining: None,
    rebroadcast_after: float,
) -> None:
    """A node that lost a transaction it accepted gets the same stored bytes again. One next in line
    for its sender holds up every later one, so it is re-sent a second after it was sent, even when
    REBROADCAST_AFTER_SECONDS is far off."""
    stages = make_stages(settings, rebroadcast_after_seconds=rebroadcast_after)
    try:
        payment_id = buy(client, deployment.token.address, BUYER.key.hex(), 2)
        stages.payment.run_once()
        tx_hash = payment(settings, payment_id)["tx_hash"]
        rpc(devchain.w3, "anvil_dropTransaction", tx_hash)
        assert rpc(devchain.w3, "eth_getTransactionByHash", tx_hash) is None
        rpc(devchain.w3, "evm_setAutomine", True)
        stages.run_until(lambda: finished(settings, payment_id), timeout=30.0)
        row = payment(settings, payment_id)
        assert row["state"] == "completed" and row["minted"] == 2 and row["tx_hash"] == tx_hash
        assert chain_tx(settings, row["chain_tx_id"])["broadcast_count"] == 2  # the same bytes, once more
    finally:
        stages.close()


def test_underpriced_transaction_is_replaced_with_bumped_fees(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment, manual_mining: None
) -> None:
    stages = make_stages(settings, stuck_after_seconds=1.0, rebroadcast_after_seconds=1.0)
    try:
        payment_id = buy(client, deployment.token.address, BUYER.key.hex(), 1)
        stages.payment.run_once()
        first_hash = payment(settings, payment_id)["tx_hash"]
        # The base fee jumps far above what the stored transaction offers: it cannot be included.
        rpc(devchain.w3, "anvil_setNextBlockBaseFeePerGas", hex(200 * GWEI))
        rpc(devchain.w3, "evm_mine")
        assert rpc(devchain.w3, "eth_getTransactionReceipt", first_hash) is None
        time.sleep(1.1)
        stages.payment.run_once()  # upkeep: stuck for longer than stuck_after → a bumped attempt
        row = payment(settings, payment_id)
        kinds = [a["kind"] for a in attempts(settings, row["chain_tx_id"])]
        assert kinds[:2] == ["work", "work"] and len(kinds) >= 2
        rpc(devchain.w3, "evm_setAutomine", True)
        rpc(devchain.w3, "evm_mine")
        stages.run_until(lambda: finished(settings, payment_id))
        row = payment(settings, payment_id)
        assert row["state"] == "completed"
        tx = chain_tx(settings, row["chain_tx_id"])
        assert tx["receipt_tx_hash"] != first_hash  # settled by the replacement
        (fees,) = query(
            settings,
            "SELECT max(max_fee_per_gas) AS top, min(max_fee_per_gas) AS bottom"
            " FROM chain_tx_attempts WHERE chain_tx_id = %s",
            row["chain_tx_id"],
        )
        assert fees["top"] * 100 >= fees["bottom"] * 110
    finally:
        stages.close()


def test_reorg_before_depth_rebroadcasts_and_mints_nothing_early(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment
) -> None:
    stages = make_stages(settings, confirmations=3)
    try:
        snapshot = rpc(devchain.w3, "evm_snapshot")
        payment_id = buy(client, deployment.token.address, BUYER.key.hex(), 2)
        stages.payment.run_once()  # mined at once (automine) but 1 block deep, 3 required
        chain_tx_id = payment(settings, payment_id)["chain_tx_id"]
        stages.confirmer.run_once()
        assert chain_tx(settings, chain_tx_id)["seen_block_number"] is not None
        assert payment(settings, payment_id)["mints"] == 0

        assert rpc(devchain.w3, "evm_revert", snapshot) is True  # the block with our payment is gone
        query(settings, "UPDATE chain_txs SET locked_until = NULL WHERE id = %s RETURNING id", chain_tx_id)
        stages.confirmer.run_once()  # no receipt any more: re-sent from storage at once
        assert payment(settings, payment_id)["mints"] == 0

        def settled() -> bool:
            rpc(devchain.w3, "evm_mine")
            return finished(settings, payment_id)

        stages.run_until(settled)
        row = payment(settings, payment_id)
        assert row["state"] == "completed" and row["minted"] == 2
        assert chain_tx(settings, chain_tx_id)["broadcast_count"] >= 2
    finally:
        stages.close()


def test_an_authorization_that_expires_in_our_unmined_transaction_fails_its_payment(
    settings: Settings, devchain: Chain, deployment: Deployment, manual_mining: None
) -> None:
    """Our transaction is never mined (dropped, and it stays dropped) while the authorization it carries
    expires: nothing may wait for it forever. Once the chain's time at depth is past validBefore with
    the authorization unused, the payment fails for good (supply back), and the transaction, left with
    nothing to pay, is cancelled. A relayer of its own: payment-sender tidies a relayer's oldest
    unmined transactions first, and earlier tests may have left some of the suite's relayer."""
    quick = replace(
        settings,
        settle_margin_seconds=1,
        rebroadcast_after_seconds=0.5,
        payment_relayer_keys=tuple(new_relayer_keys(devchain.w3, 1)),
    )
    token = deployment.token.address
    with TestClient(create_app(quick)) as client:
        valid_before = int(time.time()) + 4
        header = sign_payment(
            ask_price(client, token, 2), BUYER.key.hex(), chain_id=CHAIN_ID, valid_before=valid_before
        )
        reply = client.post(f"/api/mint/{token}", json={"quantity": 2}, headers={"X-PAYMENT": header})
        assert reply.status_code == 202, reply.text
        payment_id = reply.json()["paymentQueueId"]
    stages = Stages(quick)
    try:
        stages.payment.run_once()
        sent = payment(quick, payment_id)
        assert sent["state"] == "sent"
        rpc(devchain.w3, "anvil_dropTransaction", sent["tx_hash"])  # it will never be mined
        mine_past(devchain.w3, valid_before)  # the chain's time passes validBefore, the authorization unused
        stages.payment.run_once()  # its upkeep looks at our unmined transactions

        row = payment(quick, payment_id)
        assert row["state"] == "failed" and row["error"] == EXPIRED_UNMINED
        assert row["watch_until"] is None and not row["supply_reserved"]
        assert chain_tx(quick, sent["chain_tx_id"])["cancel_reason"] is not None

        rpc(devchain.w3, "evm_setAutomine", True)

        def cancelled() -> bool:
            rpc(devchain.w3, "evm_mine")
            return bool(chain_tx(quick, sent["chain_tx_id"])["status"] == "cancelled")

        stages.run_until(cancelled)  # its nonce is filled by the cancellation, never left as a gap
        assert payment(quick, payment_id)["state"] == "failed"
    finally:
        stages.close()
