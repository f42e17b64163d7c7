"""The operators' monitoring SQL runs, in psql and through `x402-mint stats`."""

from __future__ import annotations

import shutil
import subprocess

import psycopg
import pytest
from typer.testing import CliRunner

from cli.main import app
from cli.ops import monitoring_queries
from shared.config import Settings
from shared.db.queries import SQL_DIR

pytestmark = pytest.mark.chain


def test_every_monitoring_query_runs(settings: Settings) -> None:
    queries = monitoring_queries()
    assert {"queue_depth", "processing_rate", "stuck_payments", "paid_not_minted"} <= set(queries)
    with psycopg.connect(settings.database_url) as conn:
        for sql in queries.values():
            conn.execute(sql).fetchall()
        stuck = conn.execute(queries["stuck_payments"]).fetchone()
    assert stuck is not None and stuck[0] >= 0


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed")
def test_monitoring_file_runs_in_psql(settings: Settings) -> None:
    result = subprocess.run(
        ["psql", settings.database_url, "-v", "ON_ERROR_STOP=1", "-f", str(SQL_DIR / "monitoring.sql")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "status" in result.stdout and "stuck_sent" in result.stdout


def test_stats_command_prints_the_figures(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(app, ["stats"])
    assert result.exit_code == 0, result.output
    for heading in (
        "queue depth",
        "processing rate",
        "stuck payments",
        "paid not minted",
        "rpc endpoints",
        "relayers",
    ):
        assert f"== {heading}" in result.output
