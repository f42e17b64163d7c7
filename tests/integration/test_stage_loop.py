"""The run loop every stage shares, on a real PostgreSQL's LISTEN/NOTIFY: woken idle by a notice, a
stage lets work gather for its linger, then claims once for all that came meanwhile."""

from __future__ import annotations

import threading
import time

import psycopg
from psycopg import sql

from shared.config import StageSettings
from shared.stage import run_stage
from tests.integration.helpers import wait_until

CHANNEL = "x402_test_stage_loop"


class CountingStage:
    """A stage with nothing to do: it only notes when it was asked to claim."""

    name = "counting"
    channels = (CHANNEL,)
    wake_after: float | None = None

    def __init__(self, linger: float) -> None:
        self.stage_settings = StageSettings(batch_size=10, poll_interval=60.0, linger=linger)
        self.claims: list[float] = []

    def run_once(self) -> int:
        self.claims.append(time.monotonic())
        return 0


def notify(database_url: str, times: int = 1) -> float:
    with psycopg.connect(database_url, autocommit=True) as conn:
        sent = time.monotonic()
        for _ in range(times):
            conn.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(CHANNEL)))
    return sent


def running(stage: CountingStage, database_url: str) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=run_stage, args=(stage, database_url, stop), daemon=True)
    thread.start()
    wait_until(lambda: stage.claims, timeout=10)  # its first look, at start
    time.sleep(0.3)  # listening by now (the listener connects on its first wait)
    return thread, stop


def test_a_notice_wakes_an_idle_stage_which_lingers_then_claims_once(database_url: str) -> None:
    stage = CountingStage(linger=0.5)
    thread, stop = running(stage, database_url)
    try:
        before = len(stage.claims)
        sent = notify(database_url)
        time.sleep(0.1)
        notify(database_url, times=4)  # more work arriving while it lingers
        wait_until(lambda: len(stage.claims) > before, timeout=10)
        time.sleep(0.7)  # time for any further claim the notices might (wrongly) cause
        woken = stage.claims[before:]
        assert len(woken) == 1, "one claim for all the work that came while it lingered"
        assert woken[0] - sent >= 0.5  # not before its linger ...
        assert woken[0] - sent < 30  # ... and woken by the notice, not its 60 s poll interval
    finally:
        stop.set()
        thread.join(timeout=10)


def test_without_a_linger_a_notice_is_claimed_at_once(database_url: str) -> None:
    stage = CountingStage(linger=0.0)
    thread, stop = running(stage, database_url)
    try:
        before = len(stage.claims)
        notify(database_url)
        wait_until(lambda: len(stage.claims) > before, timeout=10)
        assert len(stage.claims) > before  # woken by the notice, well before its 60 s poll interval
    finally:
        stop.set()
        thread.join(timeout=10)
