"""The ingress: a small Starlette app. No request path makes a chain call."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.admission import Admission
from api.backlog import Backlog
from api.catalog import TokenCatalog
from api.dashboard import Figures
from api.errors import Unexpected, rejection, unavailable
from api.limits import RequestLimits
from api.openapi import openapi
from api.payment_writer import PaymentWriter
from api.routes import dashboard
from api.routes.discovery import well_known_x402
from api.routes.health import healthz
from api.routes.metrics import metrics
from api.routes.mint import mint, offer_page
from api.routes.payments import payment_status
from api.routes.tokens import token_info
from api.server import DeadlineHttpProtocol
from shared.config import Settings, load_settings
from shared.db.pools import open_async_pool
from shared.logs import configure_logging


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    reason = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return rejection(exc.status_code, reason, str(exc.detail))


async def server_error(request: Request, exc: Exception) -> Response:
    return unavailable()


#: What a browser's script may read of our answers (CORS): the x402 headers, where to poll, when to retry.
EXPOSED_HEADERS = ["PAYMENT-REQUIRED", "PAYMENT-RESPONSE", "X-PAYMENT-RESPONSE", "Location", "Retry-After"]


def cors(settings: Settings) -> list[Middleware]:
    """CORS for the configured origins only (CORS_ALLOWED_ORIGINS; none by default): preflights are
    answered, and the x402 headers are exposed to the page's script."""
    if not settings.cors_allowed_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_allowed_origins),
            allow_methods=["GET", "POST"],
            # Any request header: the official clients send their own (e.g. @x402/fetch sets
            # Access-Control-Expose-Headers on its request); origins are what CORS restricts here.
            allow_headers=["*"],
            expose_headers=EXPOSED_HEADERS,
            max_age=600,
        )
    ]


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.pool = await open_async_pool(
            settings.database_url,
            max_size=settings.db_pool_size,
            session_settings={
                "x402.max_pending_per_payer": str(settings.max_pending_per_payer),
                "x402.max_pending_wallet_payments": str(settings.max_pending_wallet_payments),
            },
            wait=False,  # up while PostgreSQL is not: 503 until it is (supervisord never sees it fail)
        )
        app.state.catalog = TokenCatalog(app.state.pool)
        app.state.figures = Figures(app.state.pool)
        app.state.backlog = Backlog(app.state.pool, settings.admission_max_backlog)
        app.state.backlog.start()
        app.state.payment_writer = PaymentWriter(
            app.state.pool, batch_size=settings.ingress_batch_size, writers=settings.ingress_writers
        )
        try:
            yield
        finally:
            await app.state.payment_writer.close()
            await app.state.backlog.close()
            await app.state.pool.close()

    return Starlette(
        routes=[
            Route("/api/mint/{token_address}", mint, methods=["POST"]),
            Route("/api/mint/{token_address}", offer_page, methods=["GET"]),
            Route("/api/payment/{payment_id}", payment_status, methods=["GET"]),
            Route("/api/tokens/{token_address}", token_info, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/.well-known/x402", well_known_x402, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            *(dashboard.routes() if settings.dashboard else []),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        middleware=[
            # CORS outermost, so a browser's script can read every answer, the 503s below included.
            *cors(settings),
            # Then admission: a request turned away costs nothing but the 503 (no body read, no
            # verification).
            Middleware(
                Admission,
                deadline=settings.admission_deadline_seconds,
                floor=settings.admission_floor,
            ),
            Middleware(Unexpected),
            Middleware(
                RequestLimits,
                max_header_bytes=settings.max_header_bytes,
                max_body_bytes=settings.max_body_bytes,
                body_timeout=settings.request_timeout_seconds,
            ),
        ],
        lifespan=lifespan,
    )


def create_exporter(settings: Settings) -> Starlette:
    """The stand-alone exporter (`x402-mint metrics`, for a host that runs stages but no API): only
    /metrics, under the same rule as the API's (METRICS_TOKEN, or loopback)."""
    exporter = Starlette(
        routes=[Route("/metrics", metrics, methods=["GET"])],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    exporter.state.settings = settings
    return exporter


def app_from_env() -> Starlette:
    """uvicorn factory: `uvicorn --factory api.app:app_from_env`."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format, component="api")
    DeadlineHttpProtocol.header_timeout = settings.request_timeout_seconds
    return create_app(settings)
