"""Binding a recipient other than the payer to the signed authorization.

The request body is not signed, so a plain "recipient" field would let whoever presents a payment
header first send the tokens anywhere. A client that wants the tokens to go elsewhere makes the
EIP-3009 nonce itself commit to the recipient: nonce = keccak256(recipient as 20 bytes ‖ salt),
with a random 32-byte salt it sends along as "recipientSalt".
"""

from __future__ import annotations

from eth_hash.auto import keccak


def bound_nonce(recipient: str, salt: bytes) -> bytes:
    """The authorization nonce that binds `recipient` (0x address) with `salt` (32 bytes)."""
    if len(salt) != 32:
        raise ValueError("the recipient salt must be 32 bytes")
    raw = bytes.fromhex(recipient.lower().removeprefix("0x"))
    if len(raw) != 20:
        raise ValueError("the recipient must be a 20-byte address")
    return keccak(raw + salt)
