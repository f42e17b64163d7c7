"""`x402-mint bench growth`: claiming a batch and answering a status request must not slow down as
finished rows pile up. Measured in a scratch database on the dev server: with only live work, then
after adding 1,000,000 finished payments and 1,000,000 finished mints (partial indexes on the active
statuses keep the hot queries away from them). Plans are printed."""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Any

import psycopg
import typer
from psycopg.rows import dict_row

from cli.devnet import postgres
from shared.db.migrations import migrate
from shared.db.queries import q

TOKEN = "0x" + "b0" * 20
ASSET = "0x" + "a0" * 20
REPEAT = 200


def _seed(conn: psycopg.Connection[Any], live: int) -> str:
    """A token, `live` pending payments and `live` pending mints: the work the claims must find."""
    conn.execute(
        q("upsert_token"),
        {
            "address": TOKEN,
            "chain_id": 31337,
            "symbol": "GROW",
            "asset": ASSET,
            "asset_name": "USD Coin",
            "asset_version": "2",
            "asset_decimals": 6,
            "price_per_mint": 1,
            "mint_amount": 1,
            "max_mint_count": 10**12,
            "description": "",
        },
    )
    conn.execute(q("bench_live_payments"), {"token": TOKEN, "asset": ASSET, "n": live})
    _history(conn, live, offset=10**9, mint_status="pending")
    row = conn.execute("SELECT id FROM payment_queue ORDER BY created_at LIMIT 1").fetchone()
    assert row is not None
    return str(row["id"])


def _history(
    conn: psycopg.Connection[Any], rows: int, *, offset: int = 0, mint_status: str = "completed"
) -> None:
    conn.execute("SET session_replication_role = replica")  # bulk rows: no per-row triggers or notices
    conn.execute(
        q("bench_history"),
        {"token": TOKEN, "asset": ASSET, "n": rows, "offset": offset, "mint_status": mint_status},
    )
    conn.execute("SET session_replication_role = origin")
    conn.execute("ANALYZE")


def _time(conn: psycopg.Connection[Any], name: str, params: dict[str, Any]) -> float:
    samples = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        with conn.transaction(force_rollback=True):  # measure the claim without keeping it
            conn.execute(q(name), params).fetchall()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def _plan(conn: psycopg.Connection[Any], name: str, params: dict[str, Any]) -> str:
    with conn.transaction(force_rollback=True):
        rows = conn.execute(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + q(name), params
        ).fetchall()
    return "\n".join("      " + next(iter(r.values())) for r in rows)


def _measure(conn: psycopg.Connection[Any], payment_id: str, label: str) -> dict[str, float]:
    cases: dict[str, dict[str, Any]] = {
        "claim_payments": {"limit": 50, "claim_token": uuid.uuid4(), "lease": 60},
        "claim_mints": {"limit": 10, "claim_token": uuid.uuid4(), "lease": 60},
        "payment_by_id": {"id": payment_id},
    }
    figures = {name: _time(conn, name, params) for name, params in cases.items()}
    typer.echo(
        f"{label}: " + "  ".join(f"{n} {ms:.3f} ms" for n, ms in figures.items()) + f"  (median of {REPEAT})"
    )
    for name, params in cases.items():
        typer.echo(f"    plan of {name}:\n{_plan(conn, name, params)}")
    return figures


def growth(server_url: str, rows: int) -> None:
    name = f"x402_growth_{uuid.uuid4().hex[:8]}"
    url = postgres.ensure_database(server_url, name)
    try:
        migrate(url)
        with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
            payment_id = _seed(conn, live=200)
            before = _measure(conn, payment_id, "live work only")
            started = time.monotonic()
            _history(conn, rows)
            typer.echo(
                f"filled {rows:,} finished payments and {rows:,} finished mints in "
                f"{time.monotonic() - started:.0f} s"
            )
            after = _measure(conn, payment_id, f"with {rows:,} finished rows each")
        for query in before:
            typer.echo(f"{query}: {after[query] / before[query]:.2f}x the empty-table time")
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
