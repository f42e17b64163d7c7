"""Every answer that is not a success: a stable machine code (`reason`) and plain words (`message`)."""

from __future__ import annotations

from starlette.responses import JSONResponse

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
