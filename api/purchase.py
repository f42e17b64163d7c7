"""The purchase request body: {"quantity": n, "recipient"?: address, "recipientSalt"?: 32-byte hex}."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from shared.x402.recipients import bound_nonce

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_SALT = re.compile(r"0x[0-9a-fA-F]{64}")


class BadRequest(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class PurchaseRequest:
    quantity: int
    recipient: str | None = None  # lowercase; None = the payer
    recipient_salt: bytes | None = None


def parse_purchase(body: bytes, max_quantity: int) -> PurchaseRequest:
    try:
        data = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("invalid_body", "the request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise BadRequest("invalid_body", 'the request body must be a JSON object such as {"quantity": 1}')
    quantity = _checked_quantity(data.get("quantity", 1), max_quantity)
    recipient, salt = data.get("recipient"), data.get("recipientSalt")
    if recipient is None:
        if salt is not None:
            raise BadRequest("invalid_recipient", "recipientSalt was sent without a recipient")
        return PurchaseRequest(quantity)
    if not isinstance(recipient, str) or not _ADDRESS.fullmatch(recipient):
        raise BadRequest("invalid_recipient", "recipient must be a 0x-prefixed 20-byte hex address")
    if int(recipient, 16) == 0:  # the token would skip every mint: paid, and nothing minted
        raise BadRequest("invalid_recipient", "recipient must not be the zero address")
    if salt is not None and (not isinstance(salt, str) or not _SALT.fullmatch(salt)):
        raise BadRequest("invalid_recipient", "recipientSalt must be 0x-prefixed 32-byte hex")
    return PurchaseRequest(quantity, recipient.lower(), bytes.fromhex(salt[2:]) if salt else None)


def _checked_quantity(quantity: object, max_quantity: int) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise BadRequest("invalid_quantity", "quantity must be a whole number")
    if not 1 <= quantity <= max_quantity:
        raise BadRequest("invalid_quantity", f"quantity must be between 1 and {max_quantity}")
    return quantity


def parse_quantity(text: str, max_quantity: int) -> int:
    """A quantity from a query string (GET /api/mint/{token}?quantity=n)."""
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        raise BadRequest("invalid_quantity", "quantity must be a whole number")
    return _checked_quantity(int(text), max_quantity)


def recipient_of(purchase: PurchaseRequest, payer: str, nonce: bytes) -> str:
    """Who receives the tokens: the payer, or a recipient the signed nonce commits to."""
    if purchase.recipient is None or purchase.recipient == payer.lower():
        return payer.lower()
    if purchase.recipient_salt is None or bound_nonce(purchase.recipient, purchase.recipient_salt) != nonce:
        raise BadRequest(
            "recipient_not_bound",
            "a recipient other than the payer must be bound to the signature: the authorization nonce "
            "must equal keccak256(recipient ‖ recipientSalt)",
        )
    return purchase.recipient
