"""x402 v2 extensions we speak: `payment-identifier` (idempotent retries) and `bazaar` (discovery).

Each is declared in PAYMENT-REQUIRED's ``extensions`` as ``{"info": …, "schema": <JSON Schema draft
2020-12 that validates info>}`` (spec §5.1.2); a client echoes what it received and may add to
``info`` (the payment identifier goes in ``extensions["payment-identifier"].info.id``).
"""

from __future__ import annotations

import re
from typing import Any, Final

from shared.x402.errors import PaymentRejected

PAYMENT_IDENTIFIER: Final = "payment-identifier"
BAZAAR: Final = "bazaar"
DRAFT_2020_12: Final = "https://json-schema.org/draft/2020-12/schema"
_ID: Final = re.compile(r"[A-Za-z0-9_-]{16,128}")

#: Reason codes (the spec defines the statuses, not their codes).
IDENTIFIER_REQUIRED: Final = "payment_identifier_required"
IDENTIFIER_INVALID: Final = "invalid_payment_identifier"
IDENTIFIER_REUSED: Final = "payment_identifier_reused"
IDENTIFIER_IN_FLIGHT: Final = "payment_identifier_in_flight"


def payment_identifier_declaration(*, required: bool) -> dict[str, Any]:
    """The `payment-identifier` extension as PAYMENT-REQUIRED declares it."""
    return {
        "info": {"required": required},
        "schema": {
            "$schema": DRAFT_2020_12,
            "type": "object",
            "properties": {
                "required": {"type": "boolean"},
                "id": {"type": "string", "minLength": 16, "maxLength": 128, "pattern": "^[a-zA-Z0-9_-]+$"},
            },
            "required": ["required"],
        },
    }


def payment_identifier(extensions: dict[str, Any] | None, *, required: bool) -> str | None:
    """The client's payment identifier, if it sent one; PaymentRejected (400) when it is malformed,
    or missing where the server requires one."""
    entry = (extensions or {}).get(PAYMENT_IDENTIFIER)
    info = entry.get("info") if isinstance(entry, dict) else None
    value = info.get("id") if isinstance(info, dict) else None
    if value is None:
        if required:
            raise PaymentRejected(
                IDENTIFIER_REQUIRED,
                "this server requires a payment identifier: extensions['payment-identifier'].info.id",
            )
        return None
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise PaymentRejected(
            IDENTIFIER_INVALID, "a payment identifier is 16 to 128 characters of letters, digits, '-' and '_'"
        )
    return value


def bazaar_declaration(*, max_quantity: int, example_output: dict[str, Any]) -> dict[str, Any]:
    """The `bazaar` discovery extension: how to call the resource (a JSON POST of the purchase body)
    and what it answers (the 202 body), with the schema that validates that description."""
    body_schema = {
        "type": "object",
        "properties": {
            "quantity": {"type": "integer", "minimum": 1, "maximum": max_quantity},
            "recipient": {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"},
            "recipientSalt": {"type": "string", "pattern": "^0x[0-9a-fA-F]{64}$"},
        },
        "additionalProperties": False,
    }
    return {
        "info": {
            "input": {"type": "http", "method": "POST", "bodyType": "json", "body": {"quantity": 1}},
            "output": {"type": "json", "example": example_output},
        },
        "schema": {
            "$schema": DRAFT_2020_12,
            "type": "object",
            "properties": {
                "input": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string", "const": "http"},
                        "method": {"type": "string", "enum": ["POST"]},
                        "bodyType": {"type": "string", "enum": ["json"]},
                        "body": body_schema,
                    },
                    "required": ["type", "method", "bodyType", "body"],
                    "additionalProperties": False,
                },
                "output": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string", "const": "json"},
                        "example": {
                            "type": "object",
                            "required": ["paymentQueueId", "quantity", "status", "note"],
                        },
                    },
                    "required": ["type"],
                },
            },
            "required": ["input"],
        },
    }
