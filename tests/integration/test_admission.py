"""Under more load than it can answer in time (server_busy), or with more accepted work waiting for the
chain than it settles in a few seconds (settlement_backlog), the ingress turns paid POSTs away at once
with 503 and Retry-After, stores nothing for them, and the same signed payment sent again later is
accepted; everything else (402s, /healthz) is never turned away."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from eth_account import Account

from api.backlog import REFRESH_SECONDS
from cli.buyer import sign_payment
from cli.devnet import deploy
from shared.config import Settings
from shared.db.migrations import migrate
from shared.db.queries import q
from tests.integration.conftest import (
    CHAIN_ID,
    Chain,
    Deployment,
    LiveServer,
    scratch_database,
    with_settings,
)
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


def _backlog(settings: Settings) -> int:
    return int(query(settings, q("settlement_backlog"))[0]["n"])


def test_beyond_the_settlement_backlog_paid_posts_are_turned_away_until_it_drains(
    settings: Settings, deployment: Deployment, devchain: Chain, pg_server: str
) -> None:
    """While more accepted work waits for the chain than ADMISSION_MAX_BACKLOG (over every process:
    read from PostgreSQL), a paid POST gets 503 settlement_backlog with Retry-After and stores nothing;
    asking the price still gets its 402; once the backlog is under the limit again, the same signed
    payment is accepted. A payment set aside until later (before its validAfter, say) is not backlog.
    A database of its own, so the backlog is this test's alone."""
    token = deployment.token.address
    with scratch_database(pg_server, "x402_backlog") as url:
        migrate(url)
        deploy.register_token(url, deploy.read_token(devchain.w3, token))
        gated = with_settings(settings, database_url=url, admission_max_backlog=2)
        with LiveServer(gated) as live, httpx.Client(base_url=live.url, timeout=30) as http:
            accept = http.post(f"/api/mint/{token}", json={"quantity": 1}).json()["accepts"][0]
            headers = [sign_payment(accept, Account.create().key.hex(), chain_id=CHAIN_ID) for _ in range(4)]

            def pay(header: str) -> httpx.Response:
                time.sleep(2 * REFRESH_SECONDS + 0.1)  # each answer sees the backlog the one before left
                return http.post(f"/api/mint/{token}", json={"quantity": 1}, headers={"X-PAYMENT": header})

            replies = [pay(h) for h in headers]
            assert [r.status_code for r in replies] == [202, 202, 202, 503], [r.text for r in replies]
            assert _backlog(gated) == 3
            refused = replies[-1]
            assert refused.headers["retry-after"] == "1"
            assert refused.json()["reason"] == "settlement_backlog" and refused.json()["message"]
            assert query(gated, "SELECT count(*) AS n FROM payment_queue")[0]["n"] == 3  # nothing stored
            assert http.post(f"/api/mint/{token}", json={"quantity": 1}).status_code == 402
            # One set aside until later no longer counts: the backlog is at the limit, not over it.
            first = replies[0].json()["paymentQueueId"]
            later = "UPDATE payment_queue SET locked_until = now() + interval '1 hour' WHERE id = %s"
            query(gated, later + " RETURNING id", first)
            assert _backlog(gated) == 2
            again = pay(headers[3])
            assert again.status_code == 202, again.text
            assert query(gated, "SELECT count(*) AS n FROM payment_queue")[0]["n"] == 4
            # A payment paid leaves the backlog; its mint, until it is on chain, is in it.
            paid = replies[1].json()["paymentQueueId"]
            query(
                gated,
                "UPDATE payment_queue SET status = 'completed', tx_hash = %s, paid_log_index = 0"
                " WHERE id = %s RETURNING id",
                "0x" + "ab" * 32,
                paid,
            )
            assert _backlog(gated) == 2
            query(
                gated,
                "INSERT INTO mint_queue (payment_id, mint_index, mint_id, token_address, recipient)"
                " SELECT id, 0, %s, token_address, payer FROM payment_queue WHERE id = %s RETURNING id",
                "0x" + "cd" * 32,
                paid,
            )
            assert _backlog(gated) == 3
            minted = "UPDATE mint_queue SET status = 'completed' WHERE payment_id = %s RETURNING id"
            query(gated, minted, paid)
            assert _backlog(gated) == 2
