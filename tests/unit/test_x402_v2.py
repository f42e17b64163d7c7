"""x402 v2 wire format (PAYMENT-SIGNATURE, PAYMENT-REQUIRED, PAYMENT-RESPONSE) and v2 verification."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import sys
from typing import Any

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from api.verification import verify_exact_payment
from shared.x402 import (
    MAX_HEADER_LENGTH,
    ExactEvmPayment,
    PaymentRejected,
    caip2,
    decode_payment_required,
    decode_payment_response,
    decode_payment_signature_header,
    encode_payment_header,
    encode_payment_required,
    encode_payment_response,
    encode_payment_signature_header,
    network_name,
    payment_required_v2,
    requirement_v2,
    v1_network_name,
)
from shared.x402.eip3009 import Authorization, Eip712Domain, sign_transfer

PAYER_KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
PAYER = Account.from_key(PAYER_KEY).address.lower()
PAY_TO = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
ASSET = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
DOMAIN = Eip712Domain("USDC", "2", 84532, ASSET)
NETWORK = "eip155:84532"
AMOUNT = 10_000
NOW = 1_740_672_100
MARGIN = 30
RESOURCE = {
    "url": "http://localhost/api/mint/0xabc",
    "description": "Mint 1 x TOK",
    "mimeType": "application/json",
}
ACCEPTED: dict[str, Any] = requirement_v2(
    network=NETWORK,
    amount=AMOUNT,
    asset=ASSET,
    pay_to=PAY_TO,
    max_timeout_seconds=60,
    asset_name="USDC",
    asset_version="2",
)
AUTHORIZATION = Authorization(
    from_address=PAYER,
    to=PAY_TO.lower(),
    value=AMOUNT,
    valid_after=0,
    valid_before=NOW + 300,
    nonce=bytes(range(32)),
)
PAYMENT = ExactEvmPayment(
    x402_version=2,
    scheme="exact",
    network=NETWORK,
    signature=sign_transfer(DOMAIN, AUTHORIZATION, PAYER_KEY),
    authorization=AUTHORIZATION,
    accepted=ACCEPTED,
    resource=RESOURCE,
)
HEADER = encode_payment_signature_header(PAYMENT)
TERMS: dict[str, Any] = {
    "network": NETWORK,
    "domain": DOMAIN,
    "pay_to": PAY_TO,
    "amount": AMOUNT,
    "now": NOW,
    "settle_margin": MARGIN,
    "asset": ASSET,
}
DECODE_REASONS = {"invalid_payload", "invalid_x402_version", "unsupported_scheme"}


def document() -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.b64decode(HEADER))
    return decoded


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def header_of(value: Any) -> str:
    return b64(json.dumps(value))


def rejection(header: str) -> PaymentRejected:
    with pytest.raises(PaymentRejected) as caught:
        decode_payment_signature_header(header)
    assert caught.value.status == 400
    return caught.value


_MISSING = object()


def _changed(path: str, value: object) -> str:
    """The good document with the field at dotted ``path`` replaced (or deleted, for _MISSING)."""
    changed = copy.deepcopy(document())
    *parents, leaf = path.split(".")
    target = changed
    for key in parents:
        target = target[key]
    if value is _MISSING:
        target.pop(leaf, None)
    else:
        target[leaf] = value
    return header_of(changed)


# --- encoding and decoding ---------------------------------------------------------------------


def test_round_trip() -> None:
    assert decode_payment_signature_header(HEADER) == PAYMENT
    without_resource = dataclasses.replace(PAYMENT, resource=None)
    assert (
        decode_payment_signature_header(encode_payment_signature_header(without_resource)) == without_resource
    )


def test_encoding_is_the_v2_wire_format() -> None:
    assert base64.b64encode(base64.b64decode(HEADER, validate=True)).decode() == HEADER  # padded, standard
    assert document() == {
        "x402Version": 2,
        "payload": {
            "signature": "0x" + PAYMENT.signature.hex(),
            "authorization": {
                "from": PAYER,
                "to": PAY_TO.lower(),
                "value": "10000",
                "validAfter": "0",
                "validBefore": str(NOW + 300),
                "nonce": "0x" + bytes(range(32)).hex(),
            },
        },
        "accepted": {
            "scheme": "exact",
            "network": "eip155:84532",
            "asset": ASSET,
            "amount": "10000",
            "payTo": PAY_TO,
            "maxTimeoutSeconds": 60,
            "extra": {"name": "USDC", "version": "2"},
        },
        "resource": RESOURCE,
    }


def test_accepted_is_echoed_verbatim_and_unknown_fields_are_ignored() -> None:
    changed = document()
    changed["extensions"] = {"bazaar": {"info": 1}}
    changed["accepted"]["memo"] = ["kept"]
    changed["payload"]["authorization"]["memo"] = "ignored"
    payment = decode_payment_signature_header(header_of(changed))
    assert payment.accepted == {**ACCEPTED, "memo": ["kept"]}
    assert payment.authorization == AUTHORIZATION


def test_optional_fields_may_be_absent_or_null() -> None:
    changed = document()
    del changed["resource"], changed["accepted"]["extra"]
    changed["extensions"] = None
    payment = decode_payment_signature_header(header_of(changed))
    assert payment.resource is None
    assert payment.accepted is not None and "extra" not in payment.accepted
    assert decode_payment_signature_header(_changed("resource", None)).resource is None


def test_tolerates_url_safe_alphabet_missing_padding_and_surrounding_space() -> None:
    raw = base64.b64decode(HEADER)
    assert decode_payment_signature_header(base64.urlsafe_b64encode(raw).decode().rstrip("=")) == PAYMENT
    assert decode_payment_signature_header(f" {HEADER}  ") == PAYMENT


@settings(max_examples=150)
@given(
    value=st.integers(min_value=0, max_value=2**256 - 1),
    window=st.tuples(st.integers(0, 2**256 - 1), st.integers(0, 2**256 - 1)),
    nonce=st.binary(min_size=32, max_size=32),
    signature=st.binary(min_size=1, max_size=100),
    amount=st.integers(min_value=1, max_value=2**256 - 1),
    timeout=st.integers(min_value=1, max_value=10**6),
    resource=st.none() | st.fixed_dictionaries({"url": st.text(max_size=40)}),
)
def test_round_trip_property(
    value: int,
    window: tuple[int, int],
    nonce: bytes,
    signature: bytes,
    amount: int,
    timeout: int,
    resource: dict[str, Any] | None,
) -> None:
    accepted = {**ACCEPTED, "amount": str(amount), "maxTimeoutSeconds": timeout}
    auth = dataclasses.replace(
        AUTHORIZATION, value=value, valid_after=window[0], valid_before=window[1], nonce=nonce
    )
    payment = ExactEvmPayment(2, "exact", NETWORK, signature, auth, accepted=accepted, resource=resource)
    assert decode_payment_signature_header(encode_payment_signature_header(payment)) == payment


@pytest.mark.parametrize(
    "payment",
    [
        dataclasses.replace(PAYMENT, accepted=None),
        dataclasses.replace(PAYMENT, x402_version=1),
        dataclasses.replace(PAYMENT, network="eip155:8453"),
        dataclasses.replace(PAYMENT, scheme="upto"),
    ],
)
def test_encoder_refuses_what_is_not_a_consistent_v2_payment(payment: ExactEvmPayment) -> None:
    with pytest.raises(ValueError):
        encode_payment_signature_header(payment)


def test_payment_stays_hashable() -> None:
    assert hash(PAYMENT) == hash(dataclasses.replace(PAYMENT, accepted=None, resource=None))


def test_headers_of_the_two_versions_are_not_interchangeable() -> None:
    assert rejection(encode_payment_header(dataclasses.replace(PAYMENT, x402_version=1))).reason == (
        "invalid_x402_version"
    )
    assert "version 1 payments go in the X-PAYMENT header" in rejection(_changed("x402Version", 1)).message


# --- malformed headers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header, message",
    [
        ("A" * (MAX_HEADER_LENGTH + 1), f"the limit is {MAX_HEADER_LENGTH}"),
        ("", "PAYMENT-SIGNATURE header is empty"),
        (" \t", "PAYMENT-SIGNATURE header is empty"),
        ("eyJ4é", "not base64: it contains non-ASCII characters"),
        ("eyJ4!!!!", "invalid character or misplaced '='"),
        ("eyJ4N", "its length or padding is wrong"),
        ("eyJ4N===", "its length or padding is wrong"),
        (b64(b"\xff\xfe{}"), "does not decode to UTF-8 text"),
        (b64("hello"), "not base64 of JSON"),
        (b64('{"x402Version":2'), "not base64 of JSON"),
        (b64('{"x402Version":2,"x402Version":2}'), "repeats the key 'x402Version'"),
        (b64('{"x402Version":Infinity}'), "non-standard constant Infinity"),
        (b64('{"x402Version":' + "9" * 5000 + "}"), "not base64 of JSON"),
        (b64("[]"), "PAYMENT-SIGNATURE JSON must be an object, got list"),
        (b64("2"), "PAYMENT-SIGNATURE JSON must be an object, got int"),
    ],
)
def test_undecodable_headers(header: str, message: str) -> None:
    rejected = rejection(header)
    assert rejected.reason == "invalid_payload"
    assert message in rejected.message


def test_non_string_header_and_deep_nesting_are_rejected_not_raised() -> None:
    assert rejection(None).reason == "invalid_payload"  # type: ignore[arg-type]
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        rejected = rejection(b64('{"accepted":' + "[" * 1000 + "]" * 1000 + "}"))
    finally:
        sys.setrecursionlimit(limit)
    assert "PAYMENT-SIGNATURE JSON is nested too deeply" in rejected.message


ACC = "accepted."
AUTH = "payload.authorization."


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("x402Version", _MISSING, "missing field x402Version"),
        ("x402Version", "2", "x402Version must be an integer, got str"),
        ("x402Version", True, "x402Version must be an integer, got bool"),
        ("x402Version", 2.0, "x402Version must be an integer, got float"),
        ("accepted", _MISSING, "missing field accepted"),
        ("accepted", None, "accepted must be a JSON object, got NoneType"),
        ("accepted", [ACCEPTED], "accepted must be a JSON object, got list"),
        (ACC + "scheme", _MISSING, "missing field accepted.scheme"),
        (ACC + "scheme", ["exact"], "accepted.scheme must be a string, got list"),
        (ACC + "network", _MISSING, "missing field accepted.network"),
        (ACC + "network", 84532, "accepted.network must be a string, got int"),
        (ACC + "network", "", "accepted.network must not be empty"),
        (ACC + "asset", _MISSING, "missing field accepted.asset"),
        (ACC + "asset", "USDC", "accepted.asset is not a 0x-prefixed 20-byte hex address"),
        (ACC + "amount", _MISSING, "missing field accepted.amount"),
        (ACC + "amount", 10000, "accepted.amount must be a decimal string, got int"),
        (ACC + "amount", "0.01", "accepted.amount must be a string of decimal digits"),
        (ACC + "amount", "$0.01", "accepted.amount must be a string of decimal digits"),
        (ACC + "amount", str(2**256), "accepted.amount does not fit in a uint256"),
        (ACC + "payTo", _MISSING, "missing field accepted.payTo"),
        (ACC + "payTo", "0x" + "ab" * 19, "accepted.payTo is not a 0x-prefixed 20-byte hex address"),
        (ACC + "maxTimeoutSeconds", _MISSING, "missing field accepted.maxTimeoutSeconds"),
        (ACC + "maxTimeoutSeconds", "60", "accepted.maxTimeoutSeconds must be an integer, got str"),
        (ACC + "maxTimeoutSeconds", 60.0, "accepted.maxTimeoutSeconds must be an integer, got float"),
        (ACC + "maxTimeoutSeconds", False, "accepted.maxTimeoutSeconds must be an integer, got bool"),
        (ACC + "extra", None, "accepted.extra must be a JSON object, got NoneType"),
        (ACC + "extra", '{"name":"USDC"}', "accepted.extra must be a JSON object, got str"),
        ("resource", "http://x", "resource must be a JSON object, got str"),
        ("resource", {}, "missing field resource.url"),
        ("resource", {"url": 1}, "resource.url must be a string, got int"),
        ("extensions", [], "extensions must be a JSON object, got list"),
        ("payload", _MISSING, "missing field payload"),
        ("payload", [], "payload must be a JSON object, got list"),
        ("payload", {"permit2Authorization": {}, "signature": "0x00"}, "payload is a Permit2 authorization"),
        ("payload.signature", _MISSING, "missing field payload.signature"),
        ("payload.signature", None, "payload.signature must be a string, got NoneType"),
        ("payload.signature", "0x1", "payload.signature is not 0x-prefixed hex bytes"),
        ("payload.authorization", _MISSING, "missing field payload.authorization"),
        ("payload.authorization", "x", "payload.authorization must be a JSON object, got str"),
        (AUTH + "from", _MISSING, "missing field payload.authorization.from"),
        (
            AUTH + "from",
            "0x" + "zz" * 20,
            "payload.authorization.from is not a 0x-prefixed 20-byte hex address",
        ),
        (AUTH + "to", 0, "payload.authorization.to must be a string, got int"),
        (AUTH + "value", "-1", "payload.authorization.value must be a string of decimal digits"),
        (AUTH + "value", 10000, "payload.authorization.value must be a decimal string, got int"),
        (AUTH + "validAfter", "1e3", "payload.authorization.validAfter must be a string of decimal digits"),
        (AUTH + "validBefore", _MISSING, "missing field payload.authorization.validBefore"),
        (AUTH + "nonce", "0x" + "00" * 33, "payload.authorization.nonce is not 0x-prefixed 32-byte hex"),
    ],
)
def test_malformed_fields(path: str, value: object, message: str) -> None:
    rejected = rejection(_changed(path, value))
    assert rejected.reason == "invalid_payload"
    assert message in rejected.message


@pytest.mark.parametrize("version", [0, 1, 3, -2, 10**30])
def test_other_protocol_versions(version: int) -> None:
    rejected = rejection(_changed("x402Version", version))
    assert rejected.reason == "invalid_x402_version"
    assert "PAYMENT-SIGNATURE, which carries x402 version 2" in rejected.message


@pytest.mark.parametrize("scheme", ["upto", "Exact", "", "exact\u200b"])
def test_other_schemes(scheme: str) -> None:
    rejected = rejection(_changed(ACC + "scheme", scheme))
    assert rejected.reason == "unsupported_scheme"
    assert "only 'exact' is" in rejected.message


# --- decoding never raises anything but PaymentRejected ---------------------------------------


def _decodes_or_rejects(header: str) -> None:
    try:
        decode_payment_signature_header(header)
    except PaymentRejected as rejected:
        assert rejected.reason in DECODE_REASONS
        assert rejected.message and rejected.status == 400


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=60)
    | st.sampled_from(["0x" + "ab" * 20, "0x" + "00" * 32, "0x" + "11" * 65, "10000", "exact", NETWORK]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=25,
)
field_paths = st.sampled_from(
    [
        "x402Version",
        "accepted",
        "resource",
        "extensions",
        "payload",
        "payload.signature",
        "payload.authorization",
        *(
            ACC + key
            for key in ("scheme", "network", "asset", "amount", "payTo", "maxTimeoutSeconds", "extra")
        ),
        *(AUTH + key for key in ("from", "to", "value", "validAfter", "validBefore", "nonce")),
    ]
)


@settings(max_examples=400)
@given(st.text(max_size=300))
def test_arbitrary_text_only_raises_payment_rejected(text: str) -> None:
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
            "x402Version": st.just(2),
            "accepted": st.fixed_dictionaries(
                {"scheme": st.just("exact")}
                | {key: json_values for key in ("network", "asset", "amount", "payTo", "maxTimeoutSeconds")}
            ),
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
def test_right_shape_with_arbitrary_values_only_raises_payment_rejected(value: dict[str, Any]) -> None:
    _decodes_or_rejects(header_of(value))


# --- PAYMENT-REQUIRED, PAYMENT-RESPONSE, networks ----------------------------------------------


def test_requirement_v2_is_one_v2_accepts_entry() -> None:
    entry = requirement_v2(
        network="eip155:84532",
        amount=10000,
        asset=ASSET.lower(),
        pay_to=PAY_TO.lower(),
        max_timeout_seconds=60,
        asset_name="USDC",
        asset_version="2",
    )
    assert entry == {
        "scheme": "exact",
        "network": "eip155:84532",
        "asset": ASSET,
        "amount": "10000",
        "payTo": PAY_TO,
        "maxTimeoutSeconds": 60,
        "extra": {"name": "USDC", "version": "2"},
    }


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"network": "base-sepolia"}, "network must be a CAIP-2 EVM id"),
        ({"network": "eip155:"}, "network must be a CAIP-2 EVM id"),
        ({"network": "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"}, "network must be a CAIP-2 EVM id"),
        ({"amount": 0}, "amount must be a positive uint256"),
        ({"amount": 2**256}, "amount must be a positive uint256"),
        ({"amount": "10000"}, "amount must be a positive uint256"),
        ({"max_timeout_seconds": 0}, "max_timeout_seconds must be a positive int"),
        ({"pay_to": "0x1234"}, "pay_to is not a 0x address"),
        ({"asset": "USDC"}, "asset is not a 0x address"),
    ],
)
def test_requirement_v2_rejects_bad_configuration(changes: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {
        "network": "eip155:8453",
        "amount": 1,
        "asset": "0x" + "cd" * 20,
        "pay_to": "0x" + "ab" * 20,
        "max_timeout_seconds": 60,
        "asset_name": "USD Coin",
        "asset_version": "2",
    }
    with pytest.raises(ValueError, match=message):
        requirement_v2(**{**arguments, **changes})


def test_payment_required_round_trip() -> None:
    required = payment_required_v2(
        accepts=[ACCEPTED], resource_url=RESOURCE["url"], description="Mint 1 x TOK", error="pay first"
    )
    assert required == {"x402Version": 2, "error": "pay first", "resource": RESOURCE, "accepts": [ACCEPTED]}
    header = encode_payment_required(required)
    assert header.isascii() and json.loads(base64.b64decode(header)) == required
    assert decode_payment_required(header) == required
    with pytest.raises(ValueError, match="at least one accepts entry"):
        payment_required_v2(accepts=[], resource_url="u", description="d", error="e")


@pytest.mark.parametrize(
    "header, message",
    [
        ("!", "not base64"),
        (header_of([]), "JSON must be an object"),
        (header_of({"x402Version": 1, "accepts": [ACCEPTED]}), "x402Version must be 2"),
        (header_of({"x402Version": True, "accepts": [ACCEPTED]}), "x402Version must be 2"),
        (header_of({"x402Version": 2}), "accepts must be a non-empty list"),
        (header_of({"x402Version": 2, "accepts": []}), "accepts must be a non-empty list"),
        (header_of({"x402Version": 2, "accepts": ["exact"]}), "accepts must be a non-empty list"),
    ],
)
def test_decode_payment_required_raises_value_error(header: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_payment_required(header)


def test_payment_response_round_trip() -> None:
    header = encode_payment_response(success=True, transaction="", network=NETWORK, payer=PAYER)
    assert json.loads(base64.b64decode(header)) == {
        "success": True,
        "payer": PAYER,
        "transaction": "",
        "network": NETWORK,
    }
    assert decode_payment_response(header)["payer"] == PAYER
    anonymous = encode_payment_response(success=False, transaction="0xab", network=NETWORK, payer=None)
    assert "payer" not in decode_payment_response(anonymous)
    for bad in (
        {"success": "yes", "transaction": "", "network": NETWORK},
        {"success": True, "network": NETWORK},
    ):
        with pytest.raises(ValueError, match="PAYMENT-RESPONSE"):
            decode_payment_response(header_of(bad))


@pytest.mark.parametrize(
    "chain_id, v1, caip",
    [(84532, "base-sepolia", "eip155:84532"), (8453, "base", "eip155:8453"), (31337, None, "eip155:31337")],
)
def test_network_identifiers(chain_id: int, v1: str | None, caip: str) -> None:
    assert v1_network_name(chain_id) == v1
    assert caip2(chain_id) == caip
    assert network_name(chain_id) == (v1 or caip)


@pytest.mark.parametrize("chain_id", [0, -1, True, "8453"])
def test_caip2_rejects_non_chain_ids(chain_id: Any) -> None:
    with pytest.raises(ValueError, match="chain_id must be a positive int"):
        caip2(chain_id)


# --- v2 verification ---------------------------------------------------------------------------


def verification_rejection(payment: ExactEvmPayment, **terms: Any) -> PaymentRejected:
    with pytest.raises(PaymentRejected) as caught:
        verify_exact_payment(payment, **{**TERMS, **terms})
    assert caught.value.status == 400
    return caught.value


def with_accepted(**changes: object) -> ExactEvmPayment:
    """PAYMENT (correctly signed) whose echoed ``accepted`` has ``changes``, kept consistent."""
    accepted = {**ACCEPTED, **changes}
    return dataclasses.replace(
        PAYMENT, accepted=accepted, scheme=str(accepted["scheme"]), network=str(accepted["network"])
    )


def test_a_valid_v2_payment_passes_through_the_wire_format() -> None:
    verify_exact_payment(decode_payment_signature_header(HEADER), **TERMS)


def test_asset_defaults_to_the_domain_contract_and_addresses_compare_in_any_case() -> None:
    terms = {key: value for key, value in TERMS.items() if key != "asset"}
    verify_exact_payment(PAYMENT, **terms)
    verify_exact_payment(PAYMENT, **{**TERMS, "asset": ASSET.lower(), "pay_to": PAY_TO.lower()})
    verify_exact_payment(
        with_accepted(asset=ASSET.upper().replace("0X", "0x"), payTo=PAY_TO.lower()), **TERMS
    )


def test_timeout_extra_and_unknown_fields_of_accepted_are_not_compared() -> None:
    verify_exact_payment(with_accepted(maxTimeoutSeconds=1, extra={"name": "other"}, memo=1), **TERMS)


@pytest.mark.parametrize(
    "payment, reason, words",
    [
        (with_accepted(network="eip155:8453"), "network_mismatch", "network 'eip155:8453' is not accepted"),
        (
            with_accepted(asset="0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
            "invalid_payment_requirements",
            "accepted.asset is 0x833589fcd6edb6e08f4c7c32d4f71b54bda02913, but the price is in",
        ),
        (
            with_accepted(payTo="0x" + "ab" * 20),
            "invalid_exact_evm_payload_recipient_mismatch",
            f"accepted.payTo is 0x{'ab' * 20}, but payTo is {PAY_TO.lower()}",
        ),
        (
            with_accepted(amount="9999"),
            "invalid_exact_evm_payload_authorization_value_mismatch",
            "accepted.amount is 9999, but the price is exactly 10000",
        ),
        (with_accepted(scheme="upto"), "unsupported_scheme", "scheme 'upto' is not supported"),
        (
            dataclasses.replace(PAYMENT, accepted={**ACCEPTED, "scheme": "upto"}),
            "unsupported_scheme",
            "accepted.scheme 'upto' is not supported",
        ),
        (
            dataclasses.replace(PAYMENT, accepted={**ACCEPTED, "network": "eip155:1"}),
            "network_mismatch",
            "accepted.network 'eip155:1' is not accepted",
        ),
        (dataclasses.replace(PAYMENT, accepted=None), "invalid_payload", "must echo the requirements"),
        (
            dataclasses.replace(PAYMENT, accepted={"scheme": "exact"}),
            "invalid_payload",
            "missing field accepted.",
        ),
    ],
)
def test_accepted_mismatches(payment: ExactEvmPayment, reason: str, words: str) -> None:
    rejected = verification_rejection(payment)
    assert rejected.reason == reason
    assert words in rejected.message


def test_v2_payment_against_the_v1_network_name() -> None:
    rejected = verification_rejection(PAYMENT, network="base-sepolia")
    assert rejected.reason == "network_mismatch"


def test_authorization_is_still_checked_when_accepted_is_right() -> None:
    other_to = dataclasses.replace(PAYMENT.authorization, to="0x" + "ab" * 20)
    assert verification_rejection(dataclasses.replace(PAYMENT, authorization=other_to)).reason == (
        "invalid_exact_evm_payload_recipient_mismatch"
    )
    other_value = dataclasses.replace(PAYMENT.authorization, value=AMOUNT + 1)
    assert verification_rejection(dataclasses.replace(PAYMENT, authorization=other_value)).reason == (
        "invalid_exact_evm_payload_authorization_value_mismatch"
    )
    assert verification_rejection(PAYMENT, now=NOW + 300).reason == (
        "invalid_exact_evm_payload_authorization_valid_before"
    )
    other_domain = dataclasses.replace(DOMAIN, version="1")
    assert (
        verification_rejection(PAYMENT, domain=other_domain).reason == "invalid_exact_evm_payload_signature"
    )


def test_accepted_checks_come_before_the_signature() -> None:
    forged = dataclasses.replace(with_accepted(amount="1"), signature=bytes(65))
    assert verification_rejection(forged).reason == "invalid_exact_evm_payload_authorization_value_mismatch"
