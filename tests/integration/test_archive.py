"""`x402-mint archive` moves finished payments and their mints out of the live queues, never work
still in flight."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from cli.devnet import anvil
from cli.main import app
from shared.config import Settings
from tests.integration.conftest import Deployment
from tests.integration.helpers import buy
from tests.integration.stages import Stages, finished, query

pytestmark = pytest.mark.chain


def test_archive_moves_finished_rows_only(
    client: TestClient, settings: Settings, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    stages = Stages(settings)
    try:
        done = buy(client, deployment.token.address, anvil.dev_account(12).key.hex(), 2)
        stages.run_until(lambda: finished(settings, done))
    finally:
        stages.close()
    in_flight = buy(client, deployment.token.address, anvil.dev_account(12).key.hex(), 1)  # still pending
    watched = buy(client, deployment.token.address, anvil.dev_account(12).key.hex(), 1)
    query(  # failed, but its authorization may still be submitted: watched (0008), so not finished
        settings,
        "UPDATE payment_queue SET status = 'failed', watch_until = valid_before WHERE id = %s RETURNING id",
        watched,
    )
    (live,) = query(settings, "SELECT * FROM payment_queue WHERE id = %s", done)
    query(
        settings,
        "UPDATE payment_queue SET processed_at = now() - interval '40 days' WHERE id = ANY(%s) RETURNING id",
        [done, in_flight, watched],
    )
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
    assert query(settings, "SELECT 1 FROM payment_queue WHERE id = %s", watched) != []
    assert (
        query(settings, "SELECT count(*) AS n FROM mint_queue_archive WHERE payment_id = %s", done)[0]["n"]
        == 2
    )
    assert (
        query(settings, "SELECT 1 FROM payment_queue WHERE id = %s", in_flight) != []
    )  # not finished: stays
    query(
        settings,
        "UPDATE payment_queue SET status = 'failed', error = 'test cleanup' WHERE id = %s RETURNING id",
        in_flight,
    )


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
