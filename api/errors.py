"""Every answer that is not a success: a stable machine code (`reason`) and plain words (`message`)."""

from __future__ import annotations

import structlog
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAYMENT_FAILED = "x402 payment verification failed"


class Rejection(JSONResponse):
    """A refusal; its `reason` is kept on the response too (the metrics count refusals by it)."""

    def __init__(self, body: dict[str, object], status: int, headers: dict[str, str] | None) -> None:
        super().__init__(body, status_code=status, headers=headers)
        self.reason = str(body["reason"])


def rejection(
    status: int,
    reason: str,
    message: str,
    *,
    error: str = "request rejected",
    headers: dict[str, str] | None = None,
    **extra: object,
) -> Rejection:
    body: dict[str, object] = {"error": error, "reason": reason, "message": message, **extra}
    return Rejection(body, status, headers)


def unavailable() -> Rejection:
    return rejection(503, "temporarily_unavailable", "the service could not take this request; try again")


class Unexpected:
    """ASGI middleware inside CORS: an unexpected error becomes the 503 `temporarily_unavailable`
    here, so a browser's script can read it (Starlette's own handler for it sits outside every
    middleware, CORS included). Logged with its traceback; the request changed nothing it did not
    commit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            structlog.get_logger().exception("request_failed", path=scope.get("path"))
            if started:
                raise  # too late for an answer of our own: the server closes the connection
            await unavailable()(scope, receive, send)
