"""/metrics as a stock Prometheus scrapes it: the names, the types, and values that move when payments
flow — the API's own counters, the stages', and the figures PostgreSQL holds; who may scrape; and the
Grafana dashboard in docs/ asks only for series that exist."""

from __future__ import annotations

import json
import re

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from cli.devnet import anvil
from cli.devnet.paths import PROJECT_ROOT
from shared.chain.endpoints import label_of
from shared.config import Settings
from tests.integration.conftest import Deployment, Pipeline, with_settings
from tests.integration.helpers import buy, wait_for
from tests.integration.scrape import Scrape

pytestmark = [pytest.mark.chain]

TYPES = {
    "x402mint_payments_accepted": "counter",
    "x402mint_payments_refused": "counter",
    "x402mint_accept_duration_seconds": "histogram",
    "x402mint_claim_batch_size": "histogram",
    "x402mint_transactions_broadcast": "counter",
    "x402mint_transactions_fee_bumped": "counter",
    "x402mint_transactions_dropped": "counter",
    "x402mint_payment_paid_seconds": "histogram",
    "x402mint_mint_seconds": "histogram",
    "x402mint_rpc_request_duration_seconds": "histogram",
    "x402mint_rpc_errors": "counter",
    "x402mint_database_up": "gauge",
    "x402mint_queue_depth": "gauge",
    "x402mint_oldest_item_age_seconds": "gauge",
    "x402mint_stuck_payments": "gauge",
    "x402mint_paid_not_minted_payments": "gauge",
    "x402mint_paid_not_minted_late_payments": "gauge",
    "x402mint_needs_review_payments": "gauge",
    "x402mint_refund_owed_payments": "gauge",
    "x402mint_supply_reserved_mints": "gauge",
    "x402mint_supply_available_mints": "gauge",
    "x402mint_relayer_balance_wei": "gauge",
    "x402mint_relayer_nonce_gaps": "gauge",
    "x402mint_rpc_endpoint_up": "gauge",
    "x402mint_rpc_endpoint_lag_blocks": "gauge",
}


def scrape(client: TestClient) -> Scrape:
    reply = client.get("/metrics")
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    return Scrape.parse(reply.text)


def test_a_scrape_has_every_metric_and_its_values_move_when_payments_flow(
    client: TestClient, pipeline: Pipeline, deployment: Deployment, settings: Settings
) -> None:
    token = deployment.token.address
    before = scrape(client)
    for name, kind in TYPES.items():
        assert before.types.get(name) == kind, (name, before.types.get(name))
    assert before.value("x402mint_database_up") == 1
    buyers = [anvil.dev_account(i).key.hex() for i in (17, 18)]
    ids = [buy(client, token, key, q) for key, q in zip(buyers, (1, 3), strict=True)]
    refused = client.post(f"/api/mint/{token}", json={"quantity": 1}, headers={"X-PAYMENT": "not base64"})
    assert refused.status_code == 400
    for payment_id in ids:
        assert wait_for(client, payment_id)["status"] == "completed"
    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert moved("x402mint_payments_accepted_total", version="1") == 2
    assert moved("x402mint_payments_refused_total", reason=refused.json()["reason"]) == 1
    assert moved("x402mint_accept_duration_seconds_count", outcome="accepted") == 2  # the two 202s
    assert moved("x402mint_accept_duration_seconds_count", outcome="refused") == 1
    assert moved("x402mint_payment_paid_seconds_count") == 2
    assert moved("x402mint_mint_seconds_count") == 4
    assert moved("x402mint_claim_batch_size_count", stage="payment-sender") >= 1
    assert moved("x402mint_claim_batch_size_count", stage="confirmer") >= 1
    assert moved("x402mint_transactions_broadcast_total", outcome="accepted") >= 2  # payment(s) and mint(s)
    endpoint = label_of(settings.rpc_url)
    assert moved("x402mint_rpc_request_duration_seconds_count", endpoint=endpoint) > 0
    assert moved("x402mint_queue_depth", queue="payment", status="completed") == 2
    assert moved("x402mint_queue_depth", queue="mint", status="completed") == 4
    assert moved("x402mint_supply_reserved_mints", token=token.lower()) == 4
    assert after.value("x402mint_relayer_balance_wei", stage="payment-sender") > 0
    assert after.value("x402mint_relayer_balance_wei", stage="mint-sender") > 0
    assert after.value("x402mint_relayer_nonce_gaps") == 0
    assert after.value("x402mint_rpc_endpoint_up", endpoint=endpoint) == 1
    assert moved("x402mint_paid_not_minted_payments") == 0  # (other tests' leftovers stay as they were)
    assert moved("x402mint_paid_not_minted_late_payments") == 0


def test_metrics_are_for_operators_only(settings: Settings) -> None:
    """Reachable from beyond this machine only with METRICS_TOKEN (a bearer token, as Prometheus'
    `authorization` setting sends it); on a loopback-only API, without one."""
    with TestClient(create_app(settings), client=("10.1.2.3", 40000)) as other_machine:
        assert other_machine.get("/metrics").status_code == 403  # loopback-bound, but not from here
    with TestClient(create_app(settings), client=("127.0.0.1", 40000)) as proxied:
        forwarded = proxied.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
        assert forwarded.status_code == 403  # a local proxy relaying someone else
    with TestClient(create_app(with_settings(settings, api_host="0.0.0.0"))) as open_host:
        reply = open_host.get("/metrics")
        assert reply.status_code == 403 and reply.json()["reason"] == "operator_token_not_configured"
    with TestClient(create_app(with_settings(settings, api_host="0.0.0.0", metrics_token="s3cret"))) as c:
        refused = c.get("/metrics")
        assert refused.status_code == 401 and refused.json()["reason"] == "operator_token_required"
        assert refused.headers["www-authenticate"] == "Bearer"
        assert c.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_the_grafana_dashboard_asks_only_for_series_that_exist(client: TestClient) -> None:
    board = json.loads((PROJECT_ROOT / "docs" / "grafana-dashboard.json").read_text())
    exprs = [
        target["expr"] for panel in board["panels"] for target in panel.get("targets", []) if "expr" in target
    ]
    assert len(exprs) >= 10
    used = {name for expr in exprs for name in re.findall(r"x402mint_[a-z0-9_]+", expr)}
    missing = used - scrape(client).series_names()
    assert not missing, missing
