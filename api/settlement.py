"""A payment's settlement in the protocol's own terms: the header GET /api/payment/{id} carries —
v2 ``PAYMENT-RESPONSE``, v1 ``X-PAYMENT-RESPONSE`` (the payment's own version), base64 of the JSON
``SettleResponse`` ``{success, errorReason?, payer, transaction, network}``.

Settlement here is asynchronous: the 202 carries no settlement header (a ``success: false`` there
would read as a failed payment). Once the payment's transaction is known the status answer carries
one: while it is broadcast but not final, the pending form the SDKs use (``success: false``,
``errorReason: "settlement_pending"``, the transaction); then ``success: true`` with the transaction
that paid, or ``success: false`` with why.
"""

from __future__ import annotations

import re
from typing import Any

from shared.x402 import PaymentRejected, encode_payment_response, wire

PENDING = "settlement_pending"
V1_HEADER, V2_HEADER = "X-PAYMENT-RESPONSE", "PAYMENT-RESPONSE"
_CODE = re.compile(r"[a-z][a-z0-9_]*")
_WORDS = (  # revert reasons in x402's reason codes (the reference facilitator's)
    ("insufficientbalance", "insufficient_funds"),
    ("invalid signature", "invalid_exact_evm_payload_signature"),
    ("authorization is expired", "invalid_exact_evm_payload_authorization_valid_before"),
    ("the money did not move", "transaction_failed"),
)


def error_reason(error: str | None) -> str:
    """A failed payment's stored error as one reason code: its own code when it starts with one
    (``authorization_used_elsewhere: …``), else the x402 code of a known revert, else a generic one."""
    text = error or ""
    head = text.split(":", 1)[0].strip()
    if _CODE.fullmatch(head) and ":" in text:
        return head
    lowered = text.lower()
    return next((code for words, code in _WORDS if words in lowered), "settlement_failed")


def payment_version(header: str) -> int:
    """The x402 version of a stored payment header (1 when it cannot be read), decoded as the ingress
    decoded it (standard or URL-safe base64)."""
    try:
        document = wire.parse_json(header, "payment header")
    except PaymentRejected:
        return 1
    return 2 if document.get("x402Version") == 2 else 1


def settlement_header(
    row: dict[str, Any], *, v1_network: str | None, v2_network: str
) -> tuple[str, str] | None:
    """(header name, value) for a payment_queue row, or None while no transaction is known."""
    version = payment_version(row["payment_header"] or "")
    network = v2_network if version == 2 else (v1_network or v2_network)
    name = V2_HEADER if version == 2 else V1_HEADER
    status, tx_hash = row["status"], row["tx_hash"]

    def header(success: bool, transaction: str, reason: str | None = None) -> tuple[str, str]:
        value = encode_payment_response(
            success=success, transaction=transaction, network=network, payer=row["payer"], error_reason=reason
        )
        return name, value

    if status == "completed":
        return header(True, tx_hash)
    if status == "failed":
        return header(False, tx_hash or "", error_reason(row["error"]))
    if status in ("refund_owed", "refunded"):
        return header(False, tx_hash, status)  # the money arrived, but bought nothing: owed back
    if tx_hash:  # sent (or under review after it was): broadcast, not final
        return header(False, tx_hash, PENDING)
    return None
