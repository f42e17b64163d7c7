"""Deterministic ids for the mints a payment buys (the ``mintId`` of ``MintToken.mint``)."""

from __future__ import annotations

import re
from typing import Final

from eth_hash.auto import keccak

__all__ = ["MAX_MINT_INDEX", "mint_id", "purchase_key"]

#: Largest index that fits the id's last byte (so at most 256 mints per payment).
MAX_MINT_INDEX: Final = 0xFF

_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")


def _address_bytes(name: str, address: str) -> bytes:
    if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
        raise ValueError(f"{name} is not a 0x address: {address!r}")
    return bytes.fromhex(address[2:])


def purchase_key(token: str, asset: str, payer: str, nonce: bytes) -> bytes:
    """``keccak256(token ‖ asset ‖ payer ‖ nonce)``: one purchase. ``(asset, payer, nonce)``
    identifies the payment (EIP-3009 nonces are unique per authorizer and token), ``token`` the
    contract minted from; addresses may be in any case."""
    if not isinstance(nonce, bytes) or len(nonce) != 32:
        raise ValueError("nonce must be exactly 32 bytes")
    return keccak(
        _address_bytes("token", token)
        + _address_bytes("asset", asset)
        + _address_bytes("payer", payer)
        + nonce
    )


def mint_id(token: str, asset: str, payer: str, nonce: bytes, index: int) -> bytes:
    """The bytes32 id of the ``index``-th mint paid for by one EIP-3009 authorization: the first 31
    bytes of the purchase key, then ``index`` as one byte.

    MintToken keeps minted ids as a bitmap keyed by the first 31 bytes, so the units of one purchase
    share a storage word: the first costs a new slot, the rest a bit each. Distinct purchases or
    indexes give distinct ids (the key is a hash; the index has its own byte).
    """
    if type(index) is not int or not 0 <= index <= MAX_MINT_INDEX:
        raise ValueError(f"index must be an int in [0, 256), got {index!r}")
    return purchase_key(token, asset, payer, nonce)[:31] + bytes([index])
