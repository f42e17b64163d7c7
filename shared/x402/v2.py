"""x402 version 2: the ``PAYMENT-SIGNATURE`` request header.

It carries base64 of the JSON ``PaymentPayload``::

    {"x402Version": 2,
     "payload": {"authorization": {...as in v1...}, "signature": "0x…"},
     "accepted": {"scheme": "exact", "network": "eip155:84532", "asset": "0x…", "amount": "10000",
                  "payTo": "0x…", "maxTimeoutSeconds": 60, "extra": {"name": "USDC", "version": "2"}},
     "resource": {"url": "…", "description": "…", "mimeType": "application/json"}}

``accepted`` echoes the ``accepts`` entry the client chose; scheme and network come from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from shared.x402 import wire
from shared.x402.errors import INVALID_X402_VERSION, UNSUPPORTED_SCHEME, PaymentRejected
from shared.x402.payment import SCHEME_EXACT, ExactEvmPayment

__all__ = [
    "X402_VERSION_2",
    "AcceptedTerms",
    "accepted_terms",
    "decode_payment_signature_header",
    "encode_payment_signature_header",
]

X402_VERSION_2: Final = 2
_HEADER: Final = "PAYMENT-SIGNATURE"
_ACCEPTED: Final = "accepted."


@dataclass(frozen=True, slots=True)
class AcceptedTerms:
    """The typed fields of a v2 ``accepted`` object (addresses lowercase)."""

    scheme: str
    network: str
    asset: str
    amount: int
    pay_to: str
    max_timeout_seconds: int


def accepted_terms(accepted: object) -> AcceptedTerms:
    """Parse a v2 ``accepted`` object; a missing or mistyped field raises PaymentRejected(invalid_payload).

    ``extra`` is optional but must be an object when present; unknown fields are ignored.
    """
    if not isinstance(accepted, dict):
        wire.malformed(f"accepted must be a JSON object, got {type(accepted).__name__}")
    network = wire.string(accepted, "network", _ACCEPTED)
    if not network:
        wire.malformed("accepted.network must not be empty")
    timeout = wire.field(accepted, "maxTimeoutSeconds", _ACCEPTED)
    if type(timeout) is not int:
        wire.malformed(f"accepted.maxTimeoutSeconds must be an integer, got {type(timeout).__name__}")
    if "extra" in accepted and not isinstance(accepted["extra"], dict):
        wire.malformed(f"accepted.extra must be a JSON object, got {type(accepted['extra']).__name__}")
    return AcceptedTerms(
        scheme=wire.string(accepted, "scheme", _ACCEPTED),
        network=network,
        asset=wire.address(accepted, "asset", _ACCEPTED),
        amount=wire.uint256(accepted, "amount", _ACCEPTED),
        pay_to=wire.address(accepted, "payTo", _ACCEPTED),
        max_timeout_seconds=timeout,
    )


def _resource(document: dict[str, Any]) -> dict[str, Any] | None:
    resource = document.get("resource")
    if resource is None:
        return None
    if not isinstance(resource, dict):
        wire.malformed(f"resource must be a JSON object, got {type(resource).__name__}")
    wire.string(resource, "url", "resource.")
    return resource


def decode_payment_signature_header(header: str) -> ExactEvmPayment:
    """Parse a ``PAYMENT-SIGNATURE`` header; any defect raises PaymentRejected (and nothing else does).

    Checks structure only, plus the version and ``accepted.scheme``; whether ``accepted`` is what we
    offered, and the signature, are the verifier's business.
    """
    document = wire.parse_json(header, _HEADER)
    version = wire.field(document, "x402Version", "")
    if type(version) is not int:
        wire.malformed(f"x402Version must be an integer, got {type(version).__name__}")
    if version != X402_VERSION_2:
        raise PaymentRejected(
            INVALID_X402_VERSION,
            f"x402Version {wire.show(version)} is not supported in PAYMENT-SIGNATURE, which carries x402"
            " version 2 (version 1 payments go in the X-PAYMENT header)",
        )
    accepted = wire.obj(document, "accepted", "")
    scheme = wire.string(accepted, "scheme", _ACCEPTED)
    if scheme != SCHEME_EXACT:
        raise PaymentRejected(
            UNSUPPORTED_SCHEME, f"accepted.scheme {wire.show(scheme)} is not supported; only 'exact' is"
        )
    terms = accepted_terms(accepted)
    resource = _resource(document)
    extensions = document.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        wire.malformed(f"extensions must be a JSON object, got {type(extensions).__name__}")
    signature, authorization = wire.exact_payload(document)
    return ExactEvmPayment(
        x402_version=version,
        scheme=terms.scheme,
        network=terms.network,
        signature=signature,
        authorization=authorization,
        accepted=accepted,
        resource=resource,
        extensions=extensions,
    )


def encode_payment_signature_header(payment: ExactEvmPayment) -> str:
    """The ``PAYMENT-SIGNATURE`` header value for a v2 ``payment`` (base64 of compact JSON).

    ValueError unless ``payment`` is version 2 with an ``accepted`` whose scheme and network are the
    payment's own.
    """
    accepted = payment.accepted
    if payment.x402_version != X402_VERSION_2 or accepted is None:
        raise ValueError("PAYMENT-SIGNATURE carries x402 version 2 payments, which need 'accepted'")
    if accepted.get("scheme") != payment.scheme or accepted.get("network") != payment.network:
        raise ValueError("the payment's scheme and network must be those of its 'accepted' requirements")
    document: dict[str, object] = {
        "x402Version": X402_VERSION_2,
        "payload": wire.exact_payload_json(payment.signature, payment.authorization),
        "accepted": accepted,
    }
    if payment.resource is not None:
        document["resource"] = payment.resource
    if payment.extensions is not None:
        document["extensions"] = payment.extensions
    return wire.encode_json(document)
