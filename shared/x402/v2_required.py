"""x402 version 2 server messages: ``PAYMENT-REQUIRED`` (the 402) and ``PAYMENT-RESPONSE``.

A v2 client reads only the ``PAYMENT-REQUIRED`` header: base64 of the JSON ``PaymentRequired``
``{"x402Version": 2, "error", "resource": {"url", "description", "mimeType"}, "accepts": [...]}``.
``PAYMENT-RESPONSE`` is base64 of the JSON ``SettleResponse`` ``{"success", "payer"?, "transaction",
"network"}``. The decoders are for our own client and tests and raise ValueError.
"""

from __future__ import annotations

import re
from typing import Any, Final

from shared.x402 import wire
from shared.x402.errors import PaymentRejected
from shared.x402.payment import SCHEME_EXACT

__all__ = [
    "decode_payment_required",
    "decode_payment_response",
    "encode_payment_required",
    "encode_payment_response",
    "payment_required_v2",
    "requirement_v2",
]

#: A server's 402 may list many requirements and extensions; still refuse anything absurd.
_MAX_SERVER_HEADER_LENGTH: Final = 65536
_CAIP2_EVM: Final = re.compile(r"eip155:[1-9][0-9]*")


def requirement_v2(
    *,
    network: str,
    amount: int,
    asset: str,
    pay_to: str,
    max_timeout_seconds: int,
    asset_name: str,
    asset_version: str,
) -> dict[str, object]:
    """One v2 ``accepts`` entry for the ``exact`` scheme on the EVM chain ``network`` (CAIP-2).

    Addresses are EIP-55 checksummed and the amount a decimal string; ``extra`` carries the token's
    EIP-712 domain name and version. ValueError for a bad argument.
    """
    if not isinstance(network, str) or not _CAIP2_EVM.fullmatch(network):
        raise ValueError(f"network must be a CAIP-2 EVM id such as 'eip155:8453', got {network!r}")
    if type(amount) is not int or not 0 < amount < wire.UINT256_LIMIT:
        raise ValueError(f"amount must be a positive uint256, got {amount!r}")
    if type(max_timeout_seconds) is not int or max_timeout_seconds <= 0:
        raise ValueError(f"max_timeout_seconds must be a positive int, got {max_timeout_seconds!r}")
    return {
        "scheme": SCHEME_EXACT,
        "network": network,
        "asset": wire.checksummed("asset", asset),
        "amount": str(amount),
        "payTo": wire.checksummed("pay_to", pay_to),
        "maxTimeoutSeconds": max_timeout_seconds,
        "extra": {"name": asset_name, "version": asset_version},
    }


def payment_required_v2(
    *,
    accepts: list[dict[str, object]],
    resource_url: str,
    description: str,
    mime_type: str = "application/json",
    error: str,
    extensions: dict[str, object] | None = None,
) -> dict[str, object]:
    """The v2 ``PaymentRequired`` object (encode it with encode_payment_required)."""
    if not accepts:
        raise ValueError("a PaymentRequired needs at least one accepts entry")
    document: dict[str, object] = {
        "x402Version": 2,
        "error": error,
        "resource": {"url": resource_url, "description": description, "mimeType": mime_type},
        "accepts": list(accepts),
    }
    if extensions:
        document["extensions"] = extensions
    return document


def encode_payment_required(obj: dict[str, object]) -> str:
    """The ``PAYMENT-REQUIRED`` header value: base64 of compact JSON."""
    return wire.encode_json(obj)


def _parse(header: str, name: str) -> dict[str, Any]:
    try:
        return wire.parse_json(header, name, _MAX_SERVER_HEADER_LENGTH)
    except PaymentRejected as exc:
        raise ValueError(exc.message) from None


def decode_payment_required(header: str) -> dict[str, Any]:
    """The ``PaymentRequired`` object in a ``PAYMENT-REQUIRED`` header; ValueError if it is not one."""
    document = _parse(header, "PAYMENT-REQUIRED")
    if document.get("x402Version") != 2 or type(document.get("x402Version")) is not int:
        raise ValueError(
            f"PAYMENT-REQUIRED x402Version must be 2, got {wire.show(document.get('x402Version'))}"
        )
    accepts = document.get("accepts")
    if not isinstance(accepts, list) or not accepts or not all(isinstance(a, dict) for a in accepts):
        raise ValueError("PAYMENT-REQUIRED accepts must be a non-empty list of JSON objects")
    return document


def encode_payment_response(
    *, success: bool, transaction: str, network: str, payer: str | None, error_reason: str | None = None
) -> str:
    """The ``PAYMENT-RESPONSE`` (v2) or ``X-PAYMENT-RESPONSE`` (v1) header value: base64 of the JSON
    ``SettleResponse`` (no null payer; ``errorReason`` only when given)."""
    document: dict[str, object] = {"success": bool(success)}
    if error_reason is not None:
        document["errorReason"] = error_reason
    if payer is not None:
        document["payer"] = payer
    document["transaction"] = transaction
    document["network"] = network
    return wire.encode_json(document)


def decode_payment_response(header: str) -> dict[str, Any]:
    """The ``SettleResponse`` object in a ``PAYMENT-RESPONSE`` header; ValueError if it is not one."""
    document = _parse(header, "PAYMENT-RESPONSE")
    if not isinstance(document.get("success"), bool):
        raise ValueError("PAYMENT-RESPONSE success must be a boolean")
    for key in ("transaction", "network"):
        if not isinstance(document.get(key), str):
            raise ValueError(f"PAYMENT-RESPONSE {key} must be a string")
    return document
