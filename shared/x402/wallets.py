"""Who signed an authorization: an EOA, or a smart-contract wallet (ERC-1271), perhaps one not
deployed yet (ERC-6492). Pure: what the signature's bytes say, no chain call.

- 65 bytes: an EOA's ``r ‖ s ‖ v``, checked at the ingress (eip3009.recover_signer).
- ERC-6492: ``abi.encode(factory, factoryCalldata, innerSignature) ‖ 0x6492…6492``; a wallet that
  does not exist yet is deployed by ``factory.call(factoryCalldata)`` before its signature is checked
  (the transfer that pays carries the deployment, shared/settlement/payment_calls.py). A zero factory
  marks the signature of a deployed wallet (a wallet whose signatures are 65 bytes says so this way).
- Longer than 65 bytes: a deployed wallet's ERC-1271 signature (a wallet whose signatures are 65
  bytes wraps them in ERC-6492 with a zero factory; anything shorter is nobody's).

A contract wallet's signature can only be checked on chain (its ``isValidSignature``): the ingress
accepts it by its shape, and payment-sender's pre-flight ``eth_call`` decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError

ERC6492_MAGIC: Final = bytes.fromhex("6492" * 16)
EOA_SIGNATURE_LENGTH: Final = 65
MAX_SIGNATURE_BYTES: Final = 2048  # a wallet's signature plus its deployment call, at most
_ZERO: Final = "0x" + "00" * 20


class Signer(StrEnum):
    EOA = "eoa"
    CONTRACT = "contract"  # a deployed wallet: ERC-1271
    COUNTERFACTUAL = "counterfactual"  # a wallet deployed by its factory call first: ERC-6492


class WalletSignatureError(ValueError):
    """A signature shaped like no signer we know."""


@dataclass(frozen=True, slots=True)
class WalletSignature:
    signer: Signer
    signature: bytes  # what the token checks: the 65 bytes, or the wallet's own (unwrapped) signature
    factory: str = _ZERO  # lowercase 0x address (COUNTERFACTUAL only)
    factory_calldata: bytes = b""


def parse(signature: bytes) -> WalletSignature:
    """Classify `signature` by its shape; raise WalletSignatureError if it is malformed."""
    if not signature:
        raise WalletSignatureError("the signature is empty")
    if len(signature) > MAX_SIGNATURE_BYTES:
        raise WalletSignatureError(f"the signature is {len(signature)} bytes; at most {MAX_SIGNATURE_BYTES}")
    if signature[-32:] != ERC6492_MAGIC:
        if len(signature) < EOA_SIGNATURE_LENGTH:
            raise WalletSignatureError(
                f"the signature is {len(signature)} bytes: an EOA's is 65 (r ‖ s ‖ v), a contract wallet's"
                " longer, or ERC-6492-wrapped"
            )
        signer = Signer.EOA if len(signature) == EOA_SIGNATURE_LENGTH else Signer.CONTRACT
        return WalletSignature(signer, signature)
    try:
        factory, calldata, inner = decode(["address", "bytes", "bytes"], signature[:-32])
    except (DecodingError, OverflowError, ValueError) as exc:
        raise WalletSignatureError(f"a malformed ERC-6492 signature: {exc}") from None
    factory = str(factory).lower()
    if not inner:
        raise WalletSignatureError("an ERC-6492 signature wraps no signature")
    if factory == _ZERO or not calldata:  # a deployed wallet's signature, marked as a wallet's
        return WalletSignature(Signer.CONTRACT, bytes(inner))
    return WalletSignature(Signer.COUNTERFACTUAL, bytes(inner), factory, bytes(calldata))
