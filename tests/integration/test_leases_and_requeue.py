"""Leases: a dead claimer's rows are reclaimed, a live claimer's are not, and a stale claimer can
change nothing. Operators requeue failed work."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest
from eth_account import Account
from psycopg.rows import dict_row
from starlette.testclient import TestClient
from typer.testing import CliRunner

from cli.devnet import anvil
from cli.main import app
from shared.config import Settings
from shared.db.queries import q
from tests.integration.conftest import Deployment
from tests.integration.helpers import buy
from tests.integration.stages import Stages, finished, payment, query

pytestmark = pytest.mark.chain


def claim(settings: Settings, token: uuid.UUID, lease: float) -> list[str]:
    with psycopg.connect(settings.database_url, row_factory=dict_row) as conn:
        rows = conn.execute(
            q("claim_payments"), {"limit": 1000, "claim_token": token, "lease": lease}
        ).fetchall()
    return [str(r["id"]) for r in rows]


def test_a_lease_protects_a_live_claim_and_expires_for_a_dead_one(
    client: TestClient, settings: Settings, deployment: Deployment
) -> None:
    payment_id = buy(client, deployment.token.address, anvil.dev_account(15).key.hex(), 1)
    dead, live = uuid.uuid4(), uuid.uuid4()
    assert payment_id in claim(settings, dead, lease=0.5)
    assert payment_id not in claim(settings, live, lease=60)  # still leased: not taken
    time.sleep(0.7)
    assert payment_id in claim(settings, live, lease=60)  # lease ran out: reclaimed
    with psycopg.connect(settings.database_url) as conn:
        stale = conn.execute(
            q("mark_payments_sent"),
            {"ids": [payment_id], "claim_token": dead, "chain_tx_id": None, "tx_hash": "0x" + "00" * 32},
        )
        assert stale.rowcount == 0  # the dead claimer's late write changes nothing
        conn.execute(
            q("release_claimed_payments"),
            {"ids": [payment_id], "claim_token": live, "delay": 0, "error": "test"},
        )


def test_a_finished_payment_is_never_reclaimed(
    client: TestClient, settings: Settings, deployment: Deployment
) -> None:
    stages = Stages(settings)
    try:
        payment_id = buy(client, deployment.token.address, anvil.dev_account(15).key.hex(), 1)
        stages.run_until(lambda: finished(settings, payment_id))
    finally:
        stages.close()
    query(
        settings,
        "UPDATE payment_queue SET locked_until = now() - interval '1 hour' WHERE id = %s RETURNING id",
        payment_id,
    )
    assert payment_id not in claim(settings, uuid.uuid4(), lease=60)


def test_requeue_a_failed_payment_and_failed_mints(
    client: TestClient, settings: Settings, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    runner = CliRunner()
    stages = Stages(settings)
    try:
        pauper = Account.create()
        failed_id = buy(client, deployment.token.address, pauper.key.hex(), 1)
        stages.run_until(lambda: finished(settings, failed_id))
        assert payment(settings, failed_id)["state"] == "failed"
        result = runner.invoke(app, ["requeue", failed_id])
        assert result.exit_code == 0 and "requeued 1 payment(s)" in result.output
        assert payment(settings, failed_id)["state"] == "pending"
        stages.run_until(lambda: finished(settings, failed_id))  # still no money: fails again, honestly
        assert payment(settings, failed_id)["state"] == "failed"

        paid_id = buy(client, deployment.token.address, anvil.dev_account(15).key.hex(), 2)
        stages.run_until(lambda: finished(settings, paid_id))
        query(
            settings,
            "UPDATE mint_queue SET status = 'failed', error = 'test' WHERE payment_id = %s RETURNING id",
            paid_id,
        )
        assert payment(settings, paid_id)["minted"] == 0
        stats = runner.invoke(app, ["stats"])
        paid_not_minted = stats.output.split("== paid not minted")[1]
        assert paid_id in paid_not_minted  # listed for the operator
        result = runner.invoke(app, ["requeue", paid_id])
        assert result.exit_code == 0 and "2 mint(s)" in result.output
        stages.run_until(lambda: finished(settings, paid_id))
        assert payment(settings, paid_id)["minted"] == 2  # hasMinted: completed without minting twice
        assert runner.invoke(app, ["requeue", str(uuid.uuid4())]).exit_code == 1
        assert runner.invoke(app, ["requeue", "nope"]).exit_code != 0
    finally:
        stages.close()


def test_an_idle_confirmer_waits_for_a_notice_or_its_poll_interval(
    settings: Settings, pg_server: str
) -> None:
    """With no transaction unconfirmed, the confirmer has nothing to wake up early for: it sleeps its
    poll interval (or until a broadcast's notice). It polled twenty times a second before: the earliest
    check of no transaction at all read as "now"."""
    from dataclasses import replace

    from shared.db.migrations import migrate
    from shared.runtime import open_runtime
    from tests.integration.conftest import scratch_database
    from workers import confirmer

    with scratch_database(pg_server, "x402_idle") as url:
        migrate(url)
        rt = open_runtime(replace(settings, database_url=url))
        try:
            stage = confirmer.create(rt)
            assert stage.run_once() == 0
            assert stage.wake_after is None
        finally:
            rt.close()
