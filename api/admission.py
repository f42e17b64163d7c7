"""Admission under load: a paid POST that would wait longer than it can usefully wait is answered
503 with Retry-After at once, instead of joining a queue for seconds (a buyer whose client times
out retries — safely, the same payment gets the same answer — but may also sign a second one).

Each API process keeps its own figures: the paid requests it has in flight, and the rate at which it
answers them. A newcomer would wait about in_flight ÷ rate; past ADMISSION_DEADLINE_SECONDS it is
turned away. The decision is a pure function (`should_shed`), after procrastinate's retry.py.
"""

from __future__ import annotations

import json
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from shared import metrics

RETRY_AFTER_SECONDS = 1
RATE_WINDOW_SECONDS = 0.5
BUSY = "server_busy"


def should_shed(in_flight: int, per_second: float, *, deadline: float, floor: int) -> bool:
    """Whether a newcomer should be turned away: never while fewer than `floor` are in flight, nor
    before the process has measured how fast it answers (a storm that meets a fresh process is let
    in: turning it away would only make it come back at once); then when the expected wait,
    in_flight ÷ per_second, exceeds `deadline`."""
    if in_flight < floor or per_second <= 0:
        return False
    return in_flight / per_second > deadline


class AnswerRate:
    """Answers per second, smoothed over windows of RATE_WINDOW_SECONDS."""

    def __init__(self) -> None:
        self.per_second = 0.0
        self._count = 0
        self._since = time.monotonic()

    def answered(self) -> None:
        self._count += 1
        now = time.monotonic()
        elapsed = now - self._since
        if elapsed >= RATE_WINDOW_SECONDS:
            measured = self._count / elapsed
            self.per_second = measured if self.per_second == 0 else 0.5 * self.per_second + 0.5 * measured
            self._count, self._since = 0, now


class Admission:
    """ASGI middleware in front of POST /api/mint/…; everything else passes untouched."""

    def __init__(self, app: ASGIApp, *, deadline: float, floor: int) -> None:
        self.app, self.deadline, self.floor = app, deadline, floor
        self.in_flight = 0
        self.rate = AnswerRate()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith("/api/mint/"):
            await self.app(scope, receive, send)
            return
        if should_shed(self.in_flight, self.rate.per_second, deadline=self.deadline, floor=self.floor):
            metrics.payments_refused.labels(BUSY).inc()
            await _busy(send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            self.rate.answered()


async def _busy(send: Send) -> None:
    body = json.dumps(
        {
            "error": "request rejected",
            "reason": BUSY,
            "message": f"too many payments are waiting here now; send the same one again in "
            f"{RETRY_AFTER_SECONDS} s (nothing was stored)",
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
