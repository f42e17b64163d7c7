"""Deterministic ids for the mints a payment buys (the ``mintId`` of ``MintToken.mint``)."""

from __future__ import annotations

import re
from typing import Final

from eth_hash.auto import keccak

__all__ = ["MAX_MINT_INDEX", "mint_id"]

#: Largest index that fits the uint32 in the id.
MAX_MINT_INDEX: Final = 0xFFFFFFFF

_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")


def _address_bytes(name: str, address: str) -> bytes:
    if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
        raise ValueError(f"{name} is not a 0x address: {address!r}")
    return bytes.fromhex(address[2:])


def mint_id(token: str, asset: str, payer: str, nonce: bytes, index: int) -> bytes:
    """The bytes32 id of the ``index``-th mint paid for by one EIP-3009 authorization.

    ``keccak256(token ‖ asset ‖ payer ‖ nonce ‖ uint32be(index))`` — the same bytes as Solidity's
    ``keccak256(abi.encodePacked(address token, address asset, address payer, bytes32 nonce,
    uint32 index))``. ``(asset, payer, nonce)`` identifies the payment (EIP-3009 nonces are unique
    per authorizer and token), ``token`` the contract minted from; addresses may be in any case.
    """
    if not isinstance(nonce, bytes) or len(nonce) != 32:
        raise ValueError("nonce must be exactly 32 bytes")
    if type(index) is not int or not 0 <= index <= MAX_MINT_INDEX:
        raise ValueError(f"index must be an int in [0, 2**32), got {index!r}")
    return keccak(
        _address_bytes("token", token)
        + _address_bytes("asset", asset)
        + _address_bytes("payer", payer)
        + nonce
        + index.to_bytes(4, "big")
    )
