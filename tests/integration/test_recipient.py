"""A recipient other than the payer only when the signed nonce commits to it."""

from __future__ import annotations

import os

import pytest
from starlette.testclient import TestClient
from web3 import Web3

from cli.buyer import sign_payment
from cli.devnet import anvil
from shared.chain.contracts import load_artifact
from shared.config import Settings
from tests.integration.conftest import Chain, Deployment, Pipeline
from tests.integration.helpers import ask_price, wait_for

pytestmark = pytest.mark.chain
PAYER, FRIEND = anvil.dev_account(13), anvil.dev_account(7)


def test_a_bound_recipient_gets_the_tokens(
    client: TestClient, pipeline: Pipeline, devchain: Chain, deployment: Deployment
) -> None:
    token = deployment.token.address
    salt = os.urandom(32)
    header = sign_payment(ask_price(client, token, 2), PAYER.key.hex(), recipient=FRIEND.address, salt=salt)
    reply = client.post(
        f"/api/mint/{token}",
        headers={"X-PAYMENT": header},
        json={"quantity": 2, "recipient": FRIEND.address, "recipientSalt": "0x" + salt.hex()},
    )
    assert reply.status_code == 202, reply.text
    status = wait_for(client, reply.json()["paymentQueueId"])
    assert status["recipient"] == FRIEND.address.lower() and status["payer"] == PAYER.address.lower()
    contract = devchain.w3.eth.contract(
        address=Web3.to_checksum_address(token), abi=load_artifact("MintToken").abi
    )
    events = contract.events.TokensMinted().get_logs(from_block=0)
    minted_to = {e["args"]["mintId"].hex(): e["args"]["to"] for e in events}
    assert all(minted_to[m["mintId"][2:]] == FRIEND.address for m in status["result"]["mints"])


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"recipient": FRIEND.address}, "recipient_not_bound"),  # no salt: the nonce binds nothing
        ({"recipient": FRIEND.address, "recipientSalt": "0x" + "00" * 32}, "recipient_not_bound"),
        ({"recipient": "0x1234"}, "invalid_recipient"),
        ({"recipient": 42}, "invalid_recipient"),
        ({"recipient": FRIEND.address, "recipientSalt": "0xzz"}, "invalid_recipient"),
        ({"recipientSalt": "0x" + "00" * 32}, "invalid_recipient"),
        # Bound or not, the zero address would be paid for and never minted to (the token skips it).
        ({"recipient": "0x" + "00" * 20, "recipientSalt": "0x" + "00" * 32}, "invalid_recipient"),
    ],
)
def test_an_unbound_or_malformed_recipient_is_refused(
    client: TestClient, deployment: Deployment, settings: Settings, body: dict[str, object], reason: str
) -> None:
    token = deployment.token.address
    header = sign_payment(ask_price(client, token, 1), PAYER.key.hex())
    reply = client.post(f"/api/mint/{token}", json={"quantity": 1, **body}, headers={"X-PAYMENT": header})
    assert reply.status_code == 400 and reply.json()["reason"] == reason, reply.text


def test_the_payer_as_recipient_needs_no_binding(client: TestClient, deployment: Deployment) -> None:
    token = deployment.token.address
    header = sign_payment(ask_price(client, token, 1), PAYER.key.hex())
    reply = client.post(
        f"/api/mint/{token}", json={"quantity": 1, "recipient": PAYER.address}, headers={"X-PAYMENT": header}
    )
    assert reply.status_code == 202
