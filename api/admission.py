"""Admission under load: a paid POST that would wait longer than it can usefully wait is answered
503 with Retry-After at once, instead of joining a queue for seconds (a buyer whose client times
out retries — safely, the same payment gets the same answer — but may also sign a second one).

Each API process watches its own queue: how many paid requests it has in flight, and how long the
oldest of them has been waiting. Requests are answered about in the order they came, so a newcomer
would wait about as long as the oldest has; once that is more than half of
ADMISSION_DEADLINE_SECONDS (and at least ADMISSION_FLOOR are in flight), newcomers are turned away
until the queue is short again. It is measured, not estimated: a storm that meets a fresh process
is let in as long as it is being answered in time. The decision is a pure function
(`should_shed`), after procrastinate's retry.py.

Beyond this process, the settlement backlog (api/backlog.py): while more accepted work waits for the
chain than ADMISSION_MAX_BACKLOG, POSTs that carry a payment are answered 503 `settlement_backlog` the
same way (asking the price still gets its 402).
"""

from __future__ import annotations

import itertools
import json
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from api.backlog import Backlog
from shared import metrics

RETRY_AFTER_SECONDS = 1
BUSY = "server_busy"
BACKLOG = "settlement_backlog"
MESSAGES = {
    BUSY: "too many payments are waiting here now",
    BACKLOG: "more payments are waiting for the chain than it settles in a few seconds",
}


def should_shed(in_flight: int, oldest_wait: float, *, deadline: float, floor: int) -> bool:
    """Whether a newcomer should be turned away: never while fewer than `floor` are in flight; then
    when the oldest request in flight has waited more than half the deadline (the newcomer, behind
    all of them, would come close to it or past it)."""
    return in_flight >= floor and oldest_wait > deadline / 2


class Admission:
    """ASGI middleware in front of POST /api/mint/…; everything else passes untouched."""

    def __init__(self, app: ASGIApp, *, deadline: float, floor: int) -> None:
        self.app, self.deadline, self.floor = app, deadline, floor
        self._started: dict[int, float] = {}  # in flight: ticket → when admitted (oldest first)
        self._tickets = itertools.count()

    @property
    def in_flight(self) -> int:
        return len(self._started)

    def oldest_wait(self) -> float:
        first = next(iter(self._started.values()), None)
        return 0.0 if first is None else time.monotonic() - first

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith("/api/mint/"):
            await self.app(scope, receive, send)
            return
        if should_shed(self.in_flight, self.oldest_wait(), deadline=self.deadline, floor=self.floor):
            metrics.payments_refused.labels(BUSY).inc()
            await _busy(send, BUSY)
            return
        backlog: Backlog | None = getattr(scope["app"].state, "backlog", None)
        if backlog is not None and _paid(scope) and backlog.over():
            metrics.payments_refused.labels(BACKLOG).inc()
            await _busy(send, BACKLOG)
            return
        ticket = next(self._tickets)
        self._started[ticket] = time.monotonic()
        try:
            await self.app(scope, receive, send)
        finally:
            del self._started[ticket]


PAYMENT_HEADERS = (b"x-payment", b"payment-signature")  # x402 v1, v2


def _paid(scope: Scope) -> bool:
    """Whether the request carries a payment (asking the price is never turned away for the backlog:
    a buyer learns it, and signs when it is let in)."""
    return any(name in PAYMENT_HEADERS for name, _ in scope["headers"])


async def _busy(send: Send, reason: str) -> None:
    body = json.dumps(
        {
            "error": "request rejected",
            "reason": reason,
            "message": f"{MESSAGES[reason]}; send the same one again in {RETRY_AFTER_SECONDS} s "
            "(nothing was stored)",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
