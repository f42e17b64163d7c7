"""Anyone may submit a buyer's authorization. Whoever sends it, the chain decides: a buyer whose USDC
reached the token gets exactly `quantity` mints, and we never submit an authorization known used."""

from __future__ import annotations

from dataclasses import replace

import pytest
from starlette.testclient import TestClient
from web3 import Web3

from cli.buyer import sign_payment
from cli.devnet import anvil
from shared.chain.contracts import load_artifact
from shared.config import Settings
from shared.settlement.payment_calls import transfer_args
from shared.x402 import decode_payment_header
from tests.integration.conftest import CHAIN_ID, Chain, Deployment
from tests.integration.helpers import ask_price
from tests.integration.stages import Stages, attempts, chain_tx, finished, payment, rpc

pytestmark = pytest.mark.chain
BUYER = anvil.dev_account(19)
STRANGER = anvil.dev_account(5)
GWEI = 10**9


def accept(client: TestClient, token: str, quantity: int) -> tuple[str, str]:
    header = sign_payment(ask_price(client, token, quantity), BUYER.key.hex(), chain_id=CHAIN_ID)
    reply = client.post(f"/api/mint/{token}", json={"quantity": quantity}, headers={"X-PAYMENT": header})
    assert reply.status_code == 202
    return reply.json()["paymentQueueId"], header


def stranger_submits(devchain: Chain, deployment: Deployment, header: str, tip: int) -> str:
    """A third party sends the buyer's signed authorization itself (as a facilitator could)."""
    p = decode_payment_header(header)
    a, sig = p.authorization, p.signature
    usdc = devchain.w3.eth.contract(
        address=Web3.to_checksum_address(deployment.usdc.address), abi=load_artifact("TestUSDC").abi
    )
    tx_hash = usdc.functions.transferWithAuthorization(
        *transfer_args(a.from_address, a.to, a.value, a.valid_after, a.valid_before, a.nonce, sig)
    ).transact(
        {"from": STRANGER.address, "gas": 200_000, "maxPriorityFeePerGas": tip, "maxFeePerGas": 1000 * GWEI}
    )
    return "0x" + bytes(tx_hash).hex()


def test_authorization_paid_by_a_third_party_before_we_send(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment
) -> None:
    stages = Stages(settings)
    try:
        payment_id, header = accept(client, deployment.token.address, 3)
        theirs = stranger_submits(devchain, deployment, header, tip=GWEI)
        stages.run_until(lambda: finished(settings, payment_id))
        row = payment(settings, payment_id)
        assert row["state"] == "completed" and row["minted"] == 3
        assert row["tx_hash"] == theirs
        receipt = devchain.w3.eth.get_transaction_receipt(theirs)  # type: ignore[arg-type]
        assert row["paid_log_index"] == receipt["logs"][-1]["logIndex"]  # their Transfer paid it
        assert row["chain_tx_id"] is None  # we sent nothing
    finally:
        stages.close()


def test_third_party_front_runs_our_transaction(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment, manual_mining: None
) -> None:
    stages = Stages(settings)
    try:
        payment_id, header = accept(client, deployment.token.address, 2)
        stages.payment.run_once()  # pre-flight passes; ours waits in the pool
        ours = payment(settings, payment_id)["chain_tx_id"]
        theirs = stranger_submits(devchain, deployment, header, tip=50 * GWEI)  # pays more: goes first
        rpc(devchain.w3, "evm_mine")
        rpc(devchain.w3, "evm_setAutomine", True)
        stages.run_until(lambda: finished(settings, payment_id))
        row = payment(settings, payment_id)
        assert row["state"] == "completed" and row["minted"] == 2  # paid, though our transaction reverted
        assert row["tx_hash"] == theirs
        assert chain_tx(settings, ours)["status"] == "reverted"
    finally:
        stages.close()


def test_our_unmined_transaction_is_cancelled_once_the_authorization_is_used_elsewhere(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment, manual_mining: None
) -> None:
    stages = Stages(replace(settings, rebroadcast_after_seconds=0.5, stuck_after_seconds=60.0))
    try:
        payment_id, header = accept(client, deployment.token.address, 1)
        stages.payment.run_once()
        ours = payment(settings, payment_id)["chain_tx_id"]
        # Ours cannot be included (fee cap below the new base fee); the stranger's can.
        rpc(devchain.w3, "anvil_setNextBlockBaseFeePerGas", hex(100 * GWEI))
        theirs = stranger_submits(devchain, deployment, header, tip=GWEI)
        rpc(devchain.w3, "evm_mine")
        assert rpc(devchain.w3, "eth_getTransactionReceipt", theirs)["status"] == "0x1"
        rpc(devchain.w3, "evm_setAutomine", True)
        stages.run_until(lambda: finished(settings, payment_id))
        row = payment(settings, payment_id)
        assert row["state"] == "completed" and row["minted"] == 1 and row["tx_hash"] == theirs
        tx = chain_tx(settings, ours)
        assert tx["status"] == "cancelled"
        kinds = [a["kind"] for a in attempts(settings, ours)]
        assert kinds == ["work", "cancel"]  # the authorization was never sent again once known used
    finally:
        stages.close()
