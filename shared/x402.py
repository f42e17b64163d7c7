"""x402 version 1 wire format for the ``exact`` scheme on EVM chains.

The ``X-PAYMENT`` request header carries base64 of the JSON ``PaymentPayload``::

    {"x402Version": 1, "scheme": "exact", "network": "base-sepolia",
     "payload": {"signature": "0x…65 bytes…",
                 "authorization": {"from": "0x…", "to": "0x…", "value": "10000",
                                   "validAfter": "1740672089", "validBefore": "1740672154",
                                   "nonce": "0x…32 bytes…"}}}

and a 402 response lists ``payment_requirements`` entries under ``accepts``. Reason codes are the
x402 v1 ones (specs/x402-specification-v1.md §9 and the v1 ``ErrorReasons`` of the reference SDK).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any, Final, NoReturn

from eth_utils.address import to_checksum_address

from shared.eip3009 import SIGNATURE_REASON, Authorization

__all__ = [
    "INVALID_NETWORK",
    "INVALID_PAYLOAD",
    "INVALID_RECIPIENT",
    "INVALID_SIGNATURE",
    "INVALID_VALID_AFTER",
    "INVALID_VALID_BEFORE",
    "INVALID_VALUE",
    "INVALID_X402_VERSION",
    "MAX_HEADER_LENGTH",
    "SCHEME_EXACT",
    "UNSUPPORTED_SCHEME",
    "V1_NETWORKS",
    "X402_VERSION",
    "ExactEvmPayment",
    "PaymentRejected",
    "decode_payment_header",
    "encode_payment_header",
    "network_name",
    "payment_requirements",
]

X402_VERSION: Final = 1
SCHEME_EXACT: Final = "exact"
#: Longest X-PAYMENT header accepted (a real one is about 600 characters).
MAX_HEADER_LENGTH: Final = 8192

# Reason codes (x402 v1 ``ErrorReasons``).
INVALID_X402_VERSION: Final = "invalid_x402_version"
UNSUPPORTED_SCHEME: Final = "unsupported_scheme"
INVALID_NETWORK: Final = "invalid_network"
INVALID_PAYLOAD: Final = "invalid_payload"
INVALID_SIGNATURE: Final = SIGNATURE_REASON  # "invalid_exact_evm_payload_signature"
INVALID_RECIPIENT: Final = "invalid_exact_evm_payload_recipient_mismatch"
INVALID_VALUE: Final = "invalid_exact_evm_payload_authorization_value"
INVALID_VALID_AFTER: Final = "invalid_exact_evm_payload_authorization_valid_after"
INVALID_VALID_BEFORE: Final = "invalid_exact_evm_payload_authorization_valid_before"

#: v1 network names of EVM chains (reference SDK's v1 name map: TypeScript ``EVM_NETWORK_CHAIN_ID_MAP``
#: and Go ``NetworkChainIDs``, which agree).
V1_NETWORKS: Final[dict[int, str]] = {
    1: "ethereum",
    11155111: "sepolia",
    2741: "abstract",
    11124: "abstract-testnet",
    84532: "base-sepolia",
    8453: "base",
    43113: "avalanche-fuji",
    43114: "avalanche",
    4689: "iotex",
    1329: "sei",
    1328: "sei-testnet",
    137: "polygon",
    80002: "polygon-amoy",
    3338: "peaq",
    1514: "story",
    41923: "educhain",
    324705682: "skale-base-sepolia",
    4326: "megaeth",
    143: "monad",
    988: "stable",
    2201: "stable-testnet",
}

_UINT256_LIMIT: Final = 1 << 256
_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")
_NONCE: Final = re.compile(r"0x[0-9a-fA-F]{64}")
_HEX_BYTES: Final = re.compile(r"0x(?:[0-9a-fA-F]{2})+")
_DECIMAL: Final = re.compile(r"[0-9]+")
_URL_SAFE_TO_STANDARD: Final = str.maketrans("-_", "+/")


class PaymentRejected(Exception):
    """A payment the server will not accept.

    ``reason`` is a stable machine code (an x402 reason name), ``message`` says what is wrong in
    plain words, ``status`` is the HTTP status: 400, for a malformed header and for a well-formed
    payment that does not meet the requirements alike (our API's contract; the x402 v1 transport
    would allow 402 for the latter).
    """

    reason: str
    message: str
    status: int

    def __init__(self, reason: str, message: str, status: int = 400) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class ExactEvmPayment:
    """A decoded v1 ``exact`` EVM payment payload (structurally valid, not yet verified)."""

    x402_version: int
    scheme: str
    network: str
    signature: bytes  # as sent; recover_signer insists on 65 bytes
    authorization: Authorization


def _show(value: object) -> str:
    """A short rendering of a client-supplied value for a message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _malformed(message: str) -> NoReturn:
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


def _b64decode(header: str) -> bytes:
    """Standard base64; also tolerates the URL-safe alphabet and missing padding (as Node does)."""
    if not header.isascii():
        _malformed("X-PAYMENT header is not base64: it contains non-ASCII characters")
    text = header.strip()
    if not text:
        _malformed("X-PAYMENT header is empty")
    if "-" in text or "_" in text:
        text = text.translate(_URL_SAFE_TO_STANDARD)
    body = text.rstrip("=")
    padding = len(text) - len(body)
    if len(body) % 4 == 1 or (padding and (padding > 2 or len(text) % 4)):
        _malformed("X-PAYMENT header is not base64: its length or padding is wrong")
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except binascii.Error:
        _malformed("X-PAYMENT header is not base64: invalid character or misplaced '='")


def _field(obj: dict[str, Any], key: str, path: str) -> Any:
    try:
        return obj[key]
    except KeyError:
        _malformed(f"missing field {path}{key}")


def _object(obj: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    value = _field(obj, key, path)
    if not isinstance(value, dict):
        _malformed(f"{path}{key} must be a JSON object, got {type(value).__name__}")
    return value


def _string(obj: dict[str, Any], key: str, path: str) -> str:
    value = _field(obj, key, path)
    if not isinstance(value, str):
        _malformed(f"{path}{key} must be a string, got {type(value).__name__}")
    return value


def _address(obj: dict[str, Any], key: str, path: str) -> str:
    value = _string(obj, key, path)
    if not _ADDRESS.fullmatch(value):
        _malformed(f"{path}{key} is not a 0x-prefixed 20-byte hex address: {_show(value)}")
    return value.lower()


def _uint256(obj: dict[str, Any], key: str, path: str) -> int:
    value = _field(obj, key, path)
    if not isinstance(value, str):
        _malformed(f"{path}{key} must be a decimal string, got {type(value).__name__}")
    if not _DECIMAL.fullmatch(value):
        _malformed(f"{path}{key} must be a string of decimal digits, got {_show(value)}")
    if len(value) > 78 or int(value) >= _UINT256_LIMIT:
        _malformed(f"{path}{key} does not fit in a uint256")
    return int(value)


def _parse_json(header: str) -> dict[str, Any]:
    if len(header) > MAX_HEADER_LENGTH:
        _malformed(f"X-PAYMENT header is {len(header)} characters long; the limit is {MAX_HEADER_LENGTH}")
    raw = _b64decode(header)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        _malformed("X-PAYMENT header does not decode to UTF-8 text")
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
    except _DuplicateKey as exc:
        _malformed(f"X-PAYMENT JSON repeats the key {_show(str(exc))}")
    except _NonStandardConstant as exc:
        _malformed(f"X-PAYMENT JSON contains the non-standard constant {exc}")
    except RecursionError:
        _malformed("X-PAYMENT JSON is nested too deeply")
    except ValueError as exc:
        _malformed(f"X-PAYMENT header is not base64 of JSON: {exc}")
    if not isinstance(document, dict):
        _malformed(f"X-PAYMENT JSON must be an object, got {type(document).__name__}")
    return document


def decode_payment_header(header: str) -> ExactEvmPayment:
    """Parse an ``X-PAYMENT`` header; any defect raises PaymentRejected (and nothing else does).

    Checks structure only (types, hex, ranges) plus the version and scheme, which decide the
    payload's shape; the signature and the requirements are checked by the verifier.
    """
    if not isinstance(header, str):
        _malformed("X-PAYMENT header must be a string")
    document = _parse_json(header)

    version = _field(document, "x402Version", "")
    if type(version) is not int:
        _malformed(f"x402Version must be an integer, got {type(version).__name__}")
    if version != X402_VERSION:
        raise PaymentRejected(
            INVALID_X402_VERSION,
            f"x402Version {_show(version)} is not supported; this server speaks x402 version 1",
        )
    scheme = _string(document, "scheme", "")
    if scheme != SCHEME_EXACT:
        raise PaymentRejected(UNSUPPORTED_SCHEME, f"scheme {_show(scheme)} is not supported; only 'exact' is")
    network = _string(document, "network", "")
    if not network:
        _malformed("network must not be empty")

    payload = _object(document, "payload", "")
    signature_hex = _string(payload, "signature", "payload.")
    if not _HEX_BYTES.fullmatch(signature_hex):
        _malformed(f"payload.signature is not 0x-prefixed hex bytes: {_show(signature_hex)}")
    path = "payload.authorization."
    fields = _object(payload, "authorization", "payload.")
    nonce_hex = _string(fields, "nonce", path)
    if not _NONCE.fullmatch(nonce_hex):
        _malformed(f"{path}nonce is not 0x-prefixed 32-byte hex: {_show(nonce_hex)}")
    authorization = Authorization(
        from_address=_address(fields, "from", path),
        to=_address(fields, "to", path),
        value=_uint256(fields, "value", path),
        valid_after=_uint256(fields, "validAfter", path),
        valid_before=_uint256(fields, "validBefore", path),
        nonce=bytes.fromhex(nonce_hex[2:]),
    )
    return ExactEvmPayment(
        x402_version=version,
        scheme=scheme,
        network=network,
        signature=bytes.fromhex(signature_hex[2:]),
        authorization=authorization,
    )


def encode_payment_header(payment: ExactEvmPayment) -> str:
    """The ``X-PAYMENT`` header value for ``payment`` (padded standard base64 of compact JSON)."""
    auth = payment.authorization
    document = {
        "x402Version": payment.x402_version,
        "scheme": payment.scheme,
        "network": payment.network,
        "payload": {
            "signature": "0x" + payment.signature.hex(),
            "authorization": {
                "from": auth.from_address,
                "to": auth.to,
                "value": str(auth.value),
                "validAfter": str(auth.valid_after),
                "validBefore": str(auth.valid_before),
                "nonce": "0x" + auth.nonce.hex(),
            },
        },
    }
    return base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode("ascii")


def _checksummed(name: str, address: str) -> str:
    if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
        raise ValueError(f"{name} is not a 0x address: {address!r}")
    return str(to_checksum_address(address))


def payment_requirements(
    *,
    network: str,
    max_amount: int,
    resource: str,
    description: str,
    pay_to: str,
    asset: str,
    max_timeout_seconds: int,
    asset_name: str,
    asset_version: str,
) -> dict[str, object]:
    """One v1 ``accepts`` entry; ``extra`` carries the token's EIP-712 domain name and version.

    Addresses are emitted EIP-55 checksummed, the amount as a decimal string (both as in the spec).
    """
    if type(max_amount) is not int or not 0 < max_amount < _UINT256_LIMIT:
        raise ValueError(f"max_amount must be a positive uint256, got {max_amount!r}")
    if type(max_timeout_seconds) is not int or max_timeout_seconds <= 0:
        raise ValueError(f"max_timeout_seconds must be a positive int, got {max_timeout_seconds!r}")
    return {
        "scheme": SCHEME_EXACT,
        "network": network,
        "maxAmountRequired": str(max_amount),
        "resource": resource,
        "description": description,
        "mimeType": "application/json",
        "payTo": _checksummed("pay_to", pay_to),
        "maxTimeoutSeconds": max_timeout_seconds,
        "asset": _checksummed("asset", asset),
        "outputSchema": None,
        "extra": {"name": asset_name, "version": asset_version},
    }


def network_name(chain_id: int) -> str:
    """The x402 v1 network name of an EVM chain, or ``eip155:<chain_id>`` if it has none."""
    return V1_NETWORKS.get(chain_id, f"eip155:{chain_id}")
