"""GET /dashboard (the page), /dashboard/figures (what it draws, JSON) and /dashboard/static/* (uPlot,
from npm, served from here: no CDN). Only when DASHBOARD is on; see api/access.py for who may read."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from api.access import operators_only

PAGE = Path(__file__).resolve().parents[1] / "dashboard.html"
STATIC = Path(__file__).resolve().parents[1] / "static"


@cache
def _page() -> str:
    return PAGE.read_text(encoding="utf-8")


def _denied(request: Request) -> Response | None:
    s = request.app.state.settings
    return operators_only(request, s.dashboard_token, "the dashboard", "DASHBOARD_TOKEN")


async def page(request: Request) -> Response:
    denied = _denied(request)
    if denied is not None:
        return denied
    return HTMLResponse(_page(), headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


async def figures(request: Request) -> Response:
    denied = _denied(request)
    if denied is not None:
        return denied
    return JSONResponse(await request.app.state.figures.get(), headers={"Cache-Control": "no-store"})


def routes() -> list[BaseRoute]:
    return [
        Route("/dashboard", page, methods=["GET"]),
        Route("/dashboard/figures", figures, methods=["GET"]),
        Mount("/dashboard/static", app=StaticFiles(directory=STATIC), name="dashboard-static"),
    ]
