"""x402 v1 wire format: the X-PAYMENT header, payment requirements, network names."""

from __future__ import annotations

import base64
import copy
import json
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.x402 import (
    MAX_HEADER_LENGTH,
    V1_NETWORKS,
    ExactEvmPayment,
    PaymentRejected,
    decode_payment_header,
    encode_payment_header,
    network_name,
    payment_requirements,
)
from shared.x402.eip3009 import Authorization

# The X-PAYMENT example of the x402 v1 HTTP transport spec (specs/transports-v1/http.md).
SPEC_HEADER = (
    "eyJ4NDAyVmVyc2lvbiI6MSwic2NoZW1lIjoiZXhhY3QiLCJuZXR3b3JrIjoiYmFzZS1zZXBvbGlhIiwicGF5bG9hZCI6eyJzaWdu"
    "YXR1cmUiOiIweDJkNmE3NTg4ZDZhY2NhNTA1Y2JmMGQ5YTRhMjI3ZTBjNTJjNmMzNDAwOGM4ZTg5ODZhMTI4MzI1OTc2NDE3MzYw"
    "OGEyY2U2NDk2NjQyZTM3N2Q2ZGE4ZGJiZjU4MzZlOWJkMTUwOTJmOWVjYWIwNWRlZDNkNjI5M2FmMTQ4YjU3MWMiLCJhdXRob3Jp"
    "emF0aW9uIjp7ImZyb20iOiIweDg1N2IwNjUxOUU5MWUzQTU0NTM4NzkxYkRiYjBFMjIzNzNlMzZiNjYiLCJ0byI6IjB4MjA5Njkz"
    "QmM2YWZjMEM1MzI4YkEzNkZhRjAzQzUxNEVGMzEyMjg3QyIsInZhbHVlIjoiMTAwMDAiLCJ2YWxpZEFmdGVyIjoiMTc0MDY3MjA4"
    "OSIsInZhbGlkQmVmb3JlIjoiMTc0MDY3MjE1NCIsIm5vbmNlIjoiMHhmMzc0NjYxM2MyZDkyMGI1ZmRhYmMwODU2ZjJhZWIyZDRm"
    "ODhlZTYwMzdiOGNjNWQwNGE3MWE0NDYyZjEzNDgwIn19fQ=="
)
SPEC_SIGNATURE = bytes.fromhex(
    "2d6a7588d6acca505cbf0d9a4a227e0c52c6c34008c8e8986a1283259764173608a2ce6496642e377d6da8dbbf5836e9"
    "bd15092f9ecab05ded3d6293af148b571c"
)
SPEC_PAYMENT = ExactEvmPayment(
    x402_version=1,
    scheme="exact",
    network="base-sepolia",
    signature=SPEC_SIGNATURE,
    authorization=Authorization(
        from_address="0x857b06519e91e3a54538791bdbb0e22373e36b66",
        to="0x209693bc6afc0c5328ba36faf03c514ef312287c",
        value=10000,
        valid_after=1740672089,
        valid_before=1740672154,
        nonce=bytes.fromhex("f3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480"),
    ),
)


def spec_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(base64.b64decode(SPEC_HEADER))
    return document


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def header_of(document: Any) -> str:
    return b64(json.dumps(document))


def rejection(header: str) -> PaymentRejected:
    with pytest.raises(PaymentRejected) as caught:
        decode_payment_header(header)
    return caught.value


# --- decoding and encoding ---------------------------------------------------------------------


def test_decodes_the_spec_example() -> None:
    assert decode_payment_header(SPEC_HEADER) == SPEC_PAYMENT


def test_encode_decode_round_trip() -> None:
    header = encode_payment_header(SPEC_PAYMENT)
    assert decode_payment_header(header) == SPEC_PAYMENT


def test_encoding_is_the_v1_wire_format() -> None:
    header = encode_payment_header(SPEC_PAYMENT)
    assert base64.b64encode(base64.b64decode(header, validate=True)).decode() == header  # padded, standard
    document = json.loads(base64.b64decode(header))
    assert document == {
        "x402Version": 1,
        "scheme": "exact",
        "network": "base-sepolia",
        "payload": {
            "signature": "0x" + SPEC_SIGNATURE.hex(),
            "authorization": {
                "from": "0x857b06519e91e3a54538791bdbb0e22373e36b66",
                "to": "0x209693bc6afc0c5328ba36faf03c514ef312287c",
                "value": "10000",
                "validAfter": "1740672089",
                "validBefore": "1740672154",
                "nonce": "0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480",
            },
        },
    }


@settings(max_examples=200)
@given(
    network=st.text(min_size=1, max_size=30),
    signature=st.binary(min_size=1, max_size=200),
    value=st.integers(min_value=0, max_value=2**256 - 1),
    valid_after=st.integers(min_value=0, max_value=2**256 - 1),
    valid_before=st.integers(min_value=0, max_value=2**256 - 1),
    nonce=st.binary(min_size=32, max_size=32),
    parties=st.tuples(st.binary(min_size=20, max_size=20), st.binary(min_size=20, max_size=20)),
)
def test_round_trip_property(
    network: str,
    signature: bytes,
    value: int,
    valid_after: int,
    valid_before: int,
    nonce: bytes,
    parties: tuple[bytes, bytes],
) -> None:
    payment = ExactEvmPayment(
        1,
        "exact",
        network,
        signature,
        Authorization(
            "0x" + parties[0].hex(), "0x" + parties[1].hex(), value, valid_after, valid_before, nonce
        ),
    )
    assert decode_payment_header(encode_payment_header(payment)) == payment


def test_tolerates_url_safe_alphabet_missing_padding_and_surrounding_space() -> None:
    assert decode_payment_header(SPEC_HEADER.rstrip("=")) == SPEC_PAYMENT
    assert decode_payment_header(f"  {SPEC_HEADER} ") == SPEC_PAYMENT
    document = spec_document()
    document["pad"] = "??~>>"  # makes the base64 use both alphabet-specific characters
    encoded = json.dumps(document).encode()
    standard = base64.b64encode(encoded).decode()
    url_safe = base64.urlsafe_b64encode(encoded).decode()
    assert "+" in standard and "/" in standard and "=" in standard
    assert decode_payment_header(standard) == SPEC_PAYMENT
    assert decode_payment_header(url_safe) == SPEC_PAYMENT
    assert decode_payment_header(url_safe.rstrip("=")) == SPEC_PAYMENT


def test_normalises_addresses_to_lowercase_and_accepts_uint256_max() -> None:
    document = spec_document()
    document["payload"]["authorization"]["value"] = str(2**256 - 1)
    document["payload"]["authorization"]["validBefore"] = "0" * 70 + "1"
    payment = decode_payment_header(header_of(document))
    assert payment.authorization.value == 2**256 - 1
    assert payment.authorization.valid_before == 1
    assert payment.authorization.from_address == "0x857b06519e91e3a54538791bdbb0e22373e36b66"


def test_ignores_unknown_fields() -> None:
    document = spec_document()
    document["extra"] = {"anything": [1, 2, 3]}
    document["payload"]["authorization"]["memo"] = "hi"
    assert decode_payment_header(header_of(document)) == SPEC_PAYMENT


def test_signature_of_any_length_decodes_and_is_judged_later() -> None:
    document = spec_document()
    document["payload"]["signature"] = "0x" + "ab" * 200
    assert decode_payment_header(header_of(document)).signature == bytes([0xAB]) * 200


# --- malformed headers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header, message",
    [
        ("A" * (MAX_HEADER_LENGTH + 1), f"the limit is {MAX_HEADER_LENGTH}"),
        ("", "X-PAYMENT header is empty"),
        ("   ", "X-PAYMENT header is empty"),
        ("eyJ4é", "not base64: it contains non-ASCII characters"),
        ("eyJ4!!!!", "invalid character or misplaced '='"),
        ("eyJ4 NDA", "invalid character or misplaced '='"),
        ("eyJ4N", "its length or padding is wrong"),
        ("eyJ4N===", "its length or padding is wrong"),
        ("eyJ4N==", "its length or padding is wrong"),
        ("ey=J", "invalid character or misplaced '='"),
        (b64(b"\xff\xfe{}"), "does not decode to UTF-8 text"),
        (b64("hello"), "not base64 of JSON"),
        (b64('{"x402Version":1'), "not base64 of JSON"),
        (b64('{"x402Version":1,"x402Version":1}'), "repeats the key 'x402Version'"),
        (b64('{"x402Version":NaN}'), "non-standard constant NaN"),
        (b64('{"x402Version":-Infinity}'), "non-standard constant -Infinity"),
        (b64('{"x402Version":' + "9" * 5000 + "}"), "not base64 of JSON"),
        (b64("[]"), "X-PAYMENT JSON must be an object, got list"),
        (b64('"x"'), "X-PAYMENT JSON must be an object, got str"),
        (b64("null"), "X-PAYMENT JSON must be an object, got NoneType"),
    ],
)
def test_undecodable_headers(header: str, message: str) -> None:
    rejected = rejection(header)
    assert rejected.reason == "invalid_payload"
    assert rejected.status == 400
    assert message in rejected.message


def test_deep_nesting_is_rejected_not_raised() -> None:
    # The json C scanner raises RecursionError past the interpreter's recursion limit.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        rejected = rejection(b64("[" * 1000 + "]" * 1000))
    finally:
        sys.setrecursionlimit(limit)
    assert rejected.reason == "invalid_payload"
    assert "X-PAYMENT JSON is nested too deeply" in rejected.message
    assert rejection(b64("[" * 6000)).reason == "invalid_payload"


_MISSING = object()


def _changed(path: str, value: object) -> str:
    """The spec document with the field at dotted ``path`` replaced (or deleted, for _MISSING)."""
    document = copy.deepcopy(spec_document())
    *parents, leaf = path.split(".")
    target = document
    for key in parents:
        target = target[key]
    if value is _MISSING:
        del target[leaf]
    else:
        target[leaf] = value
    return header_of(document)


AUTH = "payload.authorization."


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("x402Version", _MISSING, "missing field x402Version"),
        ("x402Version", "1", "x402Version must be an integer, got str"),
        ("x402Version", True, "x402Version must be an integer, got bool"),
        ("x402Version", 1.0, "x402Version must be an integer, got float"),
        ("scheme", _MISSING, "missing field scheme"),
        ("scheme", 1, "scheme must be a string, got int"),
        ("network", _MISSING, "missing field network"),
        ("network", None, "network must be a string, got NoneType"),
        ("network", "", "network must not be empty"),
        ("payload", _MISSING, "missing field payload"),
        ("payload", "0x", "payload must be a JSON object, got str"),
        ("payload.signature", _MISSING, "missing field payload.signature"),
        ("payload.signature", 12, "payload.signature must be a string, got int"),
        ("payload.signature", "0x", "payload.signature is not 0x-prefixed hex bytes"),
        ("payload.signature", "0xabc", "payload.signature is not 0x-prefixed hex bytes"),
        ("payload.signature", "ab" * 65, "payload.signature is not 0x-prefixed hex bytes"),
        ("payload.signature", "0x" + "zz" * 65, "payload.signature is not 0x-prefixed hex bytes"),
        ("payload.authorization", _MISSING, "missing field payload.authorization"),
        ("payload.authorization", [], "payload.authorization must be a JSON object, got list"),
        (AUTH + "from", _MISSING, "missing field payload.authorization.from"),
        (
            AUTH + "from",
            "0x" + "ab" * 19,
            "payload.authorization.from is not a 0x-prefixed 20-byte hex address",
        ),
        (AUTH + "from", "ab" * 20, "payload.authorization.from is not a 0x-prefixed 20-byte hex address"),
        (AUTH + "to", _MISSING, "missing field payload.authorization.to"),
        (AUTH + "to", "0x" + "gg" * 20, "payload.authorization.to is not a 0x-prefixed 20-byte hex address"),
        (AUTH + "to", "0x" + "ab" * 21, "payload.authorization.to is not a 0x-prefixed 20-byte hex address"),
        (AUTH + "value", _MISSING, "missing field payload.authorization.value"),
        (AUTH + "value", 10000, "payload.authorization.value must be a decimal string, got int"),
        (AUTH + "value", True, "payload.authorization.value must be a decimal string, got bool"),
        (AUTH + "value", 1e4, "payload.authorization.value must be a decimal string, got float"),
        (AUTH + "value", "-1", "payload.authorization.value must be a string of decimal digits"),
        (AUTH + "value", "1.5", "payload.authorization.value must be a string of decimal digits"),
        (AUTH + "value", "1e4", "payload.authorization.value must be a string of decimal digits"),
        (AUTH + "value", " 1", "payload.authorization.value must be a string of decimal digits"),
        (AUTH + "value", "0x10", "payload.authorization.value must be a string of decimal digits"),
        (AUTH + "value", "", "payload.authorization.value must be a string of decimal digits"),
        (AUTH + "value", "\u0661", "payload.authorization.value must be a string of decimal digits"),
        (AUTH + "value", str(2**256), "payload.authorization.value does not fit in a uint256"),
        (AUTH + "value", "1" * 5000, "payload.authorization.value does not fit in a uint256"),
        (AUTH + "validAfter", _MISSING, "missing field payload.authorization.validAfter"),
        (AUTH + "validAfter", -5, "payload.authorization.validAfter must be a decimal string, got int"),
        (AUTH + "validBefore", _MISSING, "missing field payload.authorization.validBefore"),
        (
            AUTH + "validBefore",
            "soon",
            "payload.authorization.validBefore must be a string of decimal digits",
        ),
        (AUTH + "nonce", _MISSING, "missing field payload.authorization.nonce"),
        (AUTH + "nonce", "0x" + "00" * 31, "payload.authorization.nonce is not 0x-prefixed 32-byte hex"),
        (AUTH + "nonce", "00" * 32, "payload.authorization.nonce is not 0x-prefixed 32-byte hex"),
        (AUTH + "nonce", 0, "payload.authorization.nonce must be a string, got int"),
    ],
)
def test_malformed_fields(path: str, value: object, message: str) -> None:
    rejected = rejection(_changed(path, value))
    assert rejected.reason == "invalid_payload"
    assert rejected.status == 400
    assert message in rejected.message


@pytest.mark.parametrize("version", [0, 2, 3, -1, 10**30])
def test_other_protocol_versions(version: int) -> None:
    rejected = rejection(_changed("x402Version", version))
    assert rejected.reason == "invalid_x402_version"
    assert rejected.status == 400
    assert "X-PAYMENT, which carries x402 version 1" in rejected.message


@pytest.mark.parametrize("scheme", ["upto", "EXACT", "exact ", ""])
def test_other_schemes(scheme: str) -> None:
    rejected = rejection(_changed("scheme", scheme))
    assert rejected.reason == "unsupported_scheme"
    assert rejected.status == 400
    assert "only 'exact' is" in rejected.message


def test_long_values_are_shortened_in_messages() -> None:
    rejected = rejection(_changed(AUTH + "from", "x" * 3000))
    assert len(rejected.message) < 150


def test_rejection_carries_reason_message_and_status() -> None:
    error = PaymentRejected("invalid_payload", "missing field scheme")
    assert (error.reason, error.message, error.status) == ("invalid_payload", "missing field scheme", 400)
    assert str(error) == "invalid_payload: missing field scheme"
    assert PaymentRejected("x", "y", 402).status == 402


# --- decoding never raises anything but PaymentRejected ---------------------------------------


def _decodes_or_rejects(header: str) -> None:
    try:
        decode_payment_header(header)
    except PaymentRejected as rejected:
        assert rejected.reason in {"invalid_payload", "invalid_x402_version", "unsupported_scheme"}
        assert rejected.message


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80)
    | st.sampled_from(["0x" + "ab" * 20, "0x" + "00" * 32, "0x" + "11" * 65, "10000", "1", "exact", "base"]),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)
field_paths = st.sampled_from(
    [
        "x402Version",
        "scheme",
        "network",
        "payload",
        "payload.signature",
        "payload.authorization",
        *(AUTH + key for key in ("from", "to", "value", "validAfter", "validBefore", "nonce")),
    ]
)


@settings(max_examples=500)
@given(st.text(max_size=300))
def test_arbitrary_text_only_raises_payment_rejected(text: str) -> None:
    _decodes_or_rejects(text)


@settings(max_examples=300)
@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ ", max_size=300))
def test_arbitrary_base64_alphabet_text_only_raises_payment_rejected(text: str) -> None:
    _decodes_or_rejects(text)


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_base64_encoded_only_raise_payment_rejected(data: bytes) -> None:
    _decodes_or_rejects(b64(data))
    _decodes_or_rejects(base64.urlsafe_b64encode(data).decode().rstrip("="))


@settings(max_examples=300)
@given(json_values)
def test_arbitrary_json_values_only_raise_payment_rejected(value: object) -> None:
    _decodes_or_rejects(header_of(value))


@settings(max_examples=500)
@given(path=field_paths, value=json_values | st.just(_MISSING))
def test_any_field_replaced_by_any_json_only_raises_payment_rejected(path: str, value: object) -> None:
    _decodes_or_rejects(_changed(path, value))


@settings(max_examples=200)
@given(
    st.fixed_dictionaries(
        {
            "x402Version": st.just(1),
            "scheme": st.just("exact"),
            "network": json_values,
            "payload": st.fixed_dictionaries(
                {
                    "signature": json_values,
                    "authorization": st.fixed_dictionaries(
                        {
                            key: json_values
                            for key in ("from", "to", "value", "validAfter", "validBefore", "nonce")
                        }
                    ),
                }
            ),
        }
    )
)
def test_right_shape_with_arbitrary_values_only_raises_payment_rejected(document: dict[str, Any]) -> None:
    _decodes_or_rejects(header_of(document))


# --- payment requirements and networks --------------------------------------------------------


def test_payment_requirements_is_one_v1_accepts_entry() -> None:
    entry = payment_requirements(
        network="base-sepolia",
        max_amount=10000,
        resource="https://api.example.com/premium-data",
        description="Access to premium market data",
        pay_to="0x209693bc6afc0c5328ba36faf03c514ef312287c",
        asset="0x036cbd53842c5426634e7929541ec2318f3dcf7e",
        max_timeout_seconds=60,
        asset_name="USDC",
        asset_version="2",
    )
    # The example of the x402 v1 specification (section 5.1.1), field for field — but `outputSchema`,
    # null there, is an object: the reference TypeScript v1 client (x402-fetch) refuses null.
    assert entry == {
        "scheme": "exact",
        "network": "base-sepolia",
        "maxAmountRequired": "10000",
        "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
        "resource": "https://api.example.com/premium-data",
        "description": "Access to premium market data",
        "mimeType": "application/json",
        "outputSchema": {},
        "maxTimeoutSeconds": 60,
        "extra": {"name": "USDC", "version": "2"},
    }
    assert json.loads(json.dumps(entry)) == entry


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"max_amount": 0}, "max_amount must be a positive uint256"),
        ({"max_amount": 2**256}, "max_amount must be a positive uint256"),
        ({"max_amount": "10000"}, "max_amount must be a positive uint256"),
        ({"max_timeout_seconds": 0}, "max_timeout_seconds must be a positive int"),
        ({"pay_to": "0x1234"}, "pay_to is not a 0x address"),
        ({"asset": "USDC"}, "asset is not a 0x address"),
    ],
)
def test_payment_requirements_rejects_bad_configuration(changes: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {
        "network": "base",
        "max_amount": 1,
        "resource": "http://localhost/mint",
        "description": "mint",
        "pay_to": "0x" + "ab" * 20,
        "asset": "0x" + "cd" * 20,
        "max_timeout_seconds": 60,
        "asset_name": "USD Coin",
        "asset_version": "2",
    }
    with pytest.raises(ValueError, match=message):
        payment_requirements(**{**arguments, **changes})


@pytest.mark.parametrize(
    "chain_id, name",
    [
        (8453, "base"),
        (84532, "base-sepolia"),
        (43114, "avalanche"),
        (43113, "avalanche-fuji"),
        (137, "polygon"),
        (1, "ethereum"),
        (31337, "eip155:31337"),
        (10, "eip155:10"),
    ],
)
def test_network_names(chain_id: int, name: str) -> None:
    assert network_name(chain_id) == name


def test_v1_network_names_are_unique() -> None:
    assert len(set(V1_NETWORKS.values())) == len(V1_NETWORKS)
