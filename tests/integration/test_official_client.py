"""The official x402 Python SDK (PyPI `x402`, unmodified) buys tokens from our running server over
x402 v1 and v2, end to end on the dev chain (chain id 84532, "base-sepolia" for v1)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import httpx
import pytest
from x402 import x402Client
from x402.http.clients import x402HttpxClient
from x402.mechanisms.evm.exact import ExactEvmScheme
from x402.mechanisms.evm.exact.v1.client import ExactEvmSchemeV1

from cli.devnet import anvil
from shared.config import Settings
from tests.integration.conftest import CHAIN_ID, Deployment, LiveServer, Pipeline

pytestmark = pytest.mark.chain
BUYER = anvil.dev_account(11)


def spend_controls(network: str, asset: str) -> dict[str, Any]:
    return {"allowed_assets": [{"network": network, "asset": asset, "max_amount_per_payment": "100000000"}]}


def buy(client: x402Client, url: str, quantity: int) -> httpx.Response:
    async def go() -> httpx.Response:
        async with x402HttpxClient(client, timeout=20) as http:
            return await http.post(url, json={"quantity": quantity})

    return asyncio.run(go())


def settled(base_url: str, payment_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = httpx.get(f"{base_url}/api/payment/{payment_id}", timeout=5).json()
        mints = body["result"]["mints"]
        if body["status"] == "completed" and mints and all(m["status"] == "completed" for m in mints):
            return body
        time.sleep(0.2)
    raise AssertionError(f"payment {payment_id} did not settle")


def test_official_client_v2(settings: Settings, deployment: Deployment, pipeline: Pipeline) -> None:
    client = x402Client()
    client.register(f"eip155:{CHAIN_ID}", ExactEvmScheme(BUYER))
    client.set_spend_controls(spend_controls(f"eip155:{CHAIN_ID}", deployment.usdc.address))
    with LiveServer(settings) as server:
        reply = buy(client, f"{server.url}/api/mint/{deployment.token.address}", 2)
        assert reply.status_code == 202, reply.text
        status = settled(server.url, reply.json()["paymentQueueId"])
    assert status["payer"] == BUYER.address.lower() and len(status["result"]["mints"]) == 2


def test_official_client_v1(settings: Settings, deployment: Deployment, pipeline: Pipeline) -> None:
    client = x402Client()
    client.register_v1("base-sepolia", ExactEvmSchemeV1(BUYER))
    client.set_spend_controls(spend_controls("base-sepolia", deployment.usdc.address))
    # The SDK pays v2 whenever a PAYMENT-REQUIRED header is present, so its v1 path needs a v1-only server.
    with LiveServer(replace(settings, x402_versions=(1,))) as server:
        reply = buy(client, f"{server.url}/api/mint/{deployment.token.address}", 3)
        assert reply.status_code == 202, reply.text
        status = settled(server.url, reply.json()["paymentQueueId"])
    assert status["payer"] == BUYER.address.lower() and len(status["result"]["mints"]) == 3
