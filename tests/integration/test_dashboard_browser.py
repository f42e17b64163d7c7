"""The live dashboard in headless Chromium (Debian's, driven by playwright): purchases made while the
page is open appear on it by themselves — counts, queues, the per-minute chart — with relayers and
RPC endpoints shown; the screenshot is kept in test-artifacts/. And who may open it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from cli.devnet import anvil
from cli.devnet.paths import PROJECT_ROOT
from shared.config import Settings
from tests.integration.conftest import Deployment, LiveServer, Pipeline, with_settings
from tests.integration.helpers import buy, wait_for

pytestmark = [pytest.mark.chain, pytest.mark.slow]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"


@pytest.fixture
def dashboard_api(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(with_settings(settings, dashboard=True)) as server:
        yield server


def number(page: Any, element: str) -> int:
    return int(page.text_content(f"#{element}") or "0")


def test_purchases_appear_on_the_live_dashboard(
    browser: Any, dashboard_api: LiveServer, pipeline: Pipeline, client: TestClient, deployment: Deployment
) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    opened = page.goto(f"{dashboard_api.url}/dashboard")
    assert opened is not None and opened.status == 200
    page.wait_for_function("document.getElementById('payments-completed').textContent !== '—'")
    paid_before, minted_before = number(page, "payments-completed"), number(page, "mints-completed")
    unminted_before = number(page, "paid-not-minted")  # other tests' leftovers stay as they were

    key = anvil.dev_account(17).key.hex()
    ids = [buy(client, deployment.token.address, key, q) for q in (1, 2, 3, 1)]
    for payment_id in ids:
        assert wait_for(client, payment_id)["status"] == "completed"

    # Nobody reloads the page: it polls, and the purchases show up.
    page.wait_for_function(
        f"Number(document.getElementById('payments-completed').textContent) >= {paid_before + 4}",
        timeout=30_000,
    )
    assert number(page, "mints-completed") >= minted_before + 7
    assert number(page, "paid-not-minted") == unminted_before
    queues = page.inner_text("#queues tbody")
    assert "payment\tcompleted" in queues and "mint\tcompleted" in queues
    relayers = page.inner_text("#relayers tbody")
    assert "payment-sender" in relayers and "mint-sender" in relayers
    assert "up" in page.inner_text("#rpc tbody")
    assert "MINT" in page.inner_text("#supply tbody")
    # The per-minute chart has this minute's payments (uPlot keeps its data on the instance).
    drawn = page.evaluate("rateChart.data[1].reduce((a, b) => a + (b || 0), 0)")
    assert drawn >= 4
    assert page.locator("#rate-chart canvas").count() == 1
    assert page.locator("#latency-chart canvas").count() == 1
    assert "not updating" not in (page.text_content("#state") or "")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)


def test_the_dashboard_is_off_unless_configured_and_for_operators_only(settings: Settings) -> None:
    with TestClient(create_app(settings)) as off:
        assert off.get("/dashboard").status_code == 404
    guarded = with_settings(settings, dashboard=True, api_host="0.0.0.0", dashboard_token="let-me-in")
    with TestClient(create_app(guarded)) as c:
        refused = c.get("/dashboard")
        assert refused.status_code == 401 and refused.json()["reason"] == "operator_token_required"
        assert c.get("/dashboard/figures").status_code == 401
        assert c.get("/dashboard?token=let-me-in").status_code == 200
        figures = c.get("/dashboard/figures", headers={"Authorization": "Bearer let-me-in"})
        assert figures.status_code == 200 and {"queues", "money", "minutes", "relayers", "rpc"} <= set(
            figures.json()
        )
        assert c.get("/dashboard/static/uPlot.iife.min.js").status_code == 200
    untokened = with_settings(settings, dashboard=True, api_host="0.0.0.0")
    with TestClient(create_app(untokened)) as c:
        assert c.get("/dashboard").json()["reason"] == "operator_token_not_configured"


def test_the_served_chart_library_is_the_npm_package(settings: Settings) -> None:
    """uPlot is served from api/static (no CDN); it is the file the pinned npm package ships."""
    for name in ("uPlot.iife.min.js", "uPlot.min.css"):
        served = (PROJECT_ROOT / "api" / "static" / name).read_bytes()
        assert served == (PROJECT_ROOT / "node_modules" / "uplot" / "dist" / name).read_bytes(), name
