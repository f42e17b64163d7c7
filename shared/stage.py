"""The run loop every stage shares (after procrastinate's worker and pgqueuer's supervisor).

Idle, a stage waits for whichever comes first: a NOTIFY on one of its channels, its poll interval,
or a stop; woken by a NOTIFY, or after a batch that was not full, it lets more work gather for its
`linger` before it claims again (copies of a stage would otherwise take turns claiming each few rows
as they arrive). With a backlog (a batch came back full) it keeps draining without sleeping. SIGTERM and
SIGINT only set the stop event; the batch in hand finishes, and a watchdog ends the process if that
takes longer than `drain_seconds` (shorter than supervisord's stopwaitsecs). Ending it early is safe:
every row it held is either committed in its new status or reclaimed when its lease runs out.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

import psycopg
import structlog
from psycopg import sql

from shared.config import Settings, StageSettings
from shared.runtime import Runtime, open_runtime

log = structlog.get_logger()


class Stage(Protocol):
    name: str
    channels: tuple[str, ...]
    stage_settings: StageSettings
    #: Set by run_once when it left work that is due again soon (e.g. a receipt not mined yet):
    #: the idle wait is then no longer than this.
    wake_after: float | None

    def run_once(self) -> int:
        """Process one batch; return how many items it handled."""
        ...


class Startable(Stage, Protocol):
    def start(self) -> None:
        """Line up with the chain before the first batch (e.g. each key's next nonce)."""
        ...


S = TypeVar("S", bound=Startable)
WAIT_CAP_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 5.0


def start_when_ready(
    settings: Settings, create: Callable[[Runtime], S], stop: threading.Event
) -> tuple[Runtime, S] | None:
    """Open the stage's runtime, create the stage and start it. While the database or the node does
    not answer, wait (1, 2, 4, … up to 30 s) and try again, so a stage started before them, or
    restarted while they are down, comes up by itself once they do; None if stopped meanwhile.
    A misconfiguration (ValueError) is raised at once: waiting would not cure it."""
    attempt = 0
    while not stop.is_set():
        runtime: Runtime | None = None
        try:
            runtime = open_runtime(settings, connect_timeout=CONNECT_TIMEOUT_SECONDS)
            instance = create(runtime)
            instance.start()
            return runtime, instance
        except ValueError:
            raise
        except Exception as exc:
            if runtime is not None:
                runtime.close()
            attempt += 1
            delay = min(WAIT_CAP_SECONDS, 2.0 ** (attempt - 1))
            log.warning(
                "stage_waiting_for_dependencies", error=f"{type(exc).__name__}: {exc}"[:300], retry_in=delay
            )
            stop.wait(delay)
    return None


class Listener:
    """A LISTEN connection that survives database restarts (it reconnects on the next wait)."""

    def __init__(self, database_url: str, channels: tuple[str, ...]) -> None:
        self._url = database_url
        self._channels = channels
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        conn = psycopg.connect(self._url, autocommit=True, connect_timeout=5)
        for channel in self._channels:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        return conn

    def wait(self, timeout: float, stop: threading.Event) -> bool:
        """Block until a notice arrives (True), `timeout` passes or `stop` is set (False)."""
        deadline = time.monotonic() + timeout
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = self._connect()
                for _ in self._conn.notifies(timeout=min(remaining, 0.5), stop_after=1):
                    return True
            except psycopg.Error as exc:
                log.warning("listener_unavailable", error=str(exc))
                self.close()
                stop.wait(min(remaining, 1.0))
        return False

    def linger(self, seconds: float, stop: threading.Event) -> None:
        """Let work gather for `seconds` (unless stopped), then drop the notices that came meanwhile:
        the claim that follows sees the work they announced (a notice is sent at its writer's commit)."""
        if seconds <= 0:
            return
        stop.wait(seconds)
        try:
            if self._conn is not None and not self._conn.closed:
                for _ in self._conn.notifies(timeout=0):
                    pass
        except psycopg.Error as exc:
            log.warning("listener_unavailable", error=str(exc))
            self.close()

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


def install_stop_handlers(stop: threading.Event, drain_seconds: float) -> None:
    """SIGTERM/SIGINT set `stop`; a watchdog ends the process if draining outlasts `drain_seconds`."""

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():
            return
        stop.set()
        log.info("stop_requested", signal=signal.Signals(signum).name, drain_seconds=drain_seconds)
        watchdog = threading.Timer(drain_seconds, _drain_timed_out)
        watchdog.daemon = True
        watchdog.start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def _drain_timed_out() -> None:
    log.error("drain_timed_out")
    os._exit(3)


def run_stage(
    stage: Stage,
    database_url: str,
    stop: threading.Event,
    *,
    error_backoff: float = 1.0,
    on_tick: Callable[[], None] | None = None,
) -> None:
    """Run `stage` until `stop` is set; `on_tick` (e.g. reporting RPC health) runs before each batch,
    and a failure of it is logged, never fatal."""
    listener = Listener(database_url, stage.channels)
    log.info("stage_started", stage=stage.name, batch_size=stage.stage_settings.batch_size)
    try:
        while not stop.is_set():
            if on_tick is not None:
                try:
                    on_tick()
                except Exception as exc:
                    log.warning("tick_failed", stage=stage.name, error=str(exc)[:300])
            try:
                handled = stage.run_once()
            except Exception:
                log.exception("batch_failed", stage=stage.name)
                stop.wait(error_backoff)
                continue
            if handled >= stage.stage_settings.batch_size:
                continue  # a backlog: keep draining
            if handled:  # something moved: look again before sleeping (cheap when empty), once the
                listener.linger(stage.stage_settings.linger, stop)  # rest of a part batch gathered
                continue
            interval = stage.stage_settings.poll_interval
            if stage.wake_after is not None:
                interval = min(interval, stage.wake_after)
            if listener.wait(interval, stop):
                listener.linger(stage.stage_settings.linger, stop)
    finally:
        listener.close()
        log.info("stage_stopped", stage=stage.name)
