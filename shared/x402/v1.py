"""x402 version 1: the ``X-PAYMENT`` header and the ``accepts`` entries of a 402 JSON body.

``X-PAYMENT`` carries base64 of the JSON ``PaymentPayload``::

    {"x402Version": 1, "scheme": "exact", "network": "base-sepolia",
     "payload": {"signature": "0x…65 bytes…",
                 "authorization": {"from": "0x…", "to": "0x…", "value": "10000",
                                   "validAfter": "1740672089", "validBefore": "1740672154",
                                   "nonce": "0x…32 bytes…"}}}
"""

from __future__ import annotations

from typing import Final

from shared.x402 import wire
from shared.x402.errors import INVALID_X402_VERSION, UNSUPPORTED_SCHEME, PaymentRejected
from shared.x402.payment import SCHEME_EXACT, ExactEvmPayment

__all__ = ["X402_VERSION", "decode_payment_header", "encode_payment_header", "payment_requirements"]

X402_VERSION: Final = 1
_HEADER: Final = "X-PAYMENT"


def decode_payment_header(header: str) -> ExactEvmPayment:
    """Parse an ``X-PAYMENT`` header; any defect raises PaymentRejected (and nothing else does).

    Checks structure only (types, hex, ranges) plus the version and scheme, which decide the
    payload's shape; the signature and the requirements are checked by the verifier.
    """
    document = wire.parse_json(header, _HEADER)
    version = wire.field(document, "x402Version", "")
    if type(version) is not int:
        wire.malformed(f"x402Version must be an integer, got {type(version).__name__}")
    if version != X402_VERSION:
        raise PaymentRejected(
            INVALID_X402_VERSION,
            f"x402Version {wire.show(version)} is not supported in X-PAYMENT, which carries x402"
            " version 1 (version 2 payments go in the PAYMENT-SIGNATURE header)",
        )
    scheme = wire.string(document, "scheme", "")
    if scheme != SCHEME_EXACT:
        raise PaymentRejected(
            UNSUPPORTED_SCHEME, f"scheme {wire.show(scheme)} is not supported; only 'exact' is"
        )
    network = wire.string(document, "network", "")
    if not network:
        wire.malformed("network must not be empty")
    signature, authorization = wire.exact_payload(document)
    return ExactEvmPayment(
        x402_version=version,
        scheme=scheme,
        network=network,
        signature=signature,
        authorization=authorization,
    )


def encode_payment_header(payment: ExactEvmPayment) -> str:
    """The ``X-PAYMENT`` header value for ``payment`` (padded standard base64 of compact JSON)."""
    return wire.encode_json(
        {
            "x402Version": payment.x402_version,
            "scheme": payment.scheme,
            "network": payment.network,
            "payload": wire.exact_payload_json(payment.signature, payment.authorization),
        }
    )


def payment_requirements(
    *,
    network: str,
    max_amount: int,
    resource: str,
    description: str,
    pay_to: str,
    asset: str,
    max_timeout_seconds: int,
    asset_name: str,
    asset_version: str,
    output_schema: dict[str, object] | None = None,
) -> dict[str, object]:
    """One v1 ``accepts`` entry; ``extra`` carries the token's EIP-712 domain name and version, and
    ``outputSchema`` how the resource is called and what it answers (an object; v1 clients refuse null).

    Addresses are emitted EIP-55 checksummed, the amount as a decimal string (both as in the spec).
    """
    if type(max_amount) is not int or not 0 < max_amount < wire.UINT256_LIMIT:
        raise ValueError(f"max_amount must be a positive uint256, got {max_amount!r}")
    if type(max_timeout_seconds) is not int or max_timeout_seconds <= 0:
        raise ValueError(f"max_timeout_seconds must be a positive int, got {max_timeout_seconds!r}")
    return {
        "scheme": SCHEME_EXACT,
        "network": network,
        "maxAmountRequired": str(max_amount),
        "resource": resource,
        "description": description,
        "mimeType": "application/json",
        "payTo": wire.checksummed("pay_to", pay_to),
        "maxTimeoutSeconds": max_timeout_seconds,
        "asset": wire.checksummed("asset", asset),
        "outputSchema": output_schema or {},
        "extra": {"name": asset_name, "version": asset_version},
    }
