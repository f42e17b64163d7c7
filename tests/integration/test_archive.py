"""`x402-mint archive` moves finished payments and their mints out of the live queues, never work
still in flight."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from cli.buyer import sign_payment
from cli.devnet import anvil
from cli.main import app
from shared.config import Settings
from shared.x402 import decode_payment_header
from tests.integration.conftest import CHAIN_ID, Deployment, with_settings
from tests.integration.helpers import ask_price, buy
from tests.integration.stages import Stages, finished, payment, query

pytestmark = pytest.mark.chain


def test_archive_moves_finished_rows_only(
    client: TestClient, settings: Settings, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    token, key = deployment.token.address, anvil.dev_account(12).key.hex()
    stages = Stages(settings)
    try:
        done, unexpired, short = (buy(client, token, key, q) for q in (2, 1, 1))
        stages.run_until(lambda: all(finished(settings, p) for p in (done, unexpired, short)))
    finally:
        stages.close()
    in_flight = buy(client, token, key, 1)  # still pending
    watched = buy(client, token, key, 1)
    query(  # failed, but its authorization may still be submitted: watched (0008), so not finished
        settings,
        "UPDATE payment_queue SET status = 'failed', watch_until = valid_before WHERE id = %s RETURNING id",
        watched,
    )
    # Paid, but one mint failed (paid_not_minted): money still owed something, so it stays live.
    query(settings, "UPDATE mint_queue SET status = 'failed' WHERE payment_id = %s RETURNING id", short)
    owed, review = buy(client, token, key, 1), buy(client, token, key, 1)
    query(
        settings,
        "UPDATE payment_queue SET status = 'refund_owed', tx_hash = '0x' || repeat('ab', 32),"
        " paid_log_index = 7 WHERE id = %s RETURNING id",
        owed,
    )
    query(settings, "UPDATE payment_queue SET status = 'needs_review' WHERE id = %s RETURNING id", review)
    everything = [done, unexpired, short, in_flight, watched, owed, review]
    query(  # all of them finished long ago, and all but one authorization expired
        settings,
        "UPDATE payment_queue SET processed_at = now() - interval '40 days',"
        " valid_before = CASE WHEN id = %s THEN valid_before ELSE 1 END WHERE id = ANY(%s) RETURNING id",
        unexpired,
        everything,
    )
    (live,) = query(settings, "SELECT * FROM payment_queue WHERE id = %s", done)
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(app, ["archive", "--older-than-days", "30"])
    assert result.exit_code == 0, result.output
    assert query(settings, "SELECT 1 FROM payment_queue WHERE id = %s", done) == []
    assert query(settings, "SELECT count(*) AS n FROM mint_queue WHERE payment_id = %s", done)[0]["n"] == 0
    (archived,) = query(settings, "SELECT * FROM payment_queue_archive WHERE id = %s", done)
    assert archived["status"] == "completed" and archived["archived_at"] is not None
    # Every column came across by name (the tables' column order may differ).
    assert {k: v for k, v in archived.items() if k not in ("archived_at", "processed_at")} == {
        k: v for k, v in live.items() if k != "processed_at"
    }
    assert (
        query(settings, "SELECT count(*) AS n FROM mint_queue_archive WHERE payment_id = %s", done)[0]["n"]
        == 2
    )
    # Not finished, still owed, or an authorization that could still be replayed: all stay live.
    stayed = query(settings, "SELECT id::text FROM payment_queue WHERE id = ANY(%s)", everything)
    assert {r["id"] for r in stayed} == {unexpired, short, in_flight, watched, owed, review}
    query(
        settings,
        "UPDATE payment_queue SET status = 'failed', error = 'test cleanup' WHERE id = ANY(%s) RETURNING id",
        [in_flight, review],
    )


def test_an_archived_authorization_replayed_buys_nothing(
    settings: Settings, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Archiving takes a payment's (asset, payer, nonce) key out of the live table; the byte-identical
    header posted again must not create a new payment: only expired authorizations are archived, and
    the ingress caps validBefore, so the replay is refused as expired."""
    quick = with_settings(settings, settle_margin_seconds=1)
    token, key = deployment.token.address, anvil.dev_account(12).key.hex()
    with TestClient(create_app(quick)) as client:
        header = sign_payment(
            ask_price(client, token, 1), key, chain_id=CHAIN_ID, valid_before=int(time.time()) + 4
        )
        reply = client.post(f"/api/mint/{token}", json={"quantity": 1}, headers={"X-PAYMENT": header})
        assert reply.status_code == 202, reply.text
        paid = reply.json()["paymentQueueId"]
        stages = Stages(quick)
        try:
            stages.run_until(lambda: finished(quick, paid))
        finally:
            stages.close()
        assert payment(quick, paid)["state"] == "completed"
        while time.time() <= int(payment(quick, paid)["valid_before"]):
            time.sleep(0.2)
        query(
            quick,
            "UPDATE payment_queue SET processed_at = now() - interval '40 days' WHERE id = %s RETURNING id",
            paid,
        )
        monkeypatch.setenv("DATABASE_URL", quick.database_url)
        assert CliRunner().invoke(app, ["archive", "--older-than-days", "30"]).exit_code == 0
        assert query(quick, "SELECT 1 FROM payment_queue WHERE id = %s", paid) == []
        replay = client.post(f"/api/mint/{token}", json={"quantity": 1}, headers={"X-PAYMENT": header})
        assert replay.status_code == 400
        assert replay.json()["reason"] == "invalid_exact_evm_payload_authorization_valid_before"
        nonce = decode_payment_header(header).authorization.nonce
        assert query(quick, "SELECT 1 FROM payment_queue WHERE nonce = %s", "0x" + nonce.hex()) == []
        # Nor does a new authorization that reuses the nonce (its old Transfer would "pay" it again).
        resigned = sign_payment(ask_price(client, token, 1), key, chain_id=CHAIN_ID, nonce=nonce)
        again = client.post(f"/api/mint/{token}", json={"quantity": 1}, headers={"X-PAYMENT": resigned})
        assert again.status_code == 409, again.text
        assert again.json()["reason"] == "nonce_already_used" and again.json()["paymentQueueId"] == paid
        assert query(quick, "SELECT 1 FROM payment_queue WHERE nonce = %s", "0x" + nonce.hex()) == []
        assert client.get(f"/api/payment/{paid}").json()["status"] == "completed"  # answered from the archive


def test_archive_tables_have_every_live_column(settings: Settings) -> None:
    def columns(table: str) -> set[str]:
        rows = query(
            settings,
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s",
            table,
        )
        return {r["column_name"] for r in rows}

    for live in ("payment_queue", "mint_queue"):
        missing = columns(live) - columns(f"{live}_archive")
        assert missing == set(), f"a migration added {missing} to {live} but not to {live}_archive"
