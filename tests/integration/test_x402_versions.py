"""x402 v1 and v2 side by side: the 402 carries both forms, either header pays, and v1 is refused
with a clear reason on a chain that has no v1 network name."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from cli.buyer import sign_payment, sign_payment_v2
from cli.devnet import anvil
from shared.config import Settings
from tests.integration.conftest import CHAIN_ID, Deployment, Pipeline
from tests.integration.helpers import ask_price, wait_for

pytestmark = pytest.mark.chain
BUYER = anvil.dev_account(14)


def required_v2(client: TestClient, token: str, quantity: int) -> dict[str, Any]:
    reply = client.post(f"/api/mint/{token}", json={"quantity": quantity})
    assert reply.status_code == 402
    decoded: dict[str, Any] = json.loads(base64.b64decode(reply.headers["payment-required"]))
    return decoded


def test_the_402_carries_v1_body_and_v2_header(client: TestClient, deployment: Deployment) -> None:
    token = deployment.token.address
    reply = client.post(f"/api/mint/{token}", json={"quantity": 2})
    assert reply.json()["x402Version"] == 1 and reply.json()["accepts"][0]["network"] == "base-sepolia"
    required = required_v2(client, token, 2)
    assert required["x402Version"] == 2
    assert required["resource"]["url"].endswith(f"/api/mint/{token}")
    assert required["resource"]["mimeType"] == "application/json" and required["resource"]["description"]
    (accept,) = required["accepts"]
    assert accept["scheme"] == "exact" and accept["network"] == f"eip155:{CHAIN_ID}"
    assert accept["amount"] == str(2 * deployment.token.price)
    assert accept["asset"].lower() == deployment.usdc.address and accept["payTo"].lower() == token
    assert accept["extra"] == {"name": "USD Coin", "version": "2"} and accept["maxTimeoutSeconds"] > 0


def test_a_v2_payment_buys_tokens(client: TestClient, pipeline: Pipeline, deployment: Deployment) -> None:
    token = deployment.token.address
    header = sign_payment_v2(required_v2(client, token, 3), BUYER.key.hex())
    reply = client.post(f"/api/mint/{token}", json={"quantity": 3}, headers={"PAYMENT-SIGNATURE": header})
    assert reply.status_code == 202, reply.text
    status = wait_for(client, reply.json()["paymentQueueId"])
    assert status["status"] == "completed" and len(status["result"]["mints"]) == 3


def _accepted(client: TestClient, token: str, **changes: Any) -> dict[str, Any]:
    return {**required_v2(client, token, 1)["accepts"][0], **changes}


V2_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "another asset": ({"asset": "0x" + "11" * 20}, "invalid_payment_requirements"),
    "another network": ({"network": "eip155:1"}, "network_mismatch"),
    "another scheme": ({"scheme": "upto"}, "unsupported_scheme"),
    "another payTo": ({"payTo": "0x" + "22" * 20}, "invalid_exact_evm_payload_recipient_mismatch"),
    "another amount": ({"amount": "1"}, "invalid_exact_evm_payload_authorization_value_mismatch"),
}


@pytest.mark.parametrize("case", list(V2_CASES))
def test_v2_accepted_must_match_the_offer(client: TestClient, deployment: Deployment, case: str) -> None:
    token = deployment.token.address
    changes, reason = V2_CASES[case]
    header = sign_payment_v2(
        required_v2(client, token, 1), BUYER.key.hex(), accepted=_accepted(client, token, **changes)
    )
    reply = client.post(f"/api/mint/{token}", json={"quantity": 1}, headers={"PAYMENT-SIGNATURE": header})
    assert reply.status_code == 400 and reply.json()["reason"] == reason, reply.text


def test_both_headers_at_once_is_refused(client: TestClient, deployment: Deployment) -> None:
    token = deployment.token.address
    v1 = sign_payment(ask_price(client, token, 1), BUYER.key.hex())
    v2 = sign_payment_v2(required_v2(client, token, 1), BUYER.key.hex())
    reply = client.post(
        f"/api/mint/{token}", json={"quantity": 1}, headers={"X-PAYMENT": v1, "PAYMENT-SIGNATURE": v2}
    )
    assert reply.status_code == 400 and reply.json()["reason"] == "invalid_payload"


def test_v1_on_a_chain_without_a_v1_name_is_refused_clearly(
    settings: Settings, deployment: Deployment
) -> None:
    with TestClient(create_app(replace(settings, chain_id=31337))) as client:
        token = deployment.token.address
        reply = client.post(f"/api/mint/{token}", json={"quantity": 1})
        assert reply.status_code == 402
        assert reply.json()["x402Version"] == 2  # no v1 offer; the body carries the v2 form
        assert "payment-required" in reply.headers
        v1_accept = {**_accepted(client, token), "network": "base-sepolia", "maxAmountRequired": "1000000"}
        header = sign_payment(v1_accept, BUYER.key.hex(), chain_id=31337)
        refused = client.post(f"/api/mint/{token}", json={"quantity": 1}, headers={"X-PAYMENT": header})
        assert refused.status_code == 400 and refused.json()["reason"] == "invalid_x402_version"
        assert "version 2" in refused.json()["message"]


def test_v2_only_and_v1_only_servers(settings: Settings, deployment: Deployment) -> None:
    token = deployment.token.address
    with TestClient(create_app(replace(settings, x402_versions=(1,)))) as client:
        reply = client.post(f"/api/mint/{token}", json={"quantity": 1})
        assert reply.json()["x402Version"] == 1 and "payment-required" not in reply.headers
    with TestClient(create_app(replace(settings, x402_versions=(2,)))) as client:
        reply = client.post(f"/api/mint/{token}", json={"quantity": 1})
        assert reply.json()["x402Version"] == 2 and "payment-required" in reply.headers
        header = sign_payment(
            {**_accepted(client, token), "maxAmountRequired": "1000000", "network": "base-sepolia"},
            BUYER.key.hex(),
        )
        refused = client.post(f"/api/mint/{token}", json={"quantity": 1}, headers={"X-PAYMENT": header})
        assert refused.json()["reason"] == "invalid_x402_version"
