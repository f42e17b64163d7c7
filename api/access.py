"""Who may read the operators' pages (/metrics, /dashboard): with a token configured, whoever presents
it (`Authorization: Bearer <token>`, or `?token=` on a browser's first page load); without one, anyone
who can reach the API only when it listens on loopback (API_HOST 127.0.0.1): nobody else can."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from api.errors import Rejection, rejection


def presented_token(request: Request) -> str:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return request.query_params.get("token", "")


def operators_only(request: Request, token: str, page: str, variable: str) -> Rejection | None:
    """None if this request may read `page`; else the refusal (token `variable` names the setting)."""
    if token:
        if hmac.compare_digest(presented_token(request).encode(), token.encode()):
            return None
        return rejection(
            401,
            "operator_token_required",
            f"{page} needs the operator token ({variable}): send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if request.app.state.settings.api_on_loopback:
        return None
    return rejection(
        403,
        "operator_token_not_configured",
        f"{page} is served beyond this machine only with a token: set {variable}",
    )
