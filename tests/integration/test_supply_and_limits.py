"""Supply is reserved before payment is taken (atomically, under concurrency); abuse limits hold."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import httpx
import pytest
from eth_account import Account
from starlette.testclient import TestClient

from api.app import create_app
from cli.buyer import sign_payment
from cli.devnet import anvil, deploy
from shared.config import Settings
from tests.integration.conftest import Chain, Deployment, LiveServer
from tests.integration.helpers import ask_price
from tests.integration.stages import Stages, finished, query

pytestmark = pytest.mark.chain


@pytest.fixture
def scarce_token(devchain: Chain, deployment: Deployment, settings: Settings) -> str:
    """A token with only 7 mints for sale."""
    token = deploy.deploy_token(
        devchain.w3,
        anvil.dev_account(anvil.DEPLOYER).address,
        deployment.usdc.address,
        minter=anvil.dev_account(anvil.MINT_RELAYER).address,
        symbol="RARE",
        max_mint_count=7,
    )
    deploy.register_token(settings.database_url, deploy.read_token(devchain.w3, token.address))
    return token.address


def rows_for(settings: Settings, token: str) -> int:
    return int(
        query(settings, "SELECT count(*) AS n FROM payment_queue WHERE token_address = %s", token)[0]["n"]
    )


def test_concurrent_purchases_never_oversell(settings: Settings, scarce_token: str) -> None:
    buyers = [Account.create() for _ in range(24)]
    with LiveServer(settings) as server, httpx.Client(base_url=server.url, timeout=20) as http:
        offer = http.post(f"/api/mint/{scarce_token}", json={"quantity": 1}).json()["accepts"][0]
        headers = [sign_payment(offer, b.key.hex()) for b in buyers]

        def attempt(header: str) -> httpx.Response:
            with httpx.Client(base_url=server.url, timeout=20) as own:
                return own.post(
                    f"/api/mint/{scarce_token}", json={"quantity": 1}, headers={"X-PAYMENT": header}
                )

        with ThreadPoolExecutor(12) as pool:
            replies = list(pool.map(attempt, headers))
    statuses = sorted(r.status_code for r in replies)
    assert statuses.count(202) == 7 and statuses.count(409) == 17
    assert {r.json()["reason"] for r in replies if r.status_code == 409} == {"sold_out"}
    assert rows_for(settings, scarce_token) == 7


def test_a_failed_payment_gives_its_reservation_back(settings: Settings, scarce_token: str) -> None:
    stages = Stages(settings)
    with TestClient(create_app(settings)) as client:
        pauper, buyer = Account.create(), anvil.dev_account(12)
        first = client.post(
            f"/api/mint/{scarce_token}",
            json={"quantity": 7},
            headers={"X-PAYMENT": sign_payment(ask_price(client, scarce_token, 7), pauper.key.hex())},
        )
        assert first.status_code == 202
        header = sign_payment(ask_price(client, scarce_token, 2), buyer.key.hex())
        blocked = client.post(
            f"/api/mint/{scarce_token}", json={"quantity": 2}, headers={"X-PAYMENT": header}
        )
        assert blocked.status_code == 409 and blocked.json()["reason"] == "sold_out"
        try:
            stages.run_until(lambda: finished(settings, first.json()["paymentQueueId"]))
        finally:
            stages.close()
        again = client.post(f"/api/mint/{scarce_token}", json={"quantity": 2}, headers={"X-PAYMENT": header})
        assert again.status_code == 202, again.text
        info = client.get(f"/api/tokens/{scarce_token}").json()
        assert info["reserved"] == 2 and info["available"] == 5


def test_a_payer_with_too_many_open_payments_gets_429(settings: Settings, deployment: Deployment) -> None:
    token = deployment.token.address
    payer = Account.create()
    with TestClient(create_app(replace(settings, max_pending_per_payer=3))) as client:
        offer = ask_price(client, token, 1)
        for _ in range(3):
            reply = client.post(
                f"/api/mint/{token}",
                json={"quantity": 1},
                headers={"X-PAYMENT": sign_payment(offer, payer.key.hex())},
            )
            assert reply.status_code == 202
        before = query(
            settings, "SELECT count(*) AS n FROM payment_queue WHERE payer = %s", payer.address.lower()
        )
        reply = client.post(
            f"/api/mint/{token}",
            json={"quantity": 1},
            headers={"X-PAYMENT": sign_payment(offer, payer.key.hex())},
        )
        assert reply.status_code == 429 and reply.json()["reason"] == "too_many_pending_payments"
        assert int(reply.headers["retry-after"]) > 0
        after = query(
            settings, "SELECT count(*) AS n FROM payment_queue WHERE payer = %s", payer.address.lower()
        )
        assert before == after
    query(
        settings,
        "UPDATE payment_queue SET status = 'failed', error = 'test cleanup' WHERE payer = %s"
        " AND status = 'pending' RETURNING id",
        payer.address.lower(),
    )


def test_oversized_headers_and_bodies(client: TestClient, deployment: Deployment) -> None:
    token = deployment.token.address
    big_header = client.post(f"/api/mint/{token}", json={"quantity": 1}, headers={"X-PAYMENT": "A" * 10_000})
    assert big_header.status_code == 431 and big_header.json()["reason"] == "headers_too_large"
    big_body = client.post(
        f"/api/mint/{token}",
        content=b'{"quantity": 1, "pad": "' + b"x" * 10_000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert big_body.status_code == 413 and big_body.json()["reason"] == "body_too_large"

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    streamed = client.post(f"/api/mint/{token}", content=chunks())
    assert streamed.status_code == 413


def _raw(port: int, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(data)
    return sock


def test_slow_requests_time_out_without_tying_up_the_server(settings: Settings) -> None:
    with LiveServer(replace(settings, request_timeout_seconds=1.0)) as server:
        slow_headers = _raw(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finishes
        slow_body = _raw(
            server.port, b"POST /api/mint/0x00 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
        )
        started = time.monotonic()
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200  # others are served meanwhile
        assert time.monotonic() - started < 1.0
        reply = slow_body.recv(4096)
        assert b" 408 " in reply.split(b"\r\n")[0]
        slow_headers.settimeout(5)
        assert slow_headers.recv(4096) == b""  # closed by the server after the header deadline
        for sock in (slow_headers, slow_body):
            sock.close()
