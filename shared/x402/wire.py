"""Strict parsing shared by the x402 headers: base64, JSON, typed fields, the EIP-3009 payload.

Every defect raises PaymentRejected(``invalid_payload``) with a message naming the field; nothing
else escapes (no KeyError, no binascii.Error, no RecursionError).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Final, NoReturn

from eth_utils.address import to_checksum_address

from shared.x402.eip3009 import Authorization
from shared.x402.errors import INVALID_PAYLOAD, PaymentRejected

__all__ = [
    "MAX_HEADER_LENGTH",
    "UINT256_LIMIT",
    "address",
    "checksummed",
    "encode_json",
    "exact_payload",
    "exact_payload_json",
    "field",
    "malformed",
    "obj",
    "parse_json",
    "show",
    "string",
    "uint256",
]

#: Longest payment header accepted (a real one is about 600 characters for v1, 1,100 for v2).
MAX_HEADER_LENGTH: Final = 8192
UINT256_LIMIT: Final = 1 << 256

_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")
_NONCE: Final = re.compile(r"0x[0-9a-fA-F]{64}")
_HEX_BYTES: Final = re.compile(r"0x(?:[0-9a-fA-F]{2})+")
_DECIMAL: Final = re.compile(r"[0-9]+")
_URL_SAFE_TO_STANDARD: Final = str.maketrans("-_", "+/")


def show(value: object) -> str:
    """A short rendering of a client-supplied value for a message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def malformed(message: str) -> NoReturn:
    """Raise PaymentRejected(``invalid_payload``, message)."""
    raise PaymentRejected(INVALID_PAYLOAD, message)


class _DuplicateKey(ValueError):
    pass


class _NonStandardConstant(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return result


def _reject_constant(name: str) -> NoReturn:
    raise _NonStandardConstant(name)


def _b64decode(header: str, name: str) -> bytes:
    """Standard base64; also tolerates the URL-safe alphabet and missing padding (as Node does)."""
    if not header.isascii():
        malformed(f"{name} header is not base64: it contains non-ASCII characters")
    text = header.strip()
    if not text:
        malformed(f"{name} header is empty")
    if "-" in text or "_" in text:
        text = text.translate(_URL_SAFE_TO_STANDARD)
    body = text.rstrip("=")
    padding = len(text) - len(body)
    if len(body) % 4 == 1 or (padding and (padding > 2 or len(text) % 4)):
        malformed(f"{name} header is not base64: its length or padding is wrong")
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except binascii.Error:
        malformed(f"{name} header is not base64: invalid character or misplaced '='")


def parse_json(header: object, name: str, limit: int = MAX_HEADER_LENGTH) -> dict[str, Any]:
    """The JSON object in base64 ``header``: no duplicate keys, no NaN/Infinity, at most ``limit`` chars."""
    if not isinstance(header, str):
        malformed(f"{name} header must be a string")
    if len(header) > limit:
        malformed(f"{name} header is {len(header)} characters long; the limit is {limit}")
    raw = _b64decode(header, name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        malformed(f"{name} header does not decode to UTF-8 text")
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
    except _DuplicateKey as exc:
        malformed(f"{name} JSON repeats the key {show(str(exc))}")
    except _NonStandardConstant as exc:
        malformed(f"{name} JSON contains the non-standard constant {exc}")
    except RecursionError:
        malformed(f"{name} JSON is nested too deeply")
    except ValueError as exc:
        malformed(f"{name} header is not base64 of JSON: {exc}")
    if not isinstance(document, dict):
        malformed(f"{name} JSON must be an object, got {type(document).__name__}")
    return document


def encode_json(document: object) -> str:
    """Padded standard base64 of compact, ASCII-only JSON (the header encoding of x402)."""
    return base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode("ascii")


def field(obj: dict[str, Any], key: str, path: str) -> Any:
    """``obj[key]``; ``path`` (such as ``"payload."``) prefixes the key in messages."""
    try:
        return obj[key]
    except KeyError:
        malformed(f"missing field {path}{key}")


def obj(parent: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    """A JSON object field."""
    value = field(parent, key, path)
    if not isinstance(value, dict):
        malformed(f"{path}{key} must be a JSON object, got {type(value).__name__}")
    return value


def string(parent: dict[str, Any], key: str, path: str) -> str:
    """A string field."""
    value = field(parent, key, path)
    if not isinstance(value, str):
        malformed(f"{path}{key} must be a string, got {type(value).__name__}")
    return value


def address(parent: dict[str, Any], key: str, path: str) -> str:
    """A 0x address field (any case), returned lowercase."""
    value = string(parent, key, path)
    if not _ADDRESS.fullmatch(value):
        malformed(f"{path}{key} is not a 0x-prefixed 20-byte hex address: {show(value)}")
    return value.lower()


def uint256(parent: dict[str, Any], key: str, path: str) -> int:
    """A uint256 sent as a string of decimal digits."""
    value = field(parent, key, path)
    if not isinstance(value, str):
        malformed(f"{path}{key} must be a decimal string, got {type(value).__name__}")
    if not _DECIMAL.fullmatch(value):
        malformed(f"{path}{key} must be a string of decimal digits, got {show(value)}")
    if len(value) > 78 or int(value) >= UINT256_LIMIT:
        malformed(f"{path}{key} does not fit in a uint256")
    return int(value)


def exact_payload(document: dict[str, Any]) -> tuple[bytes, Authorization]:
    """The signature and authorization of ``document["payload"]`` (the EIP-3009 ``exact`` payload)."""
    payload = obj(document, "payload", "")
    if "authorization" not in payload and "permit2Authorization" in payload:
        malformed("payload is a Permit2 authorization; only EIP-3009 transferWithAuthorization is accepted")
    signature_hex = string(payload, "signature", "payload.")
    if not _HEX_BYTES.fullmatch(signature_hex):
        malformed(f"payload.signature is not 0x-prefixed hex bytes: {show(signature_hex)}")
    path = "payload.authorization."
    fields = obj(payload, "authorization", "payload.")
    nonce_hex = string(fields, "nonce", path)
    if not _NONCE.fullmatch(nonce_hex):
        malformed(f"{path}nonce is not 0x-prefixed 32-byte hex: {show(nonce_hex)}")
    authorization = Authorization(
        from_address=address(fields, "from", path),
        to=address(fields, "to", path),
        value=uint256(fields, "value", path),
        valid_after=uint256(fields, "validAfter", path),
        valid_before=uint256(fields, "validBefore", path),
        nonce=bytes.fromhex(nonce_hex[2:]),
    )
    return bytes.fromhex(signature_hex[2:]), authorization


def exact_payload_json(signature: bytes, auth: Authorization) -> dict[str, object]:
    """The JSON ``payload`` object of an EIP-3009 ``exact`` payment."""
    return {
        "signature": "0x" + signature.hex(),
        "authorization": {
            "from": auth.from_address,
            "to": auth.to,
            "value": str(auth.value),
            "validAfter": str(auth.valid_after),
            "validBefore": str(auth.valid_before),
            "nonce": "0x" + auth.nonce.hex(),
        },
    }


def checksummed(name: str, value: str) -> str:
    """``value`` EIP-55 checksummed; ValueError (naming ``name``) if it is not a 0x address."""
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise ValueError(f"{name} is not a 0x address: {value!r}")
    return str(to_checksum_address(value))
