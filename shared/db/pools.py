"""PostgreSQL access: connection pools (psycopg 3 + psycopg_pool) with dict rows."""

from __future__ import annotations

import time
from typing import Any
from weakref import WeakKeyDictionary

from psycopg import Connection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool


def open_pool(
    database_url: str, *, max_size: int = 10, name: str = "x402", timeout: float = 30.0
) -> ConnectionPool[Connection[DictRow]]:
    """A pool with one connection made before it returns (PoolTimeout after `timeout` seconds, the pool
    closed again: nothing keeps trying in the background)."""
    pool: ConnectionPool[Connection[DictRow]] = ConnectionPool(
        database_url,
        min_size=1,
        max_size=max_size,
        kwargs={"row_factory": dict_row, "autocommit": False},
        name=name,
        open=False,
        check=_check_if_idle_sync,
        reset=_note_return_sync,
    )
    try:
        pool.open(wait=True, timeout=timeout)
    except Exception:
        pool.close()
        raise
    return pool


#: A connection back in the pool for longer than this is checked before it is lent again (a round
#: trip); one lent again at once is not — under load that check was a round trip per payment (in
#: the API) or per statement group (in a stage). A connection broken meanwhile (PostgreSQL
#: restarted) fails its request — a 503 the client retries, or a stage's batch, retried after a
#: backoff — and the pool discards it.
IDLE_CHECK_SECONDS = 5.0
_returned: WeakKeyDictionary[Any, float] = WeakKeyDictionary()


def _note_return_sync(conn: Any) -> None:
    _returned[conn] = time.monotonic()


def _check_if_idle_sync(conn: Any) -> None:
    if time.monotonic() - _returned.get(conn, float("-inf")) > IDLE_CHECK_SECONDS:
        ConnectionPool.check_connection(conn)


async def _note_return(conn: Any) -> None:
    _returned[conn] = time.monotonic()


async def _check_if_idle(conn: Any) -> None:
    if time.monotonic() - _returned.get(conn, float("-inf")) > IDLE_CHECK_SECONDS:
        await AsyncConnectionPool.check_connection(conn)


async def open_async_pool(
    database_url: str,
    *,
    max_size: int = 10,
    session_settings: dict[str, str] | None = None,
    wait: bool = True,
) -> AsyncConnectionPool[Any]:
    """An autocommit pool for the API; `session_settings` become GUCs of every connection. Without
    `wait`, it opens at once and connects in the background (the API starts while PostgreSQL is down,
    answering 503 until it is up)."""
    options = " ".join(f"-c {name}={value}" for name, value in (session_settings or {}).items())
    kwargs: dict[str, Any] = {"row_factory": dict_row, "autocommit": True}
    if options:
        kwargs["options"] = options
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        database_url,
        min_size=1,
        max_size=max_size,
        kwargs=kwargs,
        name="x402-api",
        open=False,
        check=_check_if_idle,
        reset=_note_return,
    )
    await pool.open(wait=wait, timeout=30)
    return pool
