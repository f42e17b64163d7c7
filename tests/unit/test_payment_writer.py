"""Group commit (api/payment_writer.py) against a fake pool: who goes together, and who hears what."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest

from api.payment_writer import RETRIES_AFTER_DEADLOCK, NewPayment, PaymentWriter, WriteResult, batch_params


def payment(nonce: str) -> NewPayment:
    return NewPayment("0xt", "0xa", "0xp", "0xp", 1, 2**200, nonce, 0, 2**255, "0xs", "header")


class FakePool:
    """Answers like the database: every payment accepted, id = 'id-' + nonce (accept_payments for a
    group, insert_payment for a group of one)."""

    def __init__(self, fail: Callable[[list[str]], BaseException | None] = lambda nonces: None) -> None:
        self.groups: list[list[str]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = fail

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[FakePool]:
        yield self

    async def execute(self, sql: str, params: dict[str, Any]) -> FakePool:
        nonces: list[str] = params["nonce"] if isinstance(params["nonce"], list) else [params["nonce"]]
        self.groups.append(nonces)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.gate.wait()
        finally:
            self.in_flight -= 1
        error = self.fail(nonces)
        if error is not None:
            raise error
        self.rows = [
            {"ord": i + 1, "outcome": "accepted", "payment_id": f"id-{n}"} for i, n in enumerate(nonces)
        ]
        return self

    async def fetchall(self) -> list[dict[str, Any]]:
        return self.rows

    async def fetchone(self) -> dict[str, Any]:
        (row,) = self.rows
        return {"id": row["payment_id"]}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


def a_then_the_rest(pool: FakePool, later: list[str]) -> list[Any]:
    """One writer: "a" goes alone (nobody waits for a group to fill); `later` queue up while it is in
    flight, then everything finishes. Returns each payment's result or exception, "a" first."""

    async def go() -> list[Any]:
        writer = PaymentWriter(pool, batch_size=10, writers=1)  # type: ignore[arg-type]
        pool.gate.clear()
        first = asyncio.create_task(writer.write(payment("a")))
        await until(lambda: pool.in_flight == 1)
        rest = [asyncio.create_task(writer.write(payment(n))) for n in later]
        await until(lambda: writer.queued == len(later))
        pool.gate.set()
        results = await asyncio.gather(first, *rest, return_exceptions=True)
        await writer.close()
        return list(results)

    return list(run(go()))


def test_arrays_are_parallel_and_uint256_goes_as_text() -> None:
    params = batch_params([payment("0x1"), payment("0x2")])
    assert params["nonce"] == ["0x1", "0x2"] and params["quantity"] == [1, 1]
    assert params["amount"] == [str(2**200)] * 2 and params["valid_before"] == [str(2**255)] * 2


def test_payments_that_arrive_while_the_writer_is_busy_go_together() -> None:
    pool = FakePool()
    results = a_then_the_rest(pool, list("bcdef"))
    assert pool.groups == [["a"], ["b", "c", "d", "e", "f"]]
    assert [r.payment_id for r in results] == [f"id-{n}" for n in "abcdef"]
    assert {r.outcome for r in results} == {"accepted"}


def test_groups_are_at_most_batch_size_and_writers_run_side_by_side() -> None:
    async def go() -> FakePool:
        pool = FakePool()
        writer = PaymentWriter(pool, batch_size=3, writers=2)  # type: ignore[arg-type]
        pool.gate.clear()
        tasks = [asyncio.create_task(writer.write(payment(str(n)))) for n in range(11)]
        await until(lambda: pool.in_flight == 2)
        pool.gate.set()
        await asyncio.gather(*tasks)
        await writer.close()
        return pool

    pool = run(go())
    assert pool.most_in_flight == 2
    assert all(len(group) <= 3 for group in pool.groups)
    assert sorted(n for group in pool.groups for n in group) == sorted(str(n) for n in range(11))


@pytest.mark.parametrize(
    "error", [psycopg.errors.CheckViolation("bad row"), psycopg.errors.DeadlockDetected("deadlock")]
)
def test_a_group_the_server_refuses_is_retried_one_by_one(error: psycopg.Error) -> None:
    def fail(nonces: list[str]) -> BaseException | None:
        if "bad" not in nonces or (len(nonces) == 1 and isinstance(error, psycopg.errors.DeadlockDetected)):
            return None
        return error

    pool = FakePool(fail)
    results = a_then_the_rest(pool, ["b", "bad", "c"])
    # A deadlock victim is first run again as it was (rolled back whole); then one by one.
    tries = RETRIES_AFTER_DEADLOCK if isinstance(error, psycopg.errors.DeadlockDetected) else 1
    assert pool.groups == [["a"]] + [["b", "bad", "c"]] * tries + [["b"], ["bad"], ["c"]]
    assert [r.payment_id for r in (results[0], results[1], results[3])] == ["id-a", "id-b", "id-c"]
    if isinstance(error, psycopg.errors.DeadlockDetected):  # alone, it went through
        assert results[2].payment_id == "id-bad"
    else:
        assert isinstance(results[2], psycopg.errors.CheckViolation)


def test_a_broken_connection_is_not_retried() -> None:
    """Whether the group committed is unknown, so every payment of it hears the error (a 503)."""

    def fail(nonces: list[str]) -> BaseException | None:
        return psycopg.OperationalError("server closed the connection") if len(nonces) > 1 else None

    pool = FakePool(fail)
    results = a_then_the_rest(pool, ["b", "c"])
    assert pool.groups == [["a"], ["b", "c"]]
    assert results[0].payment_id == "id-a"
    assert all(isinstance(r, psycopg.OperationalError) for r in results[1:])


def test_a_writer_that_finished_never_strands_a_later_payment() -> None:
    async def go() -> list[WriteResult]:
        pool = FakePool()
        writer = PaymentWriter(pool, batch_size=10, writers=1)  # type: ignore[arg-type]
        results = [await writer.write(payment(str(n))) for n in range(5)]
        await writer.close()
        return results

    assert [r.payment_id for r in run(go())] == [f"id-{n}" for n in range(5)]


@pytest.mark.parametrize("size", [0, 61])
def test_the_group_size_is_bounded(size: int) -> None:
    from shared.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="INGRESS_BATCH_SIZE"):
        load_settings({"DATABASE_URL": "postgresql://x/y", "INGRESS_BATCH_SIZE": str(size)})


def test_a_deadlock_victim_is_run_again_even_alone() -> None:
    """PostgreSQL rolled the victim's transaction back whole: the writer runs it again."""
    failures = {"n": 2}

    def fail(nonces: list[str]) -> BaseException | None:
        if failures["n"]:
            failures["n"] -= 1
            return psycopg.errors.DeadlockDetected("deadlock detected")
        return None

    async def go() -> tuple[FakePool, WriteResult]:
        pool = FakePool(fail)
        writer = PaymentWriter(pool, batch_size=8, writers=1)  # type: ignore[arg-type]
        result = await writer.write(payment("0x1"))
        await writer.close()
        return pool, result

    pool, result = run(go())
    assert result == WriteResult("accepted", "id-0x1")
    assert pool.groups == [["0x1"]] * 3


def test_a_deadlock_that_keeps_coming_back_is_raised() -> None:
    async def go() -> BaseException:
        pool = FakePool(lambda nonces: psycopg.errors.DeadlockDetected("deadlock detected"))
        writer = PaymentWriter(pool, batch_size=8, writers=1)  # type: ignore[arg-type]
        try:
            await writer.write(payment("0x1"))
        except psycopg.Error as exc:
            return exc
        finally:
            await writer.close()
        raise AssertionError("no error")

    assert isinstance(run(go()), psycopg.errors.DeadlockDetected)
