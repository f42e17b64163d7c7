"""Every answer that is not a success: a stable machine code (`reason`) and plain words (`message`)."""

from __future__ import annotations

from starlette.responses import JSONResponse

PAYMENT_FAILED = "x402 payment verification failed"


def rejection(
    status: int,
    reason: str,
    message: str,
    *,
    error: str = "request rejected",
    headers: dict[str, str] | None = None,
    **extra: object,
) -> JSONResponse:
    body: dict[str, object] = {"error": error, "reason": reason, "message": message, **extra}
    return JSONResponse(body, status_code=status, headers=headers)
