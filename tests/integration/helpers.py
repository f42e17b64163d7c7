"""Buying through the real HTTP flow (402 → sign → 202) and waiting for the outcome."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from cli.buyer import sign_payment
from tests.integration.conftest import CHAIN_ID

TERMINAL = {"completed", "failed", "confirmation_failed"}


def ask_price(client: TestClient, token: str, quantity: int) -> dict[str, Any]:
    reply = client.post(f"/api/mint/{token}", json={"quantity": quantity})
    assert reply.status_code == 402, reply.text
    accept: dict[str, Any] = reply.json()["accepts"][0]
    return accept


def buy(
    client: TestClient, token: str, key: str, quantity: int, *, chain_id: int = CHAIN_ID, **overrides: Any
) -> str:
    header = sign_payment(ask_price(client, token, quantity), key, chain_id=chain_id, **overrides)
    reply = client.post(f"/api/mint/{token}", json={"quantity": quantity}, headers={"X-PAYMENT": header})
    assert reply.status_code == 202, reply.text
    return str(reply.json()["paymentQueueId"])


def buy_patiently(client: TestClient, token: str, key: str, quantity: int, *, timeout: float = 60.0) -> str:
    """Buy as a well-behaved client does: on 429 (too many of this payer's payments still settling),
    wait and send the same signed payment again."""
    header = sign_payment(ask_price(client, token, quantity), key, chain_id=CHAIN_ID)
    deadline = time.monotonic() + timeout
    while True:
        reply = client.post(f"/api/mint/{token}", json={"quantity": quantity}, headers={"X-PAYMENT": header})
        if reply.status_code != 429 or time.monotonic() > deadline:
            assert reply.status_code == 202, reply.text
            return str(reply.json()["paymentQueueId"])
        time.sleep(0.05)


def wait_for(
    client: TestClient, payment_id: str, *, mints_done: bool = True, timeout: float = 90.0
) -> dict[str, Any]:
    """Poll the status endpoint until the payment is terminal (and, if completed, its mints too)."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get(f"/api/payment/{payment_id}").json()
        if body["status"] in TERMINAL:
            mints = body["result"]["mints"]
            if (
                body["status"] != "completed"
                or not mints_done
                or (mints and all(m["status"] in TERMINAL for m in mints))
            ):
                return body
        time.sleep(0.2)
    raise AssertionError(f"payment {payment_id} did not finish within {timeout} s: {body}")


def wait_until(condition: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.2)
