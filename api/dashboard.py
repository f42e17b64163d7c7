"""The live dashboard's figures, read from PostgreSQL (so they are right with any number of processes
on any number of hosts): queues by status, payments and mints per minute, 202 → tokens latency, the
money that waits (stuck, paid not minted, review, refunds owed), relayers' gas money and nonce gaps,
RPC endpoints' health, supply per token. One read serves every viewer for FRESH_SECONDS."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from shared.db.queries import q

FRESH_SECONDS = 2.0  # the page asks every 2 s: one read serves every open page


async def _rows(conn: AsyncConnection[Any], name: str) -> list[dict[str, Any]]:
    return list(await (await conn.execute(q(name))).fetchall())


async def read_figures(pool: AsyncConnectionPool[Any]) -> dict[str, Any]:
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SET LOCAL statement_timeout = '5s'")  # never load the database for long
        queues = await _rows(conn, "gauge_queue_depth")
        money = (await _rows(conn, "gauge_money"))[0]
        minutes = await _rows(conn, "dashboard_minutes")
        totals = (await _rows(conn, "dashboard_totals"))[0]
        relayers = await _rows(conn, "gauge_relayers")
        endpoints = await _rows(conn, "gauge_rpc_endpoints")
        supply = await _rows(conn, "token_supply_view")
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "queues": [{"queue": r["queue"], "status": r["status"], "n": int(r["n"])} for r in queues],
        "money": {k: int(v or 0) for k, v in money.items()},
        "totals": {k: int(v or 0) for k, v in totals.items()},
        "minutes": [
            {
                "minute": int(r["minute"]),
                "payments": int(r["payments"]),
                "mints": int(r["mints"]),
                "p50": r["p50_seconds"],
                "p95": r["p95_seconds"],
            }
            for r in minutes
        ],
        "relayers": [
            {
                "stage": r["stage"],
                "address": r["address"],
                "balanceWei": str(r["balance_wei"]),
                "nonceGaps": int(r["nonce_gaps"]),
            }
            for r in relayers
        ],
        "rpc": [
            {"endpoint": r["endpoint"], "up": bool(r["up"]), "lag": r["lag"], "errors": r["errors"]}
            for r in endpoints
        ],
        "supply": [
            {
                "token": r["address"],
                "symbol": r["symbol"],
                "reserved": int(r["reserved_mints"]),
                "available": int(r["available_mints"]),
            }
            for r in supply
        ],
    }


class Figures:
    """The latest figures, read again when older than FRESH_SECONDS (one read at a time)."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool
        self._lock = asyncio.Lock()
        self._value: dict[str, Any] | None = None
        self._read_at = float("-inf")

    async def get(self) -> dict[str, Any]:
        async with self._lock:
            if self._value is None or time.monotonic() - self._read_at > FRESH_SECONDS:
                self._value = await read_figures(self._pool)
                self._read_at = time.monotonic()
            return self._value
