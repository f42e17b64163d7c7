"""A payer who is the attacker, acting on chain as one would: its address holds code that burns the gas
of the transaction paying it (an EOA delegated with EIP-7702 does this: USDC asks the code whether the
payer signed, inside our call) — before our pre-flight, or only after it; or it has its authorization
run on chain long before it posts it to us. No honest payment may fail for the attacker's sake, and
money that arrived must end in mints (or a refund), never in a failed payment."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from starlette.testclient import TestClient

from cli.buyer import sign_payment
from cli.devnet import anvil, deploy
from shared.chain.contracts import load_artifact
from shared.chain.history import SearchLimits
from shared.config import Settings
from tests.integration.conftest import CHAIN_ID, Chain, Deployment
from tests.integration.helpers import ask_price
from tests.integration.stages import Stages, finished, payment, rpc
from tests.integration.strangers import Signed, Stranger

pytestmark = pytest.mark.chain
PRICE = 1_000_000


def funded(devchain: Chain, deployment: Deployment, usdc: int = 10 * PRICE) -> LocalAccount:
    buyer = Account.from_key(os.urandom(32))
    deployer = anvil.dev_account(anvil.DEPLOYER).address
    deploy.fund(devchain.w3, deployer, deployment.usdc.address, [buyer.address], usdc)
    return buyer


def post(client: TestClient, token: str, buyer: LocalAccount, quantity: int = 1) -> str:
    header = sign_payment(ask_price(client, token, quantity), buyer.key.hex(), chain_id=CHAIN_ID)
    reply = client.post(f"/api/mint/{token}", json={"quantity": quantity}, headers={"X-PAYMENT": header})
    assert reply.status_code == 202, reply.text
    return str(reply.json()["paymentQueueId"])


def burner_code(devchain: Chain) -> str:
    """Code that burns all the gas it is given when asked for a signature: a deployed TestGasBurner's,
    to be put at a payer's address as an EIP-7702 delegation would."""
    w3, artifact = devchain.w3, load_artifact("TestGasBurner")
    deployer = anvil.dev_account(anvil.DEPLOYER).address
    created = (
        w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        .constructor()
        .transact({"from": deployer})
    )
    burner = w3.eth.wait_for_transaction_receipt(created)["contractAddress"]
    return "0x" + bytes(w3.eth.get_code(burner)).hex()


def settle(stages: Stages, settings: Settings, ids: list[str]) -> list[dict[str, object]]:
    stages.run_until(lambda: all(finished(settings, i) for i in ids), timeout=90)
    return [payment(settings, i) for i in ids]


def test_a_payer_whose_code_burns_gas_never_shares_a_transaction(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment
) -> None:
    """Its code is there before the pre-flight (and says yes to a simulation, burns in a real
    transaction): its payment goes alone, so only its own call burns; the honest payments claimed with
    it all complete at the first try; it fails, after as many tries as PAYMENT_SEND_RETRIES allows."""
    token = deployment.token.address
    attacker = funded(devchain, deployment)
    rpc(devchain.w3, "anvil_setCode", attacker.address, burner_code(devchain))
    honest = [funded(devchain, deployment) for _ in range(3)]
    ids = [post(client, token, attacker)] + [post(client, token, b) for b in honest]
    stages = Stages(settings)
    try:
        rows = settle(stages, settings, ids)
    finally:
        stages.close()
    assert rows[0]["state"] == "failed" and rows[0]["mints"] == 0
    assert rows[0]["send_failures"] == settings.payment_send_retries
    assert len({rows[0]["chain_tx_id"], *(r["chain_tx_id"] for r in rows[1:])}) > 1
    for row in rows[1:]:
        assert row["state"] == "completed" and row["minted"] == 1, row
        assert row["send_failures"] == 0  # never hurt: the attacker was not in their transaction


def test_code_that_appears_after_the_pre_flight_costs_the_honest_payments_nothing(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment
) -> None:
    """The attacker's payment passes the pre-flight and goes out first in a shared transaction; its
    code arrives before that transaction is mined and burns the gas of every call after it. The honest
    payments' calls fail — for the attacker's sake: they are checked again and sent again, and
    complete; the attacker's fails, after as many tries as PAYMENT_SEND_RETRIES allows."""
    token = deployment.token.address
    attacker, code = funded(devchain, deployment), burner_code(devchain)
    honest = [funded(devchain, deployment) for _ in range(3)]
    ids = [post(client, token, attacker)] + [post(client, token, b) for b in honest]
    stages = Stages(settings)
    rpc(devchain.w3, "evm_setAutomine", False)
    try:
        stages.payment.run_once()  # all four pass the pre-flight and go out in one transaction
        rows = [payment(settings, i) for i in ids]
        assert {r["state"] for r in rows} == {"sent"} and len({r["chain_tx_id"] for r in rows}) == 1
        rpc(devchain.w3, "anvil_setCode", attacker.address, code)  # after the pre-flight, before mining
        rpc(devchain.w3, "evm_mine")
        receipt = rpc(devchain.w3, "eth_getTransactionReceipt", rows[0]["tx_hash"])
        assert receipt["gasUsed"] == rpc(devchain.w3, "eth_getTransactionByHash", rows[0]["tx_hash"])["gas"]
        assert not receipt["logs"]  # mined, out of gas: nobody paid
        rpc(devchain.w3, "evm_setAutomine", True)
        rows = settle(stages, settings, ids)
    finally:
        rpc(devchain.w3, "evm_setAutomine", True)
        stages.close()
    assert rows[0]["state"] == "failed" and rows[0]["mints"] == 0
    for row in rows[1:]:
        assert row["state"] == "completed" and row["minted"] == 1, row
        assert row["send_failures"] == 1  # sent again once, after the attacker's transaction


def test_an_authorization_run_long_before_it_was_posted_completes(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment
) -> None:
    """Paid on chain (by anyone) well before the buyer posts it — further back than an authorization we
    accept is normally signed (validBefore minus the longest validity): the search for its use goes on
    back to its validAfter, finds its own transfer, and the payment completes with its mints — never
    "used elsewhere" with the money kept. A nonce burnt that long before is still found, and fails."""
    token = deployment.token.address
    buyer = funded(devchain, deployment)
    header = sign_payment(ask_price(client, token, 2), buyer.key.hex(), chain_id=CHAIN_ID, valid_after=0)
    them = Stranger(devchain.w3, deployment.usdc.address, CHAIN_ID)
    assert them.receipt(them.submit(Signed.from_header(header)))["status"] == 1
    burnt = os.urandom(32)
    assert them.receipt(them.submit(them.zero_value(buyer.key.hex(), burnt)))["status"] == 1
    rpc(devchain.w3, "anvil_mine", hex(40))
    reply = client.post(f"/api/mint/{token}", json={"quantity": 2}, headers={"X-PAYMENT": header})
    paid_id = reply.json()["paymentQueueId"]
    late = sign_payment(
        ask_price(client, token, 1), buyer.key.hex(), chain_id=CHAIN_ID, nonce=burnt, valid_after=0
    )
    burnt_id = client.post(f"/api/mint/{token}", json={"quantity": 1}, headers={"X-PAYMENT": late}).json()[
        "paymentQueueId"
    ]
    # The usual window (validBefore minus one second here) holds neither use: only the search beyond it.
    narrow = replace(
        settings, log_search=SearchLimits(chunk_blocks=16, max_blocks=100_000, longest_validity=1)
    )
    stages = Stages(narrow)
    try:
        paid, burnt_row = settle(stages, narrow, [paid_id, burnt_id])
    finally:
        stages.close()
    assert paid["state"] == "completed" and paid["minted"] == 2, paid
    assert burnt_row["state"] == "failed" and str(burnt_row["error"]).startswith(
        "authorization_used_elsewhere: its nonce was used in"
    ), burnt_row["error"]
