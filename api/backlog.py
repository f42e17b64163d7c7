"""The settlement backlog: how much accepted work still waits for the chain, over every API process
and stage on every host (read from PostgreSQL, not from one process's memory).

A payment accepted is a promise to settle it before its authorization expires. When buyers pay
faster than the chain can carry their transfers and mints, every payment accepted beyond that only
waits longer inside (Little's law: the wait is the backlog ÷ what the chain carries a second), its
validBefore running out. So admission turns paid POSTs away (503 `settlement_backlog`, Retry-After)
while the backlog is above ADMISSION_MAX_BACKLOG: the queue stays with the buyers, who send the
same payment again (nothing was stored), and the payments inside settle within seconds. It is off
unless set (its right size is what the chain settles in a few seconds).

The backlog is payments waiting for payment-sender or for their transaction (not those it set aside
for later, e.g. before their validAfter) plus mints not yet on chain. While paid POSTs come in, each
process reads it every REFRESH_SECONDS in the background (a request never waits for the read); after
BUSY_SECONDS without one it stops reading until the next. When the database cannot be read, the last
figure stands (the writer answers 503 itself when the database is down).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from psycopg_pool import AsyncConnectionPool

from shared.db.queries import q

log = structlog.get_logger()
REFRESH_SECONDS = 0.2
BUSY_SECONDS = 5.0


def over_backlog(backlog: int, limit: int) -> bool:
    """Whether a newcomer should be turned away: the work already accepted is above the limit
    (0: no limit)."""
    return limit > 0 and backlog > limit


class Backlog:
    """The latest settlement backlog figure of this process, read every REFRESH_SECONDS while paid
    POSTs come in (`over` is asked)."""

    def __init__(self, pool: AsyncConnectionPool[Any], limit: int) -> None:
        self._pool, self.limit = pool, limit
        self.value = 0
        self._asked_at = float("-inf")
        self._asked = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.limit > 0:
            self._reader = asyncio.get_running_loop().create_task(self._read_while_busy())

    def over(self) -> bool:
        if self.limit <= 0:
            return False
        self._asked_at = time.monotonic()
        self._asked.set()
        return over_backlog(self.value, self.limit)

    async def _read_while_busy(self) -> None:
        while True:
            await self._asked.wait()
            self._asked.clear()
            while time.monotonic() - self._asked_at < BUSY_SECONDS:
                await self._read()
                await asyncio.sleep(REFRESH_SECONDS)

    async def _read(self) -> None:
        try:
            async with self._pool.connection() as conn:
                row = await (await conn.execute(q("settlement_backlog"))).fetchone()
            self.value = int(row["n"]) if row else 0
        except Exception as exc:  # the last figure stands; the writer answers 503 if the database is down
            log.warning("backlog_read_failed", error=str(exc)[:200])

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
