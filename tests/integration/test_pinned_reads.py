"""Reads that decide money are pinned to a block at least CONFIRMATIONS deep: the late-payment watch
(authorizationState and the chain's time) and mint-sender's hasMinted short-cut. A block a reorg
could still take back decides nothing."""

from __future__ import annotations

import os
import time
from dataclasses import replace

import pytest
from eth_account import Account
from starlette.testclient import TestClient
from web3 import Web3

from cli.buyer import sign_payment
from cli.devnet import anvil, deploy
from shared.chain.contracts import load_artifact
from shared.config import Settings
from tests.integration.conftest import CHAIN_ID, Chain, Deployment
from tests.integration.helpers import ask_price
from tests.integration.stages import Stages, finished, payment, query, rpc
from tests.integration.strangers import Signed, Stranger

pytestmark = pytest.mark.chain
DEPTH = 3


def test_the_watch_revives_a_failed_payment_only_from_a_deep_enough_block(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment
) -> None:
    deep = replace(settings, confirmations=DEPTH)
    token, w3 = deployment.token.address, devchain.w3
    buyer = Account.from_key(os.urandom(32))  # holds no USDC yet: the pre-flight fails its payment
    header = sign_payment(ask_price(client, token, 2), buyer.key.hex(), chain_id=CHAIN_ID)
    reply = client.post(f"/api/mint/{token}", json={"quantity": 2}, headers={"X-PAYMENT": header})
    assert reply.status_code == 202
    payment_id = reply.json()["paymentQueueId"]
    stages = Stages(deep)
    try:
        stages.payment.run_once()
        assert payment(deep, payment_id)["state"] == "failed"  # watched: it may still be paid

        deploy.fund(
            w3, anvil.dev_account(anvil.DEPLOYER).address, deployment.usdc.address, [buyer.address], 10**7
        )
        them = Stranger(w3, deployment.usdc.address, CHAIN_ID)
        paid = them.submit(Signed.from_header(header))
        assert them.receipt(paid)["status"] == 1  # 1 block deep: a reorg could still take it back

        def look() -> None:
            query(
                deep, "UPDATE payment_queue SET watch_next_at = now() WHERE id = %s RETURNING id", payment_id
            )
            stages.payment.run_once()  # its upkeep runs the watch

        look()
        assert payment(deep, payment_id)["state"] == "failed"  # not deep enough to decide anything
        for _ in range(DEPTH - 1):
            rpc(w3, "evm_mine")
        look()
        row = payment(deep, payment_id)
        assert row["state"] == "completed" and row["tx_hash"] == paid and row["mints"] == 2
    finally:
        stages.close()


def test_mint_sender_trusts_has_minted_only_at_depth(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment, manual_mining: None
) -> None:
    """A mint id minted in the newest block (by anyone holding MINTER_ROLE) is not "already on chain"
    for mint-sender yet: it sends its batchMint (which skips the id) rather than complete the row from a
    block a reorg could take back."""
    deep = replace(settings, confirmations=DEPTH)
    token, w3 = deployment.token.address, devchain.w3
    buyer = anvil.dev_account(15)
    header = sign_payment(ask_price(client, token, 1), buyer.key.hex(), chain_id=CHAIN_ID)
    reply = client.post(f"/api/mint/{token}", json={"quantity": 1}, headers={"X-PAYMENT": header})
    payment_id = reply.json()["paymentQueueId"]
    stages = Stages(deep)
    try:
        stages.payment.run_once()
        for _ in range(100):  # the payment reaches depth; mint-sender is not run yet
            rpc(w3, "evm_mine")
            stages.confirmer.run_once()
            if payment(deep, payment_id)["mints"] == 1:
                break
            time.sleep(0.1)  # the confirmer looks again at a receipt not deep enough after a moment
        (mint,) = query(
            deep, "SELECT id, mint_id, status::text FROM mint_queue WHERE payment_id = %s", payment_id
        )
        assert mint["status"] == "pending"

        minter = anvil.dev_account(anvil.MINT_RELAYER)  # holds MINTER_ROLE; mints the id directly
        contract = w3.eth.contract(
            address=Web3.to_checksum_address(token), abi=load_artifact("MintToken").abi
        )
        contract.functions.mint(buyer.address, bytes.fromhex(mint["mint_id"][2:])).transact(
            {"from": minter.address, "gas": 200_000}
        )
        rpc(w3, "evm_mine")  # in the newest block only
        stages.mint.run_once()
        (row,) = query(deep, "SELECT status::text, chain_tx_id FROM mint_queue WHERE id = %s", mint["id"])
        assert row["status"] == "sent" and row["chain_tx_id"] is not None  # not completed from hasMinted

        def settled() -> bool:
            rpc(w3, "evm_mine")
            return finished(deep, payment_id)

        stages.run_until(settled, timeout=60)
        (done,) = query(deep, "SELECT status::text FROM mint_queue WHERE id = %s", mint["id"])
        assert done["status"] == "completed"  # its MintSkipped(already minted) counts as minted
        assert contract.functions.balanceOf(buyer.address).call() >= deployment.token.mint_amount
    finally:
        stages.close()
