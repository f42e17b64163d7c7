"""A buyer pays USDC over x402 and receives freshly minted tokens, on a real chain and database."""

from __future__ import annotations

import psycopg
import pytest
from eth_account import Account
from starlette.testclient import TestClient
from web3 import Web3

from cli.devnet import anvil
from shared.chain.contracts import load_artifact
from shared.config import Settings
from tests.integration.conftest import Chain, Deployment, Pipeline
from tests.integration.helpers import buy, wait_for

pytestmark = pytest.mark.chain


def balances(devchain: Chain, deployment: Deployment, wallet: str) -> tuple[int, int, int]:
    w3 = devchain.w3
    token = w3.eth.contract(
        address=Web3.to_checksum_address(deployment.token.address), abi=load_artifact("MintToken").abi
    )
    usdc = w3.eth.contract(
        address=Web3.to_checksum_address(deployment.usdc.address), abi=load_artifact("TestUSDC").abi
    )
    return (
        token.functions.balanceOf(Web3.to_checksum_address(wallet)).call(),
        usdc.functions.balanceOf(Web3.to_checksum_address(wallet)).call(),
        usdc.functions.balanceOf(Web3.to_checksum_address(deployment.token.address)).call(),
    )


@pytest.mark.parametrize(("buyer_index", "quantity"), [(10, 1), (11, 10)])
def test_purchase_ends_completed_with_tokens_on_chain(
    client: TestClient,
    pipeline: Pipeline,
    devchain: Chain,
    deployment: Deployment,
    buyer_index: int,
    quantity: int,
) -> None:
    buyer = anvil.dev_account(buyer_index)
    tokens_before, usdc_before, paid_in_before = balances(devchain, deployment, buyer.address)

    payment_id = buy(client, deployment.token.address, buyer.key.hex(), quantity)
    status = wait_for(client, payment_id)

    assert status["status"] == "completed", status
    assert status["tx_hash"] and status["tx_hash"].startswith("0x")
    mints = status["result"]["mints"]
    assert len(mints) == quantity == status["result"]["quantity"]
    assert all(m["status"] == "completed" and m["tx_hash"] for m in mints)
    assert len({m["mintId"] for m in mints}) == quantity
    tokens_after, usdc_after, paid_in_after = balances(devchain, deployment, buyer.address)
    assert tokens_after - tokens_before == quantity * deployment.token.mint_amount
    assert usdc_before - usdc_after == quantity * deployment.token.price
    assert paid_in_after - paid_in_before == quantity * deployment.token.price


def test_buyer_without_usdc_gets_failed_payment_and_nothing(
    client: TestClient,
    pipeline: Pipeline,
    devchain: Chain,
    deployment: Deployment,
    settings: Settings,
) -> None:
    pauper = Account.create()
    payment_id = buy(client, deployment.token.address, pauper.key.hex(), 2)
    status = wait_for(client, payment_id)

    assert status["status"] == "failed"
    assert status["error"]
    assert status["result"]["mints"] == []
    assert balances(devchain, deployment, pauper.address)[0] == 0
    with psycopg.connect(settings.database_url) as conn:
        count = conn.execute(
            "SELECT count(*) FROM mint_queue WHERE payment_id = %s", (payment_id,)
        ).fetchone()
    assert count == (0,)
