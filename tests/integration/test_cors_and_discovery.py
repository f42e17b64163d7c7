"""Browsers may call the API from the origins configured (CORS), and read the x402 headers; the 402
declares the bazaar discovery extension, and /.well-known/x402 lists the tokens on sale, each
validated against the schema the spec gives (or the one the extension declares)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError
from starlette.testclient import TestClient

from api.app import EXPOSED_HEADERS, create_app
from shared.config import Settings
from tests.integration.conftest import Deployment, with_settings

pytestmark = pytest.mark.chain
SHOP = "https://shop.example"

# The discovery list of x402 spec v2 §8 (GET /discovery/resources), as a JSON Schema.
DISCOVERY_LIST = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["x402Version", "items"],
    "properties": {
        "x402Version": {"const": 2},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["resource", "type", "x402Version", "accepts", "lastUpdated"],
                "properties": {
                    "resource": {"type": "string", "format": "uri"},
                    "type": {"enum": ["http", "mcp"]},
                    "x402Version": {"type": "integer"},
                    "accepts": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": [
                                "scheme",
                                "network",
                                "amount",
                                "asset",
                                "payTo",
                                "maxTimeoutSeconds",
                            ],
                        },
                    },
                    "lastUpdated": {"type": "integer"},
                    "metadata": {"type": "object"},
                },
            },
        },
        "pagination": {
            "type": "object",
            "required": ["limit", "offset", "total"],
            "properties": {k: {"type": "integer", "minimum": 0} for k in ("limit", "offset", "total")},
        },
    },
}


def test_cors_answers_configured_origins_only(settings: Settings, deployment: Deployment) -> None:
    token = deployment.token.address
    with TestClient(create_app(with_settings(settings, cors_allowed_origins=(SHOP,)))) as client:
        preflight = client.options(
            f"/api/mint/{token}",
            headers={
                "Origin": SHOP,
                "Access-Control-Request-Method": "POST",
                # what @x402/fetch sends: it sets Access-Control-Expose-Headers on its own request
                "Access-Control-Request-Headers": (
                    "access-control-expose-headers, content-type, payment-signature"
                ),
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == SHOP
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert "payment-signature" in allowed and "access-control-expose-headers" in allowed
        offer = client.post(f"/api/mint/{token}", json={"quantity": 1}, headers={"Origin": SHOP})
        assert offer.status_code == 402 and offer.headers["access-control-allow-origin"] == SHOP
        exposed = {h.strip().lower() for h in offer.headers["access-control-expose-headers"].split(",")}
        assert exposed == {h.lower() for h in EXPOSED_HEADERS}
        assert {
            "payment-required",
            "payment-response",
            "x-payment-response",
            "location",
            "retry-after",
        } == exposed
        stranger = client.post(
            f"/api/mint/{token}", json={"quantity": 1}, headers={"Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in stranger.headers
    with TestClient(create_app(settings)) as default:  # none configured: no CORS at all
        offer = default.post(f"/api/mint/{token}", json={"quantity": 1}, headers={"Origin": SHOP})
        assert "access-control-allow-origin" not in offer.headers


def test_a_browser_can_read_the_503s_too(
    settings: Settings, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Turned away under load, or met by a fault: the answer carries CORS, so a page's script reads
    the reason and the Retry-After it was promised (not an opaque network error)."""
    import api.admission

    token = deployment.token.address
    with TestClient(create_app(with_settings(settings, cors_allowed_origins=(SHOP,)))) as client:
        with monkeypatch.context() as busy:
            busy.setattr(api.admission, "should_shed", lambda *a, **k: True)
            shed = client.post(
                f"/api/mint/{token}", json={"quantity": 1}, headers={"Origin": SHOP, "X-PAYMENT": "e30="}
            )
        assert shed.status_code == 503 and shed.json()["reason"] == "server_busy"
        assert shed.headers["access-control-allow-origin"] == SHOP
        assert "retry-after" in shed.headers["access-control-expose-headers"].lower()

        async def broken(address: str) -> None:
            raise RuntimeError("a fault nobody foresaw")

        monkeypatch.setattr(client.app.state.catalog, "get", broken)  # type: ignore[attr-defined]
        fault = client.post(f"/api/mint/{token}", json={"quantity": 1}, headers={"Origin": SHOP})
        assert fault.status_code == 503 and fault.json()["reason"] == "temporarily_unavailable"
        assert fault.headers["access-control-allow-origin"] == SHOP


def test_the_402_declares_the_bazaar_extension(client: TestClient, deployment: Deployment) -> None:
    required = client.post(f"/api/mint/{deployment.token.address}", json={"quantity": 3}).headers[
        "payment-required"
    ]
    bazaar: dict[str, Any] = json.loads(base64.b64decode(required))["extensions"]["bazaar"]
    Draft202012Validator.check_schema(bazaar["schema"])  # a valid draft 2020-12 schema ...
    Draft202012Validator(bazaar["schema"]).validate(bazaar["info"])  # ... that validates its info (spec)
    assert bazaar["info"]["input"] == {
        "type": "http",
        "method": "POST",
        "bodyType": "json",
        "body": {"quantity": 1},
    }
    body_schema = bazaar["schema"]["properties"]["input"]["properties"]["body"]
    Draft202012Validator(body_schema).validate({"quantity": 3})
    with pytest.raises(ValidationError):
        Draft202012Validator(body_schema).validate({"quantity": 0})
    assert set(bazaar["info"]["output"]["example"]) == {"paymentQueueId", "quantity", "status", "note"}


def test_well_known_x402_lists_the_tokens_on_sale(client: TestClient, deployment: Deployment) -> None:
    listed = client.get("/.well-known/x402")
    assert listed.status_code == 200
    document = listed.json()
    Draft202012Validator(DISCOVERY_LIST).validate(document)
    items = {item["resource"]: item for item in document["items"]}
    resource = f"http://127.0.0.1:8402/api/mint/{deployment.token.address}"
    item = items[resource]
    (accept,) = item["accepts"]
    assert accept["payTo"].lower() == deployment.token.address
    assert accept["amount"] == str(deployment.token.price)
    # What it lists is what a purchase is offered: the same requirements as the 402 of one unit.
    required = client.post(f"/api/mint/{deployment.token.address}", json={"quantity": 1}).headers[
        "payment-required"
    ]
    assert json.loads(base64.b64decode(required))["accepts"] == item["accepts"]
    assert document["pagination"]["total"] == len(document["items"])
