"""Many payments in one Multicall3 transaction: each call may fail alone, and each payment is settled
from the receipt's logs on its own — the ones whose money moved complete, the others do not."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from starlette.testclient import TestClient
from web3 import Web3

from cli.devnet import anvil, deploy
from shared.chain import multicall
from shared.chain.contracts import load_artifact
from shared.config import Settings
from shared.settlement import late_payments
from shared.settlement.payment_calls import transfer_args
from tests.integration.conftest import Chain, Deployment
from tests.integration.helpers import buy
from tests.integration.stages import Stages, chain_tx, finished, payment, query, rpc

pytestmark = pytest.mark.chain
GWEI = 10**9


def fresh_buyers(devchain: Chain, deployment: Deployment, n: int) -> list[LocalAccount]:
    buyers = [Account.from_key(os.urandom(32)) for _ in range(n)]
    deploy.fund(
        devchain.w3,
        anvil.dev_account(anvil.DEPLOYER).address,
        deployment.usdc.address,
        [b.address for b in buyers],
        100 * 10**6,
    )
    return buyers


def usdc_of(devchain: Chain, deployment: Deployment) -> object:
    return devchain.w3.eth.contract(
        address=Web3.to_checksum_address(deployment.usdc.address), abi=load_artifact("TestUSDC").abi
    )


def test_payments_share_one_transaction_and_a_failing_call_fails_only_its_payment(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment
) -> None:
    w3 = devchain.w3
    buyers = fresh_buyers(devchain, deployment, 3)
    token = deployment.token.address
    ids = [buy(client, token, b.key.hex(), q) for b, q in zip(buyers, (1, 2, 3), strict=True)]
    usdc = usdc_of(devchain, deployment)
    received = usdc.functions.balanceOf(Web3.to_checksum_address(token)).call  # type: ignore[attr-defined]
    before = received()
    stages = Stages(settings)
    rpc(w3, "evm_setAutomine", False)
    try:
        stages.payment.run_once()  # all three pass pre-flight and go out together
        rows = [payment(settings, i) for i in ids]
        assert {r["state"] for r in rows} == {"sent"}
        assert len({r["chain_tx_id"] for r in rows}) == 1
        ours = rows[0]["tx_hash"]
        assert rpc(w3, "eth_getTransactionByHash", ours)["to"] == multicall.CANONICAL_ADDRESS

        # Before it is mined, the second buyer moves all their USDC away (paying more: goes first).
        spender = buyers[1]
        rpc(w3, "anvil_setBalance", spender.address, hex(10**18))
        drain = usdc.functions.transfer(  # type: ignore[attr-defined]
            anvil.dev_account(anvil.DEPLOYER).address, 100 * 10**6
        ).build_transaction(
            {
                "from": spender.address,
                "nonce": 0,
                "gas": 100_000,
                "maxPriorityFeePerGas": 50 * GWEI,
                "maxFeePerGas": 1000 * GWEI,
                "chainId": devchain.chain_id,
            }
        )
        w3.eth.send_raw_transaction(spender.sign_transaction(drain).raw_transaction)
        rpc(w3, "evm_mine")
        assert rpc(w3, "eth_getTransactionReceipt", ours)["status"] == "0x1"  # the batch itself succeeds

        rpc(w3, "evm_setAutomine", True)
        stages.run_until(lambda: all(finished(settings, i) for i in ids))
        first, second, third = (payment(settings, i) for i in ids)
        assert (first["state"], first["minted"]) == ("completed", 1)
        assert (third["state"], third["minted"]) == ("completed", 3)
        assert second["state"] == "failed" and second["mints"] == 0
        # Its call failed in the shared transaction, so it was checked once more on its own (the call
        # may have failed for another's sake): that pre-flight says why — the money is gone.
        assert second["send_failures"] == 1 and "ERC20InsufficientBalance" in second["error"]
        assert chain_tx(settings, first["chain_tx_id"])["status"] == "confirmed"
        # On chain: the failed payment's authorization is still unused, and only two payments arrived.
        auth = bytes.fromhex(second["nonce"][2:])
        assert not usdc.functions.authorizationState(spender.address, auth).call()  # type: ignore[attr-defined]
        assert received() == before + 4 * deployment.token.price

        # Its authorization is still valid, so it stays watched: when the buyer has money again and
        # someone submits it after all, the payment revives and gets its mints.
        assert second["watch_until"] == second["valid_before"]
        rpc(w3, "evm_setAutomine", True)
        usdc.functions.transfer(spender.address, 100 * 10**6).transact(  # type: ignore[attr-defined]
            {"from": anvil.dev_account(anvil.DEPLOYER).address}
        )
        header_args = (second["payer"], token, int(second["amount"]), int(second["valid_after"]))
        late = usdc.functions.transferWithAuthorization(  # type: ignore[attr-defined]
            *transfer_args(
                *header_args, int(second["valid_before"]), auth, bytes.fromhex(second["signature"][2:])
            )
        ).transact({"from": anvil.dev_account(5).address})
        query(settings, "UPDATE payment_queue SET watch_next_at = now() WHERE id = %s RETURNING id", ids[1])
        stages.run_until(
            lambda: finished(settings, ids[1]) and payment(settings, ids[1])["state"] == "completed"
        )
        revived = payment(settings, ids[1])
        assert (revived["state"], revived["minted"]) == ("completed", 2)
        assert revived["tx_hash"] == "0x" + bytes(late).hex() and revived["watch_until"] is None
        assert received() == before + 6 * deployment.token.price
    finally:
        rpc(w3, "evm_setAutomine", True)
        stages.close()


def test_a_watched_payment_stops_being_watched_once_its_authorization_expired_unused(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment
) -> None:
    broke = Account.from_key(os.urandom(32))  # holds no USDC: pre-flight fails the payment
    payment_id = buy(client, deployment.token.address, broke.key.hex(), 1)
    stages = Stages(settings)
    try:
        stages.run_until(lambda: finished(settings, payment_id))
        row = payment(settings, payment_id)
        assert row["state"] == "failed" and row["watch_until"] == row["valid_before"]
        assert late_payments.watch(stages.runtimes[0]) == 0  # not due yet
        # Let its validBefore lie in the chain's past (the chain's clock decides, as the token does).
        query(
            settings,
            "UPDATE payment_queue SET watch_until = 1, watch_next_at = now() WHERE id = %s RETURNING id",
            payment_id,
        )
        assert late_payments.watch(stages.runtimes[0]) == 1
        row = payment(settings, payment_id)
        assert row["state"] == "failed" and row["watch_until"] is None and "expired" in row["last_error"]
    finally:
        stages.close()


def settle_purchases(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment, n: int, **changes: object
) -> list[dict[str, object]]:
    """n fresh buyers buy one unit each; the stages run with `changes` until all are finished."""
    ids = [
        buy(client, deployment.token.address, b.key.hex(), 1) for b in fresh_buyers(devchain, deployment, n)
    ]
    stages = Stages(replace(settings, **changes))  # type: ignore[arg-type]
    try:
        stages.run_until(lambda: all(finished(settings, i) for i in ids))
    finally:
        stages.close()
    rows = [payment(settings, i) for i in ids]
    assert all((r["state"], r["minted"]) == ("completed", 1) for r in rows)
    return rows


def test_without_an_aggregator_each_payment_is_its_own_transaction(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment
) -> None:
    rows = settle_purchases(client, settings, devchain, deployment, 2, payment_aggregator="")
    assert rows[0]["chain_tx_id"] != rows[1]["chain_tx_id"]
    for r in rows:
        assert rpc(devchain.w3, "eth_getTransactionByHash", r["tx_hash"])["to"] == deployment.usdc.address


def test_a_large_claim_is_split_into_transactions_of_the_aggregate_size(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment
) -> None:
    rows = settle_purchases(client, settings, devchain, deployment, 5, payment_aggregate_size=2)
    txs = [r["chain_tx_id"] for r in rows]
    assert sorted(txs.count(tx) for tx in set(txs)) == [1, 2, 2]
