"""EIP-3009 ``transferWithAuthorization``: EIP-712 digest, signing and signer recovery.

This is the ingress fast path, so nothing here goes through eth_account's typed-data machinery:
the struct is a fixed sequence of 32-byte words hashed with keccak, the domain separator is cached
per domain, and the signer is recovered with libsecp256k1 (coincurve). The tests cross-check every
hash against eth_account.

Signatures are held to what FiatToken (USDC) and OpenZeppelin ``ECDSA`` accept on chain: 65 bytes
``r ‖ s ‖ v`` with ``v`` in {27, 28}, ``0 < r < n`` and ``0 < s ≤ n/2`` (low-s). Anything else would
pass a lenient off-chain check and then revert at settlement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from coincurve import PrivateKey, PublicKey
from eth_hash.auto import keccak

__all__ = [
    "DOMAIN_TYPEHASH",
    "SECP256K1_N",
    "SIGNATURE_REASON",
    "TRANSFER_WITH_AUTHORIZATION_TYPEHASH",
    "Authorization",
    "Eip712Domain",
    "SignatureError",
    "domain_separator",
    "recover_signer",
    "sign_transfer",
    "transfer_digest",
]

DOMAIN_TYPEHASH: Final = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
TRANSFER_WITH_AUTHORIZATION_TYPEHASH: Final = keccak(
    b"TransferWithAuthorization(address from,address to,uint256 value,"
    b"uint256 validAfter,uint256 validBefore,bytes32 nonce)"
)

#: Order of the secp256k1 group.
SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N: Final = SECP256K1_N // 2
_UINT256_LIMIT: Final = 1 << 256
_ADDRESS_ZERO_PAD: Final = bytes(12)

#: x402 reason code for every signature defect (reference: ``ERR_INVALID_SIGNATURE``).
SIGNATURE_REASON: Final = "invalid_exact_evm_payload_signature"

_ANY_CASE_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")
_LOWER_ADDRESS: Final = re.compile(r"0x[0-9a-f]{40}")


class SignatureError(ValueError):
    """A signature that FiatToken would not accept; ``reason`` is the x402 reason code."""

    reason: str
    message: str

    def __init__(self, message: str, reason: str = SIGNATURE_REASON) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _check_uint256(name: str, value: int) -> None:
    if type(value) is not int or not 0 <= value < _UINT256_LIMIT:
        raise ValueError(f"{name} must be an int in [0, 2**256), got {value!r}")


@dataclass(frozen=True, slots=True)
class Eip712Domain:
    """The token's EIP-712 domain (for USDC: name ``USD Coin``/``USDC``, version ``2``)."""

    name: str
    version: str
    chain_id: int
    verifying_contract: str  # 0x address, any case

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not isinstance(self.version, str):
            raise ValueError("domain name and version must be strings")
        _check_uint256("chain_id", self.chain_id)
        if not isinstance(self.verifying_contract, str) or not _ANY_CASE_ADDRESS.fullmatch(
            self.verifying_contract
        ):
            raise ValueError(f"verifying_contract is not a 0x address: {self.verifying_contract!r}")


@dataclass(frozen=True, slots=True)
class Authorization:
    """The signed ``TransferWithAuthorization`` message; validated on construction."""

    from_address: str  # lowercase 0x + 40 hex
    to: str  # lowercase 0x + 40 hex
    value: int
    valid_after: int
    valid_before: int
    nonce: bytes  # exactly 32 bytes

    def __post_init__(self) -> None:
        for name, address in (("from_address", self.from_address), ("to", self.to)):
            if not isinstance(address, str) or not _LOWER_ADDRESS.fullmatch(address):
                raise ValueError(f"{name} must be a lowercase 0x address, got {address!r}")
        _check_uint256("value", self.value)
        _check_uint256("valid_after", self.valid_after)
        _check_uint256("valid_before", self.valid_before)
        if not isinstance(self.nonce, bytes) or len(self.nonce) != 32:
            raise ValueError("nonce must be exactly 32 bytes")


@lru_cache(maxsize=64)
def domain_separator(domain: Eip712Domain) -> bytes:
    """``hashStruct(EIP712Domain)``, cached per domain."""
    return keccak(
        DOMAIN_TYPEHASH
        + keccak(domain.name.encode())
        + keccak(domain.version.encode())
        + domain.chain_id.to_bytes(32, "big")
        + _ADDRESS_ZERO_PAD
        + bytes.fromhex(domain.verifying_contract[2:])
    )


def transfer_digest(domain: Eip712Domain, auth: Authorization) -> bytes:
    """The 32-byte EIP-712 digest ``keccak(0x1901 ‖ domainSeparator ‖ hashStruct(auth))``."""
    struct_hash = keccak(
        TRANSFER_WITH_AUTHORIZATION_TYPEHASH
        + _ADDRESS_ZERO_PAD
        + bytes.fromhex(auth.from_address[2:])
        + _ADDRESS_ZERO_PAD
        + bytes.fromhex(auth.to[2:])
        + auth.value.to_bytes(32, "big")
        + auth.valid_after.to_bytes(32, "big")
        + auth.valid_before.to_bytes(32, "big")
        + auth.nonce
    )
    return keccak(b"\x19\x01" + domain_separator(domain) + struct_hash)


def recover_signer(digest: bytes, signature: bytes) -> str:
    """Recover the lowercase address that made ``signature`` (``r ‖ s ‖ v``) over ``digest``.

    Raises SignatureError, naming the defect, for anything FiatToken would reject.
    """
    if len(digest) != 32:
        raise ValueError(f"digest must be 32 bytes, got {len(digest)}")
    if len(signature) != 65:
        raise SignatureError(
            f"signature is {len(signature)} bytes; expected 65 (r ‖ s ‖ v) from an EOA"
            " (smart-wallet EIP-1271/EIP-6492 signatures are not accepted)"
        )
    v = signature[64]
    if v != 27 and v != 28:
        raise SignatureError(f"signature v is {v}; expected 27 or 28")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    if r == 0:
        raise SignatureError("signature r is zero")
    if r >= SECP256K1_N:
        raise SignatureError("signature r is not below the secp256k1 curve order")
    if s == 0:
        raise SignatureError("signature s is zero")
    if s >= SECP256K1_N:
        raise SignatureError("signature s is not below the secp256k1 curve order")
    if s > _HALF_N:
        raise SignatureError("signature s is in the upper half of the curve order (malleable high-s form)")
    try:
        public_key = PublicKey.from_signature_and_message(
            signature[:64] + bytes((v - 27,)), digest, hasher=None
        )
    except ValueError:
        raise SignatureError("no public key can be recovered from this signature") from None
    return "0x" + keccak(public_key.format(compressed=False)[1:])[12:].hex()


def sign_transfer(domain: Eip712Domain, auth: Authorization, private_key: str | bytes) -> bytes:
    """Sign ``auth`` for ``domain``: 65 bytes ``r ‖ s ‖ v``, ``v`` in {27, 28}, low-s.

    For tests, the demo client and benchmarks; ``private_key`` is 32 bytes or hex (``0x`` optional).
    """
    if isinstance(private_key, str):
        private_key = bytes.fromhex(private_key.removeprefix("0x"))
    if len(private_key) != 32:
        raise ValueError("private key must be 32 bytes")
    # libsecp256k1 always produces low-s signatures.
    recoverable = PrivateKey(private_key).sign_recoverable(transfer_digest(domain, auth), hasher=None)
    return recoverable[:64] + bytes((recoverable[64] + 27,))
