"""Who may read the operators' pages (/metrics, /dashboard): with a token configured, whoever presents
it (`Authorization: Bearer <token>`, or `?token=` on a browser's first page load); without one, only a
client on this machine talking to an API that listens on loopback (API_HOST 127.0.0.1) — and not
through a proxy (a request that carries Forwarded / X-Forwarded-For came from someone else)."""

from __future__ import annotations

import hmac
import ipaddress

from starlette.requests import Request

from api.errors import Rejection, rejection


def presented_token(request: Request) -> str:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return request.query_params.get("token", "")


def from_this_machine(request: Request) -> bool:
    if "forwarded" in request.headers or "x-forwarded-for" in request.headers:
        return False
    try:
        return request.client is not None and ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:  # not an address (a unix socket peer, a test client's name)
        return False


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
    if request.app.state.settings.api_on_loopback and from_this_machine(request):
        return None
    return rejection(
        403,
        "operator_token_not_configured",
        f"{page} is served beyond this machine only with a token: set {variable}",
    )
