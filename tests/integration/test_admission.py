"""Under more load than it can answer in time, the ingress turns paid POSTs away at once with 503 and
Retry-After (reason server_busy), stores nothing for them, and the same signed payment sent again
later is accepted; everything else (402s, /healthz) is never turned away."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from eth_account import Account

from cli.buyer import sign_payment
from shared.config import Settings
from tests.integration.conftest import CHAIN_ID, Deployment, LiveServer, with_settings
from tests.integration.stages import query

pytestmark = pytest.mark.chain


def test_a_paid_post_beyond_the_deadline_is_turned_away_and_stores_nothing(
    settings: Settings, deployment: Deployment
) -> None:
    # A deadline no wait can meet, and only one request in flight before it applies.
    impatient = with_settings(settings, admission_deadline_seconds=1e-9, admission_floor=1)
    token = deployment.token.address
    with LiveServer(impatient) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        accept = http.post(f"/api/mint/{token}", json={"quantity": 1}).json()["accepts"][0]
        keys = [Account.create() for _ in range(40)]
        headers = [sign_payment(accept, k.key.hex(), chain_id=CHAIN_ID) for k in keys]

        def post(header: str) -> httpx.Response:
            with httpx.Client(base_url=live.url, timeout=30) as own:  # a connection each, all at once
                return own.post(f"/api/mint/{token}", json={"quantity": 1}, headers={"X-PAYMENT": header})

        with ThreadPoolExecutor(40) as pool:
            replies = list(pool.map(post, headers))
        statuses = [r.status_code for r in replies]
        assert set(statuses) <= {202, 503} and 503 in statuses and 202 in statuses, statuses
        busy = [(h, k, r) for h, k, r in zip(headers, keys, replies, strict=True) if r.status_code == 503]
        for _, _, reply in busy:
            assert reply.headers["retry-after"] == "1"
            assert reply.json()["reason"] == "server_busy" and reply.json()["message"]
        turned_away = [k.address.lower() for _, k, _ in busy]
        assert query(impatient, "SELECT id FROM payment_queue WHERE payer = ANY(%s)", turned_away) == []
        accepted = [r.json()["paymentQueueId"] for r in replies if r.status_code == 202]
        assert len(
            query(impatient, "SELECT id FROM payment_queue WHERE id::text = ANY(%s)", accepted)
        ) == len(accepted)
        # Sent again on its own, a turned-away payment is accepted: nothing of it was kept.
        again = http.post(f"/api/mint/{token}", json={"quantity": 1}, headers={"X-PAYMENT": busy[0][0]})
        assert again.status_code == 202, again.text
        # The price and the health check are never turned away.
        assert http.post(f"/api/mint/{token}", json={"quantity": 1}).status_code == 402
        assert http.get("/healthz").status_code == 200
