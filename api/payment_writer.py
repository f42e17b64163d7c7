"""Group commit for accepted payments: the payments that arrive while the database is busy are
written together, in one transaction, with one outcome each.

A request hands its verified payment to `PaymentWriter.write` and waits for its outcome. Up to
`writers` transactions per process run at once; a writer takes everything queued (up to
`batch_size`) into one `accept_payments` call (sql/migrations/0009). Nobody waits for a batch to
fill: a payment that finds a writer free goes at once, alone, so a quiet server answers as fast as
before, and a busy one pays one commit (one WAL flush, one NOTIFY, one pool checkout) per group
instead of per payment. Every payment keeps its own outcome; a refused one stores nothing.

A 202 is only answered after the group's commit returned, so it is as durable as it was alone.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool

from shared.db.queries import q

log = structlog.get_logger()
RETRIES_AFTER_DEADLOCK = 5
_ROLLED_BACK_WHOLE = {"40P01", "40001"}  # deadlock victim, serialization failure

Outcome = Literal["accepted", "duplicate", "sold_out", "too_many_open"]


@dataclass(frozen=True, slots=True)
class NewPayment:
    """One verified payment, as payment_queue stores it (field names are accept_payments' arrays)."""

    token_address: str
    asset: str
    payer: str
    recipient: str
    quantity: int
    amount: int
    nonce: str
    valid_after: int
    valid_before: int
    signature: str
    payment_header: str


@dataclass(frozen=True, slots=True)
class WriteResult:
    outcome: Outcome
    payment_id: str | None  # the new row (accepted), the existing one (duplicate), else None


SOLD_OUT, TOO_MANY_OPEN = "XM001", "XM002"  # SQLSTATEs of the reservation trigger (0004, 0009)
_NUMERIC = {"amount", "valid_after", "valid_before"}  # uint256: sent as decimal text, cast in SQL
_Waiter = tuple[NewPayment, "asyncio.Future[WriteResult]"]


def batch_params(payments: list[NewPayment]) -> dict[str, list[Any]]:
    """accept_payments' parallel arrays, one element per payment."""
    params: dict[str, list[Any]] = {}
    for f in fields(NewPayment):
        column = [getattr(p, f.name) for p in payments]
        params[f.name] = [str(v) for v in column] if f.name in _NUMERIC else column
    return params


class PaymentWriter:
    def __init__(self, pool: AsyncConnectionPool[Any], *, batch_size: int, writers: int) -> None:
        self._pool = pool
        self._batch_size = batch_size
        self._writers = writers
        self._queue: list[_Waiter] = []
        self._active = 0  # writers running; counted down in the same step that sees the queue empty
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def queued(self) -> int:
        """Payments waiting for a writer."""
        return len(self._queue)

    async def write(self, payment: NewPayment) -> WriteResult:
        """Store `payment` (or find why not). Raises what the database raised for it."""
        future: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
        self._queue.append((payment, future))
        if self._active < self._writers:
            self._active += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def close(self) -> None:
        """Wait for the groups in flight (before the pool closes)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _drain(self) -> None:
        try:
            while self._queue:
                group = self._queue[: self._batch_size]
                del self._queue[: self._batch_size]
                try:
                    await self._commit(group)
                except Exception as exc:  # never leave a request waiting
                    for _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                except BaseException:
                    for _, future in group:
                        future.cancel()
                    raise
        finally:
            self._active -= 1

    async def _commit(self, group: list[_Waiter]) -> None:
        try:
            results = await self._execute([payment for payment, _ in group])
        except psycopg.Error as exc:
            if exc.sqlstate is None or len(group) == 1:
                # No answer from the server (the connection broke): whether the group committed is
                # unknown, so nothing is retried; every payment of it hears the error (a 503).
                raise
            # The server refused the whole group, so it was rolled back: a payment the database
            # rejects for a reason of its own, or a deadlock (concurrent duplicates of one
            # authorization). Each payment again, alone, gets its own answer.
            log.warning("payment_group_retried_one_by_one", size=len(group), sqlstate=exc.sqlstate)
            for waiter in group:
                await self._commit_alone(waiter)
            return
        for (_, future), result in zip(group, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def _commit_alone(self, waiter: _Waiter) -> None:
        payment, future = waiter
        try:
            result = (await self._execute([payment]))[0]
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(result)

    async def _execute(self, payments: list[NewPayment]) -> list[WriteResult]:
        """One transaction; run again when PostgreSQL chose it as a deadlock victim (or failed it for
        serialization): it was rolled back whole, so running it again is safe. Such a deadlock needs
        two writers inserting the same authorization at once (the payer lock comes before the row in
        accept_payments' one-by-one path and after it in a plain INSERT's statement trigger)."""
        for attempt in range(1, RETRIES_AFTER_DEADLOCK + 1):
            try:
                return await self._execute_once(payments)
            except psycopg.Error as exc:
                if exc.sqlstate not in _ROLLED_BACK_WHOLE or attempt == RETRIES_AFTER_DEADLOCK:
                    raise
                log.warning(
                    "payment_write_retried", sqlstate=exc.sqlstate, size=len(payments), attempt=attempt
                )
                await asyncio.sleep(random.uniform(0, 0.005 * attempt))
        raise AssertionError("unreachable")

    async def _execute_once(self, payments: list[NewPayment]) -> list[WriteResult]:
        async with self._pool.connection() as conn:
            if len(payments) == 1:
                return [await _insert_one(conn, payments[0])]
            cursor = await conn.execute(q("accept_payments"), batch_params(payments))
            rows = await cursor.fetchall()
            if [row["ord"] for row in rows] != list(range(1, len(payments) + 1)):
                raise RuntimeError("accept_payments did not answer for every payment")
            results = []
            for payment, row in zip(payments, rows, strict=True):
                if row["outcome"] == "duplicate" and row["payment_id"] is None:  # archived (0012)
                    results.append(await _duplicate_of(conn, payment))
                else:
                    results.append(
                        WriteResult(
                            row["outcome"], None if row["payment_id"] is None else str(row["payment_id"])
                        )
                    )
        return results


async def _insert_one(conn: Any, payment: NewPayment) -> WriteResult:
    """A group of one, as a plain INSERT: what accept_payments answers, for less work (a quiet
    server's every payment goes this way)."""
    params = asdict(payment)
    try:
        row = await (await conn.execute(q("insert_payment"), params)).fetchone()
    except psycopg.Error as exc:
        if exc.sqlstate == SOLD_OUT:
            return WriteResult("sold_out", None)
        if exc.sqlstate == TOO_MANY_OPEN:
            return WriteResult("too_many_open", None)
        raise
    if row is not None:
        return WriteResult("accepted", str(row["id"]))
    return await _duplicate_of(conn, payment)


async def _duplicate_of(conn: Any, payment: NewPayment) -> WriteResult:
    """A payment not inserted because its authorization already has one (live, or archived)."""
    existing = await (await conn.execute(q("payment_id_for_authorization"), asdict(payment))).fetchone()
    return WriteResult("duplicate", None if existing is None else str(existing["id"]))
