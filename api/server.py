"""Serving the ingress with uvicorn (httptools, uvloop), with a deadline on request headers.

uvicorn times out idle keep-alive connections but not a client that trickles its request headers
(slowloris). This protocol gives every request `header_timeout` seconds, from the moment the server
starts waiting for it until its headers are complete, then closes the connection. A waiting
connection costs the event loop nothing, so slow clients never hold up the others.
"""

from __future__ import annotations

import asyncio
from functools import partial

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.processes import listening_socket, stop_when_orphaned, supervise
from shared.config import Settings
from shared.logs import configure_logging, stdlib_logging_config

BACKLOG = 4096


class DeadlineHttpProtocol(HttpToolsProtocol):
    header_timeout: float = 10.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_headers_complete(self) -> None:
        self._cancel()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this keep-alive connection gets its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._cancel()
        self._deadline = self.loop.call_later(self.header_timeout, self._expire)

    def _cancel(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def serve(settings: Settings) -> None:
    """Run the API (API_HOST, API_PORT, API_WORKERS): one process per worker, each with its own
    listening socket (api/processes.py); each builds its app from the environment
    (api.app:app_from_env), which also sets the header deadline."""
    configure_logging(settings.log_level, settings.log_format, component="api")
    if settings.api_workers == 1:
        run_worker(settings, None)
        return
    supervise(partial(run_worker, settings), settings.api_workers, settings.drain_seconds)


def run_worker(settings: Settings, parent: int | None) -> None:
    """One uvicorn server on its own SO_REUSEPORT socket (a worker of `parent`, or the only one)."""
    if parent is not None:
        stop_when_orphaned(parent)
    sock = listening_socket(settings.api_host, settings.api_port, BACKLOG)
    config = uvicorn.Config(
        "api.app:app_from_env",
        factory=True,
        log_level=settings.log_level.lower(),
        access_log=False,
        http=DeadlineHttpProtocol,
        # asyncio's loop, not uvloop: under load uvloop took new connections a few dozen a second
        # (bench ingress: 600 waited seconds in the accept queue, and their first requests made the
        # p99); asyncio's accepts all that are waiting each time the socket is ready.
        loop="asyncio",
        backlog=BACKLOG,
        timeout_graceful_shutdown=int(settings.drain_seconds),
        log_config=stdlib_logging_config(settings.log_level, settings.log_format, component="api"),
    )
    uvicorn.Server(config).run(sockets=[sock])
