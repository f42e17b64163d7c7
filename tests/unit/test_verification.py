"""The payment policy: every check passes a good payment and rejects its own defect."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account

from api.verification import verify_exact_payment
from shared.x402 import ExactEvmPayment, PaymentRejected, decode_payment_header, encode_payment_header
from shared.x402.eip3009 import SECP256K1_N, Authorization, Eip712Domain, sign_transfer
from shared.x402.wallets import ERC6492_MAGIC, MAX_SIGNATURE_BYTES

PAYER_KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
PAYER = Account.from_key(PAYER_KEY).address.lower()
OTHER_KEY = bytes.fromhex("8da4ef21b864d2cc526dbdb2a120bd2874c36c9d0a1fb7f8c63d7f7a8b41de8f")
PAY_TO = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"  # checksummed, as configured
DOMAIN = Eip712Domain("USDC", "2", 84532, "0x036CbD53842c5426634e7929541eC2318f3dCF7e")
NETWORK = "base-sepolia"
AMOUNT = 10_000
NOW = 1_740_672_100
MARGIN = 30

TERMS: dict[str, Any] = {
    "network": NETWORK,
    "domain": DOMAIN,
    "pay_to": PAY_TO,
    "amount": AMOUNT,
    "now": NOW,
    "settle_margin": MARGIN,
}


def payment(
    *, key: bytes = PAYER_KEY, domain: Eip712Domain = DOMAIN, signature: bytes | None = None, **changes: Any
) -> ExactEvmPayment:
    """A payment signed by ``key`` over ``domain``; ``changes`` override payment/authorization fields."""
    outer = {name: changes.pop(name) for name in ("x402_version", "scheme", "network") if name in changes}
    authorization = Authorization(
        **{
            "from_address": PAYER,
            "to": PAY_TO.lower(),
            "value": AMOUNT,
            "valid_after": NOW - 60,
            "valid_before": NOW + 300,
            "nonce": bytes(range(32)),
            **changes,
        }
    )
    return ExactEvmPayment(
        x402_version=outer.get("x402_version", 1),
        scheme=outer.get("scheme", "exact"),
        network=outer.get("network", NETWORK),
        signature=sign_transfer(domain, authorization, key) if signature is None else signature,
        authorization=authorization,
    )


def rejection(candidate: ExactEvmPayment, **terms: Any) -> PaymentRejected:
    with pytest.raises(PaymentRejected) as caught:
        verify_exact_payment(candidate, **{**TERMS, **terms})
    assert caught.value.status == 400
    return caught.value


def test_a_valid_payment_passes() -> None:
    assert verify_exact_payment(payment(), **TERMS) is None


def test_a_valid_payment_passes_through_the_wire_format() -> None:
    decoded = decode_payment_header(encode_payment_header(payment()))
    verify_exact_payment(decoded, **TERMS)


def test_boundaries_pass() -> None:
    verify_exact_payment(payment(valid_after=NOW, valid_before=NOW + MARGIN), **TERMS)


def test_pay_to_is_compared_case_insensitively() -> None:
    verify_exact_payment(payment(), **{**TERMS, "pay_to": PAY_TO.lower()})
    verify_exact_payment(payment(), **{**TERMS, "pay_to": "0x" + PAY_TO[2:].upper()})


@pytest.mark.parametrize("version", [0, 3])
def test_wrong_version(version: int) -> None:
    rejected = rejection(payment(x402_version=version))
    assert rejected.reason == "invalid_x402_version"
    assert f"x402Version {version} is not supported; expected 1 or 2" in rejected.message


def test_version_2_without_accepted() -> None:
    rejected = rejection(payment(x402_version=2))
    assert rejected.reason == "invalid_payload"
    assert "must echo the requirements it accepted" in rejected.message


def test_wrong_scheme() -> None:
    rejected = rejection(payment(scheme="upto"))
    assert rejected.reason == "unsupported_scheme"
    assert "'upto'" in rejected.message


def test_wrong_network() -> None:
    rejected = rejection(payment(network="base"))
    assert rejected.reason == "network_mismatch"
    assert "'base'" in rejected.message and "'base-sepolia'" in rejected.message


def test_signed_by_someone_else() -> None:
    rejected = rejection(payment(key=OTHER_KEY))
    assert rejected.reason == "invalid_exact_evm_payload_signature"
    assert Account.from_key(OTHER_KEY).address.lower() in rejected.message
    assert f"not authorization.from {PAYER}" in rejected.message


@pytest.mark.parametrize(
    "field, value",
    [
        ("name", "USD Coin"),
        ("version", "1"),
        ("chain_id", 8453),
        ("verifying_contract", "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
    ],
)
def test_signed_over_another_domain(field: str, value: object) -> None:
    other_domain = dataclasses.replace(DOMAIN, **{field: value})
    rejected = rejection(payment(domain=other_domain))
    assert rejected.reason == "invalid_exact_evm_payload_signature"
    assert "another EIP-712 domain" in rejected.message
    assert "chainId 84532" in rejected.message


def test_authorization_changed_after_signing() -> None:
    signed = payment()
    tampered = dataclasses.replace(
        signed, authorization=dataclasses.replace(signed.authorization, nonce=bytes(32))
    )
    assert rejection(tampered).reason == "invalid_exact_evm_payload_signature"


def test_malformed_signature_keeps_its_own_message() -> None:
    good = payment().signature
    high_s = (
        good[:32]
        + (SECP256K1_N - int.from_bytes(good[32:64], "big")).to_bytes(32, "big")
        + bytes((55 - good[64],))
    )
    rejected = rejection(payment(signature=high_s))
    assert rejected.reason == "invalid_exact_evm_payload_signature"
    assert "high-s" in rejected.message


def test_a_contract_wallets_signature_is_accepted_by_its_shape() -> None:
    """ERC-1271 signatures (any length but an EOA's 65 bytes) and ERC-6492-wrapped ones can only be
    checked on chain: the ingress takes them by their shape; payment-sender's pre-flight decides."""
    good = payment().signature
    verify_exact_payment(payment(signature=b"\x01" + good), **TERMS)  # a wallet's own format
    wrapped = abi_encode(["address", "bytes", "bytes"], ["0x" + "fa" * 20, b"\xca\x11", b"\x01" + good])
    factories = frozenset({"0x" + "fa" * 20})
    verify_exact_payment(payment(signature=wrapped + ERC6492_MAGIC), **TERMS, wallet_factories=factories)
    # Not deployed yet, by a factory we do not deploy with: its code would run in our transaction.
    refused = rejection(payment(signature=wrapped + ERC6492_MAGIC))
    assert refused.reason == "invalid_exact_evm_payload_undeployed_smart_wallet"
    assert "ERC6492_FACTORIES" in refused.message
    for malformed in (b"\x00" * 40 + ERC6492_MAGIC, b"", b"\x01" * (MAX_SIGNATURE_BYTES + 1)):
        assert rejection(payment(signature=malformed)).reason == "invalid_exact_evm_payload_signature"
    # 65 bytes is an EOA's: it must recover to `from`, as before.
    assert rejection(payment(signature=b"\x01" + good[1:])).reason == "invalid_exact_evm_payload_signature"


def test_pays_someone_else() -> None:
    rejected = rejection(payment(to="0x" + "ab" * 20))
    assert rejected.reason == "invalid_exact_evm_payload_recipient_mismatch"
    assert "0x" + "ab" * 20 in rejected.message and PAY_TO.lower() in rejected.message


@pytest.mark.parametrize("value", [AMOUNT - 1, AMOUNT + 1, 0, 2 * AMOUNT])
def test_value_must_be_exact(value: int) -> None:
    rejected = rejection(payment(value=value))
    assert rejected.reason == "invalid_exact_evm_payload_authorization_value_mismatch"
    assert f"value is {value}, but the price is exactly {AMOUNT}" in rejected.message


@pytest.mark.parametrize("ahead", [1, 5, 10**9])
def test_not_valid_yet(ahead: int) -> None:
    rejected = rejection(payment(valid_after=NOW + ahead))
    assert rejected.reason == "invalid_exact_evm_payload_authorization_valid_after"
    assert f"is {ahead}s in the future" in rejected.message


@pytest.mark.parametrize("valid_before, words", [(NOW - 10, "expired 10s ago"), (NOW, "expired 0s ago")])
def test_expired(valid_before: int, words: str) -> None:
    rejected = rejection(payment(valid_before=valid_before))
    assert rejected.reason == "invalid_exact_evm_payload_authorization_valid_before"
    assert words in rejected.message


def test_expires_within_the_settle_margin() -> None:
    rejected = rejection(payment(valid_before=NOW + MARGIN - 1))
    assert rejected.reason == "invalid_exact_evm_payload_authorization_valid_before"
    assert f"expires in {MARGIN - 1}s, less than the {MARGIN}s needed to settle" in rejected.message


def test_valid_for_longer_than_advertised() -> None:
    """validBefore is capped (maxTimeoutSeconds plus skew): such an authorization is settled, then
    forgotten, for good (an archived one replayed is refused as expired)."""
    verify_exact_payment(payment(valid_before=NOW + 360), **TERMS, max_valid_for=360)
    rejected = rejection(payment(valid_before=NOW + 361), max_valid_for=360)
    assert rejected.reason == "invalid_exact_evm_payload_authorization_valid_before"
    assert "valid for 361s; at most 360s is accepted" in rejected.message
    verify_exact_payment(payment(valid_before=NOW + 10**9), **TERMS)  # no cap given: none applied


def test_cheap_checks_are_reported_before_the_signature() -> None:
    rejected = rejection(payment(key=OTHER_KEY, value=AMOUNT + 1))
    assert rejected.reason == "invalid_exact_evm_payload_authorization_value_mismatch"
