"""Strangers on chain, acting as an attacker with a wallet would: each test is one way to try to mint
without paying, or to hold a payment (and its supply) forever. The chain decides every case: a payment
is paid only by its own transfer, and a nonce used by something else fails its payment at once."""

from __future__ import annotations

import os
import time
from dataclasses import replace

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from starlette.testclient import TestClient
from web3 import Web3

from api.app import create_app
from cli.buyer import sign_payment
from cli.devnet import anvil, deploy
from shared.chain.contracts import load_artifact
from shared.config import Settings
from tests.integration.conftest import CHAIN_ID, Chain, Deployment
from tests.integration.helpers import ask_price
from tests.integration.stages import Stages, finished, mine_past, payment, query, rpc
from tests.integration.strangers import Signed, Stranger

pytestmark = pytest.mark.chain
PRICE = 1_000_000  # the session token: 1 USDC a mint


def funded(devchain: Chain, deployment: Deployment, usdc: int) -> LocalAccount:
    buyer = Account.from_key(os.urandom(32))
    if usdc:
        deployer = anvil.dev_account(anvil.DEPLOYER).address
        deploy.fund(devchain.w3, deployer, deployment.usdc.address, [buyer.address], usdc)
    return buyer


def stranger(devchain: Chain, deployment: Deployment) -> Stranger:
    return Stranger(devchain.w3, deployment.usdc.address, CHAIN_ID)


def post(client: TestClient, token: str, header: str, quantity: int = 1) -> str:
    reply = client.post(f"/api/mint/{token}", json={"quantity": quantity}, headers={"X-PAYMENT": header})
    assert reply.status_code == 202, reply.text
    return str(reply.json()["paymentQueueId"])


def tokens_of(devchain: Chain, deployment: Deployment, holder: str) -> int:
    token = devchain.w3.eth.contract(
        address=Web3.to_checksum_address(deployment.token.address), abi=load_artifact("MintToken").abi
    )
    return int(token.functions.balanceOf(Web3.to_checksum_address(holder)).call())


def reserved(settings: Settings, deployment: Deployment) -> int:
    rows = query(
        settings, "SELECT reserved_mints FROM token_reservations WHERE address = %s", deployment.token.address
    )
    return int(rows[0]["reserved_mints"])


def run(settings: Settings, ids: list[str], timeout: float = 60.0) -> list[dict[str, object]]:
    stages = Stages(settings)
    try:
        stages.run_until(lambda: all(finished(settings, i) for i in ids), timeout=timeout)
    finally:
        stages.close()
    return [payment(settings, i) for i in ids]


def test_one_transfer_pays_one_payment_not_every_nonce_of_its_payer(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment
) -> None:
    """Defect 1 (pay once, mint many). A buyer funded for ONE mint signs A0..A3 (one mint each) and,
    with A1..A3's nonces, three 0-value authorizations to itself; one Multicall3 transaction runs A0
    and the three 0-value ones; then the buyer posts A0..A3. Only A0 may mint."""
    token = deployment.token.address
    buyer, them = funded(devchain, deployment, PRICE), stranger(devchain, deployment)
    offer = ask_price(client, token, 1)
    nonces = [os.urandom(32) for _ in range(4)]
    headers = [
        sign_payment(offer, buyer.key.hex(), chain_id=CHAIN_ID, nonce=n, valid_after=0) for n in nonces
    ]
    zeros = [them.zero_value(buyer.key.hex(), n) for n in nonces[1:]]
    batch = them.receipt(them.batch([Signed.from_header(headers[0]), *zeros]))
    assert batch["status"] == 1
    reserved_before = reserved(settings, deployment)

    ids = [post(client, token, h) for h in headers]
    rows = run(settings, ids)

    assert rows[0]["state"] == "completed" and rows[0]["minted"] == 1
    assert rows[0]["tx_hash"] == "0x" + bytes(batch["transactionHash"]).hex()
    for row in rows[1:]:
        assert row["state"] == "failed" and row["mints"] == 0
        assert str(row["error"]).startswith("authorization_used_elsewhere")
        assert row["watch_until"] is None and not row["supply_reserved"]  # final, supply given back
    assert tokens_of(devchain, deployment, buyer.address) == 1 * deployment.token.mint_amount
    assert reserved(settings, deployment) - reserved_before == 1  # A0's unit (minted); the rest given back


@pytest.mark.parametrize("how", ["zero_value", "cancel"])
def test_a_nonce_a_stranger_used_first_fails_the_payment_at_once(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment, how: str
) -> None:
    """Defect 2 (held forever). A stranger uses nonce n first (a 0-value authorization from the payer,
    or its cancellation); the payer then posts a valid A(n) for 3 mints. It must fail for good — its
    supply and the payer's open-payment slot given back — not wait for ever."""
    token = deployment.token.address
    buyer, them = funded(devchain, deployment, 10 * PRICE), stranger(devchain, deployment)
    nonce = os.urandom(32)
    if how == "zero_value":
        used = them.receipt(them.submit(them.zero_value(buyer.key.hex(), nonce)))
    else:
        used = them.receipt(them.cancel(buyer.key.hex(), nonce))
    assert used["status"] == 1
    reserved_before = reserved(settings, deployment)

    header = sign_payment(
        ask_price(client, token, 3), buyer.key.hex(), chain_id=CHAIN_ID, nonce=nonce, valid_after=0
    )
    payment_id = post(client, token, header, 3)
    assert reserved(settings, deployment) == reserved_before + 3
    (row,) = run(settings, [payment_id], timeout=30)

    assert row["state"] == "failed" and row["mints"] == 0
    expected = "authorization_used_elsewhere" if how == "zero_value" else "authorization_canceled"
    assert str(row["error"]).startswith(expected), row["error"]
    assert row["watch_until"] is None  # nothing left to watch: the nonce is gone
    assert reserved(settings, deployment) == reserved_before
    open_slots = query(
        settings,
        "SELECT count(*) AS n FROM payment_queue"
        " WHERE payer = %s AND status IN ('pending', 'processing', 'sent')",
        buyer.address.lower(),
    )
    assert open_slots[0]["n"] == 0


def test_a_payment_paid_in_a_transaction_already_settled_is_completed(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment
) -> None:
    """Defect 3 (paid but never minted). A stranger executes A and B in one transaction; A is posted
    and completes; B is posted afterwards: it must complete too, from the same receipt."""
    token = deployment.token.address
    buyer, them = funded(devchain, deployment, 10 * PRICE), stranger(devchain, deployment)
    offer = ask_price(client, token, 2)
    a, b = (sign_payment(offer, buyer.key.hex(), chain_id=CHAIN_ID) for _ in range(2))
    batch = them.receipt(them.batch([Signed.from_header(a), Signed.from_header(b)]))
    theirs = "0x" + bytes(batch["transactionHash"]).hex()

    (first,) = run(settings, [post(client, token, a, 2)])
    (second,) = run(settings, [post(client, token, b, 2)])

    for row in (first, second):
        assert row["state"] == "completed" and row["minted"] == 2 and row["tx_hash"] == theirs
    assert first["paid_log_index"] != second["paid_log_index"]  # each by its own Transfer log


def test_a_strangers_paying_transaction_replaced_in_a_reorg_is_followed(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment
) -> None:
    """A stranger's transaction T1 pays A, but is not deep enough to trust (CONFIRMATIONS=3): nothing is
    decided from it. A reorg replaces it by T2, another transaction running the same authorization:
    the payment completes from T2."""
    deep = replace(settings, confirmations=3)
    token = deployment.token.address
    buyer, them = funded(devchain, deployment, 10 * PRICE), stranger(devchain, deployment)
    header = sign_payment(ask_price(client, token, 1), buyer.key.hex(), chain_id=CHAIN_ID)
    payment_id = post(client, token, header)
    stages = Stages(deep)
    try:
        snapshot = rpc(devchain.w3, "evm_snapshot")
        t1 = them.submit(Signed.from_header(header))
        assert them.receipt(t1)["status"] == 1  # one block deep
        stages.payment.run_once()  # the pre-flight finds it used; at depth 3 it is not: wait
        assert payment(deep, payment_id)["state"] == "pending"

        assert rpc(devchain.w3, "evm_revert", snapshot) is True  # the reorg: T1 is gone
        other = stranger(devchain, deployment)
        t2 = other.submit(Signed.from_header(header))
        assert other.receipt(t2)["status"] == 1 and t2 != t1
        for _ in range(3):
            rpc(devchain.w3, "evm_mine")
        settle_while_mining(stages, devchain, deep, payment_id)
    finally:
        stages.close()
    row = payment(deep, payment_id)
    assert row["state"] == "completed" and row["minted"] == 1 and row["tx_hash"] == t2


def test_a_payment_paid_by_a_stranger_then_expired_is_completed_not_failed(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment
) -> None:
    """FiatToken checks expiry before use, so a used authorization that has since expired pre-flights
    as "expired". A stranger pays A (not yet CONFIRMATIONS deep: payment-sender waits); A's validBefore
    passes; at the next look the head says "expired" — and the chain at depth says paid: it completes."""
    quick = replace(settings, confirmations=3, settle_margin_seconds=1)
    token = deployment.token.address
    buyer, them = funded(devchain, deployment, 10 * PRICE), stranger(devchain, deployment)
    with TestClient(create_app(quick)) as quick_client:
        valid_before = int(time.time()) + 4
        header = sign_payment(
            ask_price(quick_client, token, 1), buyer.key.hex(), chain_id=CHAIN_ID, valid_before=valid_before
        )
        payment_id = post(quick_client, token, header)
    paid = them.submit(Signed.from_header(header))
    assert them.receipt(paid)["status"] == 1
    stages = Stages(quick)
    try:
        stages.payment.run_once()  # used at the head, not at depth: it waits
        assert payment(quick, payment_id)["state"] == "pending"
        mine_past(devchain.w3, valid_before)
        settle_while_mining(stages, devchain, quick, payment_id)
    finally:
        stages.close()
    row = payment(quick, payment_id)
    assert row["state"] == "completed" and row["minted"] == 1 and row["tx_hash"] == paid


def settle_while_mining(stages: Stages, devchain: Chain, settings: Settings, payment_id: str) -> None:
    """Lets the payment be looked at again now, then runs the stages with a block mined at each look
    (so our own transactions reach depth too) until the payment is finished."""
    query(settings, "UPDATE payment_queue SET locked_until = NULL WHERE id = %s RETURNING id", payment_id)

    def settled() -> bool:
        rpc(devchain.w3, "evm_mine")
        return finished(settings, payment_id)

    stages.run_until(settled)
