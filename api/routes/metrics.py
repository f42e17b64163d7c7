"""GET /metrics: the Prometheus exposition of every process on this host (prometheus-client's
multiprocess directory) and of the figures PostgreSQL holds (shared/db/gauges.py)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from api.access import operators_only
from shared.db.gauges import CONTENT_TYPE, exposition


async def metrics(request: Request) -> Response:
    s = request.app.state.settings
    denied = operators_only(request, s.metrics_token, "/metrics", "METRICS_TOKEN")
    if denied is not None:
        return denied
    body = await asyncio.to_thread(exposition, s.database_url)  # a scrape must not stall the ingress
    return Response(body, media_type=CONTENT_TYPE)
