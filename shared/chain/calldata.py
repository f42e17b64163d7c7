"""Calldata of the few functions our transactions call, encoded with eth_abi and selectors computed
once — web3's contract.encode_abi looks the function up in the ABI, validates and normalises every
argument on each call, which was the largest CPU cost of payment-sender (bench e2e, py-spy).
tests/unit/test_calldata.py checks each against web3's encoding of the same arguments."""

from __future__ import annotations

from collections.abc import Sequence

from eth_abi.abi import encode
from eth_hash.auto import keccak


def _selector(signature: str) -> bytes:
    return keccak(signature.encode())[:4]


_TRANSFER_VRS = (
    "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)"
)
_TRANSFER_BYTES = "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)"
_BATCH_MINT = "batchMint(address[],bytes32[])"
_REFUND = "refund(bytes32,address,uint256)"
SELECTORS = {name: _selector(name) for name in (_TRANSFER_VRS, _TRANSFER_BYTES, _BATCH_MINT, _REFUND)}


def _types(signature: str) -> list[str]:
    return signature[signature.index("(") + 1 : -1].split(",")


def _call(signature: str, args: Sequence[object]) -> bytes:
    return SELECTORS[signature] + encode(_types(signature), list(args))


def transfer_with_authorization(
    payer: str,
    pay_to: str,
    value: int,
    valid_after: int,
    valid_before: int,
    nonce: bytes,
    signature: bytes,
    *,
    split: bool,
) -> bytes:
    """EIP-3009's call: with `split`, the (v, r, s) form of a 65-byte EOA signature; else the
    `bytes signature` form (FiatToken v2.2) that a contract wallet's signature needs."""
    head = [payer, pay_to, value, valid_after, valid_before, nonce]
    if split:
        return _call(_TRANSFER_VRS, [*head, signature[64], signature[:32], signature[32:64]])
    return _call(_TRANSFER_BYTES, [*head, signature])


def batch_mint(recipients: Sequence[str], mint_ids: Sequence[bytes]) -> bytes:
    return _call(_BATCH_MINT, [list(recipients), list(mint_ids)])


def refund(payment_key: bytes, recipient: str, amount: int) -> bytes:
    return _call(_REFUND, [payment_key, recipient, amount])
