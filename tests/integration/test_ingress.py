"""The ingress on a real database: every rejection has its status and reason and stores nothing."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from cli.buyer import sign_payment
from cli.devnet import anvil
from shared.config import Settings
from shared.x402.eip3009 import SECP256K1_N
from tests.integration.conftest import CHAIN_ID, Deployment
from tests.integration.helpers import ask_price

pytestmark = pytest.mark.chain
BUYER = anvil.dev_account(12)
OTHER = anvil.dev_account(13)


@pytest.fixture
def token(deployment: Deployment) -> str:
    return deployment.token.address


def payment_rows(settings: Settings) -> int:
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM payment_queue").fetchone()
    assert row is not None
    return int(row[0])


def tamper(header: str, change: Callable[[dict[str, Any]], None]) -> str:
    document = json.loads(base64.b64decode(header))
    change(document)
    return base64.b64encode(json.dumps(document).encode()).decode()


def test_no_payment_header_answers_402_with_requirements(
    client: TestClient, token: str, deployment: Deployment
) -> None:
    reply = client.post(f"/api/mint/{token}", json={"quantity": 3})
    assert reply.status_code == 402
    body = reply.json()
    assert body["x402Version"] == 1 and body["error"] == "X-PAYMENT header is required"
    (accept,) = body["accepts"]
    assert accept["scheme"] == "exact"
    assert accept["network"] == "base-sepolia"
    assert accept["maxAmountRequired"] == str(3 * deployment.token.price)
    assert accept["payTo"].lower() == token
    assert accept["asset"].lower() == deployment.usdc.address
    assert accept["extra"] == {"name": "USD Coin", "version": "2"}
    assert accept["mimeType"] == "application/json"
    assert accept["resource"].endswith(f"/api/mint/{token}")
    assert accept["maxTimeoutSeconds"] > 0


def _valid(client: TestClient, token: str, quantity: int = 1, **kw: Any) -> str:
    return sign_payment(ask_price(client, token, quantity), BUYER.key.hex(), chain_id=CHAIN_ID, **kw)


def with_signature(header: str, change: Callable[[bytes], str]) -> str:
    """The same payment with its signature rewritten by `change` (bytes → new 0x string)."""

    def rewrite(document: dict[str, Any]) -> None:
        signature = bytes.fromhex(document["payload"]["signature"][2:])
        document["payload"]["signature"] = change(signature)

    return tamper(header, rewrite)


def high_s(sig: bytes) -> str:
    """The malleable twin of a valid signature: s → n - s and v flipped (recovers the same key)."""
    s_value = SECP256K1_N - int.from_bytes(sig[32:64], "big")
    return "0x" + (sig[:32] + s_value.to_bytes(32, "big") + bytes([55 - sig[64]])).hex()


CASES: dict[str, tuple[Callable[[TestClient, str], str], int, str]] = {
    "not base64": (lambda c, t: "%%%not-base64%%%", 400, "invalid_payload"),
    "base64 of non-JSON": (lambda c, t: base64.b64encode(b"hello").decode(), 400, "invalid_payload"),
    "JSON of the wrong shape": (
        lambda c, t: base64.b64encode(b'{"x402Version":1}').decode(),
        400,
        "invalid_payload",
    ),
    "unknown version": (
        lambda c, t: tamper(_valid(c, t), lambda d: d.update(x402Version=7)),
        400,
        "invalid_x402_version",
    ),
    "unknown scheme": (
        lambda c, t: tamper(_valid(c, t), lambda d: d.update(scheme="upto")),
        400,
        "unsupported_scheme",
    ),
    "wrong network": (lambda c, t: _valid(c, t, network="base"), 400, "network_mismatch"),
    "signed by another key": (
        lambda c, t: tamper(
            sign_payment(ask_price(c, t, 1), OTHER.key.hex(), chain_id=CHAIN_ID),
            lambda d: d["payload"]["authorization"].update({"from": BUYER.address.lower()}),
        ),
        400,
        "invalid_exact_evm_payload_signature",
    ),
    "signed over another domain version": (
        lambda c, t: sign_payment(
            {**ask_price(c, t, 1), "extra": {"name": "USD Coin", "version": "1"}},
            BUYER.key.hex(),
            chain_id=CHAIN_ID,
        ),
        400,
        "invalid_exact_evm_payload_signature",
    ),
    "signed for another chain": (
        lambda c, t: sign_payment(ask_price(c, t, 1), BUYER.key.hex(), chain_id=8453),
        400,
        "invalid_exact_evm_payload_signature",
    ),
    "pays someone else": (
        lambda c, t: sign_payment(
            {**ask_price(c, t, 1), "payTo": OTHER.address}, BUYER.key.hex(), chain_id=CHAIN_ID
        ),
        400,
        "invalid_exact_evm_payload_recipient_mismatch",
    ),
    "pays too little": (
        lambda c, t: _valid(c, t, 2, value=1_999_999),
        400,
        "invalid_exact_evm_payload_authorization_value_mismatch",
    ),
    "pays too much": (
        lambda c, t: _valid(c, t, 2, value=2_000_001),
        400,
        "invalid_exact_evm_payload_authorization_value_mismatch",
    ),
    "not valid yet": (
        lambda c, t: _valid(c, t, valid_after=int(time.time()) + 3600),
        400,
        "invalid_exact_evm_payload_authorization_valid_after",
    ),
    "expired": (
        lambda c, t: _valid(c, t, valid_before=int(time.time()) - 1),
        400,
        "invalid_exact_evm_payload_authorization_valid_before",
    ),
    "expires before it can settle": (
        lambda c, t: _valid(c, t, valid_before=int(time.time()) + 5),
        400,
        "invalid_exact_evm_payload_authorization_valid_before",
    ),
    "signature one byte short": (
        lambda c, t: with_signature(_valid(c, t), lambda sig: "0x" + sig[:64].hex()),
        400,
        "invalid_exact_evm_payload_signature",
    ),
    "signature not hex": (
        lambda c, t: with_signature(_valid(c, t), lambda sig: "0x" + "zz" * 65),
        400,
        "invalid_payload",
    ),
    "signature with v = 0": (
        lambda c, t: with_signature(
            _valid(c, t), lambda sig: "0x" + (sig[:64] + bytes([sig[64] - 27])).hex()
        ),
        400,
        "invalid_exact_evm_payload_signature",
    ),
    "high-s (malleable) signature": (
        lambda c, t: with_signature(_valid(c, t), high_s),
        400,
        "invalid_exact_evm_payload_signature",
    ),
    "signed over another domain name": (
        lambda c, t: sign_payment(
            {**ask_price(c, t, 1), "extra": {"name": "USDC", "version": "2"}},
            BUYER.key.hex(),
            chain_id=CHAIN_ID,
        ),
        400,
        "invalid_exact_evm_payload_signature",
    ),
    "signed for another contract": (
        lambda c, t: sign_payment(
            {**ask_price(c, t, 1), "asset": "0x" + "12" * 20}, BUYER.key.hex(), chain_id=CHAIN_ID
        ),
        400,
        "invalid_exact_evm_payload_signature",
    ),
    "nonce not 32 bytes": (
        lambda c, t: tamper(_valid(c, t), lambda d: d["payload"]["authorization"].update(nonce="0x1234")),
        400,
        "invalid_payload",
    ),
    "value not a number": (
        lambda c, t: tamper(_valid(c, t), lambda d: d["payload"]["authorization"].update(value="1e6")),
        400,
        "invalid_payload",
    ),
    "payer not an address": (
        lambda c, t: tamper(_valid(c, t), lambda d: d["payload"]["authorization"].update({"from": "0xabc"})),
        400,
        "invalid_payload",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_verification_failure_has_its_reason_and_stores_nothing(
    client: TestClient, token: str, settings: Settings, case: str
) -> None:
    make_header, status, reason = CASES[case]
    quantity = 2 if "pays too" in case else 1
    header = make_header(client, token)
    before = payment_rows(settings)
    reply = client.post(f"/api/mint/{token}", json={"quantity": quantity}, headers={"X-PAYMENT": header})
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert body["reason"] == reason
    assert body["error"] == "x402 payment verification failed"
    assert isinstance(body["message"], str) and body["message"]
    assert payment_rows(settings) == before


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"quantity": 0}, "invalid_quantity"),
        ({"quantity": -1}, "invalid_quantity"),
        ({"quantity": 11}, "invalid_quantity"),
        ({"quantity": "3"}, "invalid_quantity"),
        ({"quantity": 1.5}, "invalid_quantity"),
        ({"quantity": True}, "invalid_quantity"),
        ({"quantity": 10**30}, "invalid_quantity"),
        ([1], "invalid_body"),
        ("not json", "invalid_body"),
    ],
)
def test_bad_body_is_400_with_its_reason(
    client: TestClient, token: str, settings: Settings, body: Any, reason: str
) -> None:
    before = payment_rows(settings)
    content = body if isinstance(body, str) else json.dumps(body)
    reply = client.post(f"/api/mint/{token}", content=content, headers={"X-PAYMENT": _valid(client, token)})
    assert reply.status_code == 400
    assert reply.json()["reason"] == reason
    assert payment_rows(settings) == before


def test_unknown_token_is_404(client: TestClient, settings: Settings) -> None:
    before = payment_rows(settings)
    for address in ("0x" + "ab" * 20, "not-an-address"):
        reply = client.post(f"/api/mint/{address}", json={"quantity": 1})
        assert reply.status_code == 404
        assert reply.json()["reason"] == "unknown_token"
    assert payment_rows(settings) == before


def test_a_retry_gets_the_same_answer_and_another_payload_with_the_nonce_409(
    client: TestClient, token: str, settings: Settings
) -> None:
    """A client that does not know whether its payment arrived posts it again: the same 202, the same
    payment (no second row). Another payload reusing the nonce is refused, naming the payment."""
    nonce = os.urandom(32)
    header = _valid(client, token, nonce=nonce)
    first = client.post(f"/api/mint/{token}", json={"quantity": 1}, headers={"X-PAYMENT": header})
    assert first.status_code == 202
    payment_id = first.json()["paymentQueueId"]
    assert first.headers["location"] == f"/api/payment/{payment_id}"
    before = payment_rows(settings)
    again = client.post(f"/api/mint/{token}", json={"quantity": 1}, headers={"X-PAYMENT": header})
    assert again.status_code == 202 and again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    other_payload = _valid(client, token, nonce=nonce, valid_before=int(time.time()) + 200)
    reused = client.post(f"/api/mint/{token}", json={"quantity": 1}, headers={"X-PAYMENT": other_payload})
    assert reused.status_code == 409
    assert reused.json()["paymentQueueId"] == payment_id
    assert reused.json()["reason"] == "nonce_already_used"
    assert payment_rows(settings) == before


def test_status_endpoint_answers_400_404_and_the_payment(client: TestClient, token: str) -> None:
    assert client.get("/api/payment/not-a-uuid").status_code == 400
    assert client.get("/api/payment/not-a-uuid").json()["reason"] == "invalid_payment_id"
    assert client.get(f"/api/payment/{uuid.uuid4()}").status_code == 404
    accepted = client.post(
        f"/api/mint/{token}", json={"quantity": 2}, headers={"X-PAYMENT": _valid(client, token, 2)}
    )
    body = client.get(f"/api/payment/{accepted.json()['paymentQueueId']}").json()
    assert body["payer"] == BUYER.address.lower() == body["recipient"]
    assert body["token"] == token and body["quantity"] == 2 and body["amount"] == "2000000"
    assert body["status"] in {"pending", "processing", "sent", "completed"}


def test_token_info_and_health(client: TestClient, token: str, deployment: Deployment) -> None:
    info = client.get(f"/api/tokens/{token}").json()
    assert info["price"] == str(deployment.token.price)
    assert info["asset"]["address"] == deployment.usdc.address
    assert info["mintAmount"] == str(deployment.token.mint_amount)
    assert info["maxMintCount"] == deployment.token.max_mint_count
    assert info["remaining"] == info["maxMintCount"] - info["minted"]
    assert client.get(f"/api/tokens/0x{'00' * 20}").status_code == 404
    assert client.get("/healthz").json() == {"status": "ok"}
