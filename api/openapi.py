"""GET /openapi.json: every endpoint, status and body of the ingress (OpenAPI 3.1)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

ADDRESS = {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"}
HEX32 = {"type": "string", "pattern": "^0x[0-9a-fA-F]{64}$"}
UINT_STRING = {"type": "string", "pattern": "^[0-9]+$"}
RECIPIENT_RULE = "tokens go here instead of the payer; bound by: nonce = keccak256(recipient ‖ recipientSalt)"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    return answer


def _rejections(*statuses: int) -> dict[str, Any]:
    words = {
        400: "Bad request or failed payment check",
        404: "Unknown token or payment",
        405: "A payment sent with GET (payments are POSTed)",
        408: "The body did not arrive in time",
        409: "Nonce already used by another payment, payment identifier reused, or sold out",
        413: "Body too large",
        429: "Too many open payments for this payer",
        431: "Headers too large",
        503: "Busy, too much waiting for the chain, or temporarily unavailable (database): send it again",
    }
    out = {str(s): _json(_ref("Rejection"), words[s]) for s in statuses}
    if "429" in out:
        out["429"]["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
    return out


def spec(max_quantity: int) -> dict[str, Any]:
    token_param = {"name": "tokenAddress", "in": "path", "required": True, "schema": {"type": "string"}}
    limits = (408, 413, 431, 503)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "x402-mint",
            "version": "1.0.0",
            "description": "Buy freshly minted tokens with USDC over x402 (v1 and v2). "
            "Pay first, mint after.",
        },
        "paths": {
            "/api/mint/{tokenAddress}": {
                "post": {
                    "summary": "Buy mints: 402 with payment requirements, then 202 once a valid "
                    "payment is queued",
                    "parameters": [
                        token_param,
                        {
                            "name": "X-PAYMENT",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string"},
                            "description": "x402 v1 payment payload (base64 JSON)",
                        },
                        {
                            "name": "PAYMENT-SIGNATURE",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string"},
                            "description": "x402 v2 payment payload (base64 JSON)",
                        },
                    ],
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "quantity": {
                                            "type": "integer",
                                            "minimum": 1,
                                            "maximum": max_quantity,
                                            "default": 1,
                                        },
                                        "recipient": {
                                            **ADDRESS,
                                            "description": RECIPIENT_RULE,
                                        },
                                        "recipientSalt": HEX32,
                                    },
                                    "dependentRequired": {"recipientSalt": ["recipient"]},
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": _json(
                            _ref("Accepted"),
                            "Payment verified and queued",
                            {"Location": {"schema": {"type": "string"}}},
                        ),
                        "402": _json(
                            _ref("PaymentRequired"),
                            "Payment required (v1 JSON body; v2 in the PAYMENT-REQUIRED header)",
                            {"PAYMENT-REQUIRED": {"schema": {"type": "string"}}},
                        ),
                        **_rejections(400, 404, 409, 429, *limits),
                    },
                },
                "get": {
                    "summary": "What a purchase of `quantity` costs: the paywall page for a browser (Accept "
                    "text/html, a Mozilla User-Agent), else the 402 as for POST. A GET never pays.",
                    "parameters": [
                        token_param,
                        {
                            "name": "quantity",
                            "in": "query",
                            "required": False,
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": max_quantity,
                                "default": 1,
                            },
                        },
                    ],
                    "responses": {
                        "402": {
                            "description": "Payment required: the v1 JSON body (or the paywall page), and "
                            "the v2 PAYMENT-REQUIRED header",
                            "headers": {"PAYMENT-REQUIRED": {"schema": {"type": "string"}}},
                            "content": {
                                "application/json": {"schema": _ref("PaymentRequired")},
                                "text/html": {"schema": {"type": "string"}},
                            },
                        },
                        **_rejections(400, 404, 405, *limits),
                    },
                },
            },
            "/.well-known/x402": {
                "get": {
                    "summary": "x402 discovery: the tokens on sale here, as resources (spec v2 §8)",
                    "responses": {
                        "200": _json(
                            {"type": "object", "required": ["x402Version", "items"]}, "The resources"
                        )
                    },
                }
            },
            "/api/payment/{paymentId}": {
                "get": {
                    "summary": "Where a payment and its mints stand",
                    "parameters": [
                        {"name": "paymentId", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": _json(
                            _ref("PaymentStatus"),
                            "The payment; once its transaction is known, its settlement header (v2 "
                            "PAYMENT-RESPONSE or v1 X-PAYMENT-RESPONSE: base64 JSON SettleResponse)",
                            {
                                "PAYMENT-RESPONSE": {"schema": {"type": "string"}},
                                "X-PAYMENT-RESPONSE": {"schema": {"type": "string"}},
                            },
                        ),
                        **_rejections(400, 404, *limits),
                    },
                }
            },
            "/api/tokens/{tokenAddress}": {
                "get": {
                    "summary": "A token on sale: price, asset and supply",
                    "parameters": [token_param],
                    "responses": {"200": _json(_ref("TokenInfo"), "The token"), **_rejections(404, *limits)},
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness and database reachability",
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["status"],
                                "properties": {"status": {"const": "ok"}},
                            },
                            "Healthy",
                        ),
                        **_rejections(408, 413, 431),
                        "503": _json({"type": "object", "required": ["status"]}, "Database unreachable"),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {
                        "200": _json({"type": "object"}, "OpenAPI 3.1"),
                        **_rejections(408, 413, 431),
                    },
                }
            },
        },
        "components": {"schemas": _schemas()},
    }


def _schemas() -> dict[str, Any]:
    nullable_str = {"type": ["string", "null"]}
    return {
        "Rejection": {
            "type": "object",
            "required": ["error", "reason", "message"],
            "properties": {
                "error": {"type": "string"},
                "reason": {"type": "string", "pattern": "^[a-z0-9_]+$"},
                "message": {"type": "string", "minLength": 1},
                "paymentQueueId": nullable_str,
            },
        },
        "Accepted": {
            "type": "object",
            "required": ["paymentQueueId", "quantity", "status", "note"],
            "additionalProperties": False,
            "properties": {
                "paymentQueueId": {"type": "string", "format": "uuid"},
                "quantity": {"type": "integer"},
                "status": {"const": "payment_pending"},
                "note": {"type": "string"},
            },
        },
        "PaymentRequired": {
            "type": "object",
            "required": ["x402Version", "accepts"],
            "properties": {
                "x402Version": {"enum": [1, 2]},
                "error": {"type": "string"},
                "accepts": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["scheme", "network", "payTo", "asset", "maxTimeoutSeconds"],
                    },
                },
                "resource": {"type": "object"},
            },
        },
        "PaymentStatus": {
            "type": "object",
            "required": [
                "paymentQueueId",
                "status",
                "tx_hash",
                "payer",
                "recipient",
                "token",
                "quantity",
                "amount",
                "error",
                "refund",
                "result",
            ],
            "properties": {
                "paymentQueueId": {"type": "string"},
                "status": {
                    "enum": [
                        "pending",
                        "processing",
                        "sent",
                        "completed",
                        "failed",
                        "confirmation_failed",
                        "needs_review",
                        "refund_owed",
                        "refunded",
                    ]
                },
                "tx_hash": nullable_str,
                "payer": ADDRESS,
                "recipient": ADDRESS,
                "token": ADDRESS,
                "quantity": {"type": "integer"},
                "amount": UINT_STRING,
                "error": nullable_str,
                "refund": {
                    "description": "The refund of a payment whose money arrived but can never be minted",
                    "oneOf": [
                        {"type": "null"},
                        {
                            "type": "object",
                            "required": ["status", "amount", "tx_hash", "error"],
                            "properties": {
                                "status": {"enum": ["pending", "processing", "sent", "completed", "failed"]},
                                "amount": UINT_STRING,
                                "tx_hash": nullable_str,
                                "error": nullable_str,
                            },
                        },
                    ],
                },
                "result": {
                    "type": "object",
                    "required": ["queueIds", "quantity", "mints"],
                    "properties": {
                        "queueIds": {"type": "array", "items": {"type": "string"}},
                        "quantity": {"type": "integer"},
                        "mints": {
                            "type": "array",
                            "items": {"type": "object", "required": ["id", "mintId", "status", "tx_hash"]},
                        },
                    },
                },
            },
        },
        "TokenInfo": {
            "type": "object",
            "required": [
                "address",
                "symbol",
                "chainId",
                "asset",
                "price",
                "mintAmount",
                "maxMintCount",
                "minted",
                "remaining",
                "reserved",
                "available",
            ],
        },
    }


async def openapi(request: Request) -> Response:
    return JSONResponse(spec(request.app.state.settings.max_quantity))
