"""`db migrate` applies each migration exactly once: run twice, or by two processes at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest

from shared.db.migrations import discover, migrate
from tests.integration.conftest import scratch_database


@pytest.fixture
def empty_database(pg_server: str) -> Iterator[str]:
    with scratch_database(pg_server, "x402_mig") as url:
        yield url


def test_two_concurrent_runs_apply_each_migration_once(empty_database: str) -> None:
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(migrate(empty_database))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    expected = [m.version for m in discover()]
    assert sorted(results, key=len) == [[], expected]
    assert migrate(empty_database) == []
    with psycopg.connect(empty_database) as conn:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    assert [r[0] for r in rows] == expected
