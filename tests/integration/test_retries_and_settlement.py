"""Every client can retry safely and see the settlement in the protocol's terms: a retry after a lost
answer gets the original order; the v2 payment-identifier extension; the settlement header at each
stage of a payment."""

from __future__ import annotations

import base64
import json
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from cli.buyer import sign_payment, sign_payment_v2
from cli.devnet import anvil
from shared.config import Settings
from shared.x402 import (
    decode_payment_response,
    decode_payment_signature_header,
    encode_payment_signature_header,
)
from tests.integration.conftest import CHAIN_ID, Deployment, LiveServer, with_settings
from tests.integration.helpers import ask_price
from tests.integration.stages import Stages, finished, query, rpc

pytestmark = pytest.mark.chain
BUYER = anvil.dev_account(17)


def rows_of(settings: Settings, nonce_hex: str) -> int:
    return int(query(settings, "SELECT count(*) AS n FROM payment_queue WHERE nonce = %s", nonce_hex)[0]["n"])


def nonce_of(header: str) -> str:
    return "0x" + json.loads(base64.b64decode(header))["payload"]["authorization"]["nonce"][2:]


def test_a_client_that_gives_up_waiting_and_retries_gets_its_original_order(
    live_api: LiveServer, settings: Settings, deployment: Deployment
) -> None:
    """The first request goes out and its answer is never read (the client timed out and closed the
    connection); the retry of the same signed payment gets that payment, and no second one exists."""
    import httpx

    token = deployment.token.address
    offer = httpx.post(f"{live_api.url}/api/mint/{token}", json={"quantity": 1}).json()["accepts"][0]
    header = sign_payment(offer, BUYER.key.hex(), chain_id=CHAIN_ID)
    body = b'{"quantity": 1}'
    request = (
        f"POST /api/mint/{token} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-PAYMENT: {header}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", live_api.port)) as lost:
        lost.sendall(request)  # ... and hang up without reading the answer
    deadline = time.monotonic() + 10
    while rows_of(settings, nonce_of(header)) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rows_of(settings, nonce_of(header)) == 1  # it was taken, though nobody heard the 202

    retry = httpx.post(
        f"{live_api.url}/api/mint/{token}", json={"quantity": 1}, headers={"X-PAYMENT": header}
    )
    assert retry.status_code == 202, retry.text
    (original,) = query(settings, "SELECT id::text FROM payment_queue WHERE nonce = %s", nonce_of(header))
    assert retry.json()["paymentQueueId"] == original["id"]
    assert retry.headers["location"] == f"/api/payment/{original['id']}"
    assert rows_of(settings, nonce_of(header)) == 1


def with_identifier(header: str, identifier: str) -> str:
    payment = decode_payment_signature_header(header)
    extensions = {"payment-identifier": {"info": {"required": False, "id": identifier}}}
    return encode_payment_signature_header(
        type(payment)(
            **{**{f: getattr(payment, f) for f in payment.__dataclass_fields__}, "extensions": extensions}
        )
    )


def pay_v2(client: TestClient, token: str, identifier: str | None, quantity: int = 1) -> tuple[Any, str]:
    required = client.post(f"/api/mint/{token}", json={"quantity": quantity}).headers["payment-required"]
    header = sign_payment_v2(required, BUYER.key.hex(), chain_id=CHAIN_ID)
    if identifier is not None:
        header = with_identifier(header, identifier)
    reply = client.post(
        f"/api/mint/{token}", json={"quantity": quantity}, headers={"PAYMENT-SIGNATURE": header}
    )
    return reply, header


def test_the_payment_identifier_extension(
    client: TestClient, settings: Settings, deployment: Deployment
) -> None:
    token = deployment.token.address
    required = json.loads(
        base64.b64decode(client.post(f"/api/mint/{token}", json={}).headers["payment-required"])
    )
    declared = required["extensions"]["payment-identifier"]
    assert declared["info"] == {"required": False} and declared["schema"]["required"] == ["required"]

    identifier = "pay_" + os.urandom(16).hex()
    first, header = pay_v2(client, token, identifier)
    assert first.status_code == 202, first.text
    # Same id, same payload: the cached answer — from another API process (its own pool) too.
    with TestClient(create_app(settings)) as elsewhere:
        again = elsewhere.post(
            f"/api/mint/{token}", json={"quantity": 1}, headers={"PAYMENT-SIGNATURE": header}
        )
    assert again.status_code == 202 and again.json() == first.json()
    # Same id, another payload (a new authorization): 409, and nothing stored.
    before = query(settings, "SELECT count(*) AS n FROM payment_queue")[0]["n"]
    other, _ = pay_v2(client, token, identifier, quantity=2)
    assert other.status_code == 409
    assert other.json()["reason"] == "payment_identifier_reused"
    # ... naming the payer's payment that holds the id: a client whose 202 was lost finds what it paid
    assert other.json()["paymentQueueId"] == first.json()["paymentQueueId"]
    # A re-signed authorization for the same purchase is another payload too: never a second payment.
    resigned, _ = pay_v2(client, token, identifier)
    assert resigned.status_code == 409 and resigned.json()["reason"] == "payment_identifier_reused"
    assert resigned.json()["paymentQueueId"] == first.json()["paymentQueueId"]
    assert query(settings, "SELECT count(*) AS n FROM payment_queue")[0]["n"] == before
    # A malformed id is refused.
    bad, _ = pay_v2(client, token, "short")
    assert bad.status_code == 400 and bad.json()["reason"] == "invalid_payment_identifier"


def test_a_server_that_requires_the_identifier_refuses_a_payment_without_it(
    settings: Settings, deployment: Deployment
) -> None:
    token = deployment.token.address
    with TestClient(create_app(with_settings(settings, payment_identifier_required=True))) as strict:
        required = strict.post(f"/api/mint/{token}", json={}).headers["payment-required"]
        declared = json.loads(base64.b64decode(required))["extensions"]["payment-identifier"]
        assert declared["info"] == {"required": True}
        missing, header = pay_v2(strict, token, None)
        assert missing.status_code == 400 and missing.json()["reason"] == "payment_identifier_required"
        assert rows_of(settings, nonce_of(header)) == 0
        named, _ = pay_v2(strict, token, "pay_" + os.urandom(16).hex())
        assert named.status_code == 202


@pytest.fixture
def stages(settings: Settings) -> Iterator[Stages]:
    running = Stages(settings)
    yield running
    running.close()


@pytest.mark.parametrize("version", [1, 2])
def test_the_settlement_header_at_each_stage(
    client: TestClient,
    settings: Settings,
    deployment: Deployment,
    stages: Stages,
    manual_mining: None,
    version: int,
) -> None:
    token = deployment.token.address
    if version == 1:
        header = sign_payment(ask_price(client, token, 1), BUYER.key.hex(), chain_id=CHAIN_ID)
        reply = client.post(f"/api/mint/{token}", json={"quantity": 1}, headers={"X-PAYMENT": header})
        name, network = "x-payment-response", "base-sepolia"
    else:
        reply, _ = pay_v2(client, token, None)
        name, network = "payment-response", f"eip155:{CHAIN_ID}"
    assert reply.status_code == 202
    assert "payment-response" not in reply.headers and "x-payment-response" not in reply.headers
    payment_id = reply.json()["paymentQueueId"]

    def settlement() -> dict[str, Any] | None:
        answer = client.get(f"/api/payment/{payment_id}")
        other = "payment-response" if name == "x-payment-response" else "x-payment-response"
        assert other not in answer.headers  # only the payment's own version's header
        return decode_payment_response(answer.headers[name]) if name in answer.headers else None

    assert settlement() is None  # pending: no transaction yet
    stages.payment.run_once()  # signed, stored, broadcast; not mined (manual mining)
    pending = settlement()
    assert (
        pending is not None and pending["success"] is False and pending["errorReason"] == "settlement_pending"
    )
    (sent,) = query(settings, "SELECT tx_hash FROM payment_queue WHERE id = %s", payment_id)
    assert pending["transaction"] == sent["tx_hash"] and pending["network"] == network
    assert pending["payer"] == BUYER.address.lower()

    def settled() -> bool:
        rpc(stages.runtimes[0].w3, "evm_mine")  # blocks only when asked: the payment's, then its mints'
        return finished(settings, payment_id)

    stages.run_until(settled)
    done = settlement()
    assert done == {
        "success": True,
        "payer": BUYER.address.lower(),
        "transaction": sent["tx_hash"],
        "network": network,
    }


def test_the_pending_settlement_names_the_newest_attempt_after_a_fee_bump(
    client: TestClient, settings: Settings, deployment: Deployment, manual_mining: None
) -> None:
    """A client reconciles by the pending header's transaction: after a fee bump replaced the first
    attempt, it names the replacement (the one that can be mined), and the JSON says the same."""
    from dataclasses import replace

    from tests.integration.stages import attempts

    bumping = Stages(replace(settings, stuck_after_seconds=0.2))
    try:
        reply, _ = pay_v2(client, deployment.token.address, None)
        payment_id = reply.json()["paymentQueueId"]
        bumping.payment.run_once()  # signed, stored, broadcast; not mined
        (sent,) = query(settings, "SELECT chain_tx_id FROM payment_queue WHERE id = %s", payment_id)
        time.sleep(0.3)
        bumping.payment.run_once()  # its upkeep finds it stuck and re-signs it with higher fees
        tried = attempts(settings, sent["chain_tx_id"])
        assert len(tried) == 2 and tried[1]["kind"] == "work"
        answer = client.get(f"/api/payment/{payment_id}")
        pending = decode_payment_response(answer.headers["payment-response"])
        assert pending["errorReason"] == "settlement_pending"
        assert pending["transaction"] == tried[1]["tx_hash"] == answer.json()["tx_hash"]

        def settled() -> bool:
            rpc(bumping.runtimes[0].w3, "evm_mine")
            return finished(settings, payment_id)

        bumping.run_until(settled)
        done = decode_payment_response(client.get(f"/api/payment/{payment_id}").headers["payment-response"])
        assert done["success"] is True and done["transaction"] == tried[1]["tx_hash"]
    finally:
        bumping.close()


def test_a_failed_payments_settlement_header_says_why(
    client: TestClient, settings: Settings, deployment: Deployment, stages: Stages
) -> None:
    from eth_account import Account

    token = deployment.token.address
    poor = Account.create()  # no USDC: the pre-flight fails it
    header = sign_payment(ask_price(client, token, 1), poor.key.hex(), chain_id=CHAIN_ID)
    payment_id = client.post(
        f"/api/mint/{token}", json={"quantity": 1}, headers={"X-PAYMENT": header}
    ).json()["paymentQueueId"]
    stages.payment.run_once()
    failed = decode_payment_response(client.get(f"/api/payment/{payment_id}").headers["x-payment-response"])
    assert failed == {
        "success": False,
        "errorReason": "insufficient_funds",
        "payer": poor.address.lower(),
        "transaction": "",
        "network": "base-sepolia",
    }


def test_two_posts_racing_with_one_identifier_make_one_payment(
    live_api: LiveServer, settings: Settings, deployment: Deployment
) -> None:
    """A client that re-signs on every attempt (as the SDKs' payment-identifier hook does) and fires
    twice at once: the id is claimed before the payment is written, so exactly one goes through."""
    import concurrent.futures

    import httpx

    token = deployment.token.address
    identifier = "pay_" + os.urandom(16).hex()
    required = httpx.post(f"{live_api.url}/api/mint/{token}", json={"quantity": 1}).headers[
        "payment-required"
    ]
    headers = [
        with_identifier(sign_payment_v2(required, BUYER.key.hex(), chain_id=CHAIN_ID), identifier)
        for _ in range(6)
    ]
    before = query(
        settings, "SELECT count(*) AS n FROM payment_queue WHERE payer = %s", BUYER.address.lower()
    )[0]["n"]

    def post(header: str) -> httpx.Response:
        return httpx.post(
            f"{live_api.url}/api/mint/{token}",
            json={"quantity": 1},
            headers={"PAYMENT-SIGNATURE": header},
            timeout=30,
        )

    with concurrent.futures.ThreadPoolExecutor(len(headers)) as pool:
        replies = list(pool.map(post, headers))
    assert sorted(r.status_code for r in replies).count(202) == 1, [r.text for r in replies]
    assert {r.json()["reason"] for r in replies if r.status_code == 409} <= {
        "payment_identifier_reused",
        "payment_identifier_in_flight",
    }
    after = query(
        settings, "SELECT count(*) AS n FROM payment_queue WHERE payer = %s", BUYER.address.lower()
    )[0]["n"]
    assert after == before + 1
