"""Serving the ingress with uvicorn, with a deadline on request headers.

uvicorn times out idle keep-alive connections but not a client that trickles its request headers
(slowloris). This protocol gives every request `header_timeout` seconds from the moment the server
starts waiting for it until its headers are complete, then closes the connection. Each connection
costs the event loop nothing while it waits, so slow clients never hold up the others.
"""

from __future__ import annotations

import asyncio

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from shared.config import Settings


class DeadlineH11Protocol(H11Protocol):
    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._current: object | None = None
        self._deadline: asyncio.TimerHandle | None = self.loop.call_later(self.header_timeout, self._expire)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not None and self.cycle is not self._current:  # a new request's headers are in
            self._current = self.cycle
            self._cancel()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._cancel()
        self._deadline = self.loop.call_later(self.header_timeout, self._expire)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def _cancel(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self.cycle is self._current and not self.transport.is_closing():
            self.transport.close()


def serve(settings: Settings) -> None:
    """Run the API (API_HOST, API_PORT, API_WORKERS); each worker process builds its app from the
    environment (api.app:app_from_env), which also sets the header deadline."""
    uvicorn.run(
        "api.app:app_from_env",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        workers=settings.api_workers,
        log_level=settings.log_level.lower(),
        access_log=False,
        http=DeadlineH11Protocol,
        h11_max_incomplete_event_size=64 * 1024,
        timeout_graceful_shutdown=int(settings.drain_seconds),
    )
