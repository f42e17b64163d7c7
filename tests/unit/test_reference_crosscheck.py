"""Cross-check with the official ``x402`` package (reference facilitator and client), chain-free.

Payments we sign (shared.eip3009) and encode (shared.x402) must pass the reference facilitator's
local verification and ours; each forgery must fail both, with the same reason. The reference
client, fed our 402, must produce payments we accept. Chain reads go to a stub signer: the payer
has no code (an EOA), the asset has code, and simulating ``transferWithAuthorization`` succeeds.
The reference reads the wall clock, so these tests do too.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any, cast

import pytest
from eth_account import Account
from x402 import x402ClientSync
from x402.http.utils import (
    decode_payment_required_header,
    decode_payment_response_header,
)
from x402.http.utils import (
    decode_payment_signature_header as reference_decode_signature,
)
from x402.http.utils import (
    encode_payment_signature_header as reference_encode_signature,
)
from x402.mechanisms.evm import asset_cache, constants
from x402.mechanisms.evm.exact import ExactEvmFacilitatorScheme, ExactEvmScheme
from x402.mechanisms.evm.exact.v1.client import ExactEvmSchemeV1 as ReferenceClientV1
from x402.mechanisms.evm.exact.v1.facilitator import ExactEvmSchemeV1 as ReferenceFacilitatorV1
from x402.mechanisms.evm.signer import FacilitatorEvmSigner
from x402.mechanisms.evm.v1.constants import V1_NETWORK_CHAIN_IDS
from x402.schemas import PaymentPayload, PaymentRequired, PaymentRequirements, VerifyResponse
from x402.schemas.v1 import PaymentPayloadV1, PaymentRequiredV1, PaymentRequirementsV1

from api.verification import verify_exact_payment
from shared.x402 import (
    INVALID_RECIPIENT,
    INVALID_SIGNATURE,
    INVALID_VALID_AFTER,
    INVALID_VALID_BEFORE,
    NETWORK_MISMATCH,
    UNSUPPORTED_SCHEME,
    V1_NETWORKS,
    VALUE_MISMATCH,
    ExactEvmPayment,
    PaymentRejected,
    decode_payment_header,
    decode_payment_signature_header,
    encode_payment_header,
    encode_payment_required,
    encode_payment_response,
    encode_payment_signature_header,
    payment_required_v2,
    payment_requirements,
    requirement_v2,
)
from shared.x402.eip3009 import Authorization, Eip712Domain, sign_transfer

PAYER_KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
PAYER = Account.from_key(PAYER_KEY).address.lower()
OTHER_KEY = bytes.fromhex("8da4ef21b864d2cc526dbdb2a120bd2874c36c9d0a1fb7f8c63d7f7a8b41de8f")
PAY_TO = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
ASSET = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
DOMAIN = Eip712Domain("USDC", "2", 84532, ASSET)
NETWORKS = {1: "base-sepolia", 2: "eip155:84532"}
OTHER_NETWORKS = {1: "base", 2: "eip155:8453"}
AMOUNT = 10_000
RESOURCE = "http://localhost/api/mint/0x00000000000000000000000000000000000000aa"
MARGIN = 6  # the reference wants validBefore >= now + 6

#: v1 names the Python SDK maps to other chain ids than its TypeScript and Go SDKs (and we) do.
PYTHON_SDK_V1_DIVERGENCES = {"story", "educhain", "skale-base-sepolia", "sei-testnet"}

# The reference's own names for the reason codes we share with it.
assert (NETWORK_MISMATCH, UNSUPPORTED_SCHEME, INVALID_SIGNATURE, INVALID_RECIPIENT, VALUE_MISMATCH) == (
    constants.ERR_NETWORK_MISMATCH,
    constants.ERR_UNSUPPORTED_SCHEME,
    constants.ERR_INVALID_SIGNATURE,
    constants.ERR_RECIPIENT_MISMATCH,
    constants.ERR_AUTHORIZATION_VALUE_MISMATCH,
)
assert (INVALID_VALID_AFTER, INVALID_VALID_BEFORE) == (
    constants.ERR_VALID_AFTER_FUTURE,
    constants.ERR_VALID_BEFORE_EXPIRED,
)


class StubSigner:
    """A chain-free FacilitatorEvmSigner: only the asset has code; every contract call succeeds."""

    def get_addresses(self) -> list[str]:
        return ["0x" + "33" * 20]

    def get_code(self, address: str) -> bytes:
        return b"\x60\x80" if address.lower() == ASSET.lower() else b""

    def read_contract(self, address: str, abi: list[dict[str, Any]], function_name: str, *args: Any) -> None:
        return None  # simulating transferWithAuthorization succeeds

    def get_chain_id(self) -> int:
        return DOMAIN.chain_id


def stub_signer() -> FacilitatorEvmSigner:
    """StubSigner has just the methods the local verification calls (no writes, no receipts)."""
    return cast(FacilitatorEvmSigner, StubSigner())


@pytest.fixture(autouse=True)
def _fresh_asset_cache() -> Iterator[None]:
    asset_cache.reset_asset_contract_cache()
    yield
    asset_cache.reset_asset_contract_cache()


def v1_requirement() -> dict[str, object]:
    return payment_requirements(
        network=NETWORKS[1],
        max_amount=AMOUNT,
        resource=RESOURCE,
        description="Mint 1 x TOK",
        pay_to=PAY_TO,
        asset=ASSET,
        max_timeout_seconds=60,
        asset_name=DOMAIN.name,
        asset_version=DOMAIN.version,
    )


def v2_required() -> dict[str, object]:
    accepts = [
        requirement_v2(
            network=NETWORKS[2],
            amount=AMOUNT,
            asset=ASSET,
            pay_to=PAY_TO,
            max_timeout_seconds=60,
            asset_name=DOMAIN.name,
            asset_version=DOMAIN.version,
        )
    ]
    return payment_required_v2(
        accepts=accepts, resource_url=RESOURCE, description="Mint 1 x TOK", error="pay"
    )


@dataclasses.dataclass(frozen=True)
class Variant:
    """A payment: ``signed`` changes what is signed (and sent); ``shown`` then changes only what is
    sent, None restoring the genuine value; ``domain`` changes the domain signed over."""

    reason: str | None  # expected from both verifiers; None: valid
    signed: dict[str, Any] = dataclasses.field(default_factory=dict)
    shown: dict[str, Any] = dataclasses.field(default_factory=dict)
    key: bytes = PAYER_KEY
    domain: dict[str, Any] = dataclasses.field(default_factory=dict)
    other_network: bool = False


VARIANTS: dict[str, Variant] = {
    "genuine": Variant(None),
    "signed by another key": Variant(INVALID_SIGNATURE, key=OTHER_KEY),
    "value changed after signing": Variant(INVALID_SIGNATURE, signed={"value": 1}, shown={"value": None}),
    "to changed after signing": Variant(
        INVALID_SIGNATURE, signed={"to": "0x" + "44" * 20}, shown={"to": None}
    ),
    "nonce changed after signing": Variant(INVALID_SIGNATURE, shown={"nonce": bytes(32)}),
    "validBefore changed after signing": Variant(INVALID_SIGNATURE, shown={"valid_before": "+400"}),
    "signed value is not the price": Variant(VALUE_MISMATCH, signed={"value": AMOUNT + 1}),
    "signed to someone else": Variant(INVALID_RECIPIENT, signed={"to": "0x" + "44" * 20}),
    "expired": Variant(INVALID_VALID_BEFORE, signed={"valid_before": "-10"}),
    "expires within the margin": Variant(INVALID_VALID_BEFORE, signed={"valid_before": "+3"}),
    "not yet valid": Variant(INVALID_VALID_AFTER, signed={"valid_after": "+3600"}),
    "wrong domain version": Variant(INVALID_SIGNATURE, domain={"version": "1"}),
    "wrong domain name": Variant(INVALID_SIGNATURE, domain={"name": "USD Coin"}),
    "wrong chain id": Variant(INVALID_SIGNATURE, domain={"chain_id": 8453}),
    "wrong verifying contract": Variant(
        INVALID_SIGNATURE, domain={"verifying_contract": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"}
    ),
    "other network": Variant(NETWORK_MISMATCH, other_network=True),
}


def _when(value: Any, now: int) -> Any:
    """Resolve relative times: "+N" and "-N" are seconds from ``now``."""
    return now + int(value) if isinstance(value, str) and value[0] in "+-" else value


def build(version: int, variant: Variant, now: int) -> ExactEvmPayment:
    base = Authorization(PAYER, PAY_TO.lower(), AMOUNT, now - 600, now + 300, bytes(range(32)))
    signed = dataclasses.replace(base, **{k: _when(v, now) for k, v in variant.signed.items()})
    domain = dataclasses.replace(DOMAIN, **variant.domain)
    signature = sign_transfer(domain, signed, variant.key)
    shown_changes = {k: getattr(base, k) if v is None else _when(v, now) for k, v in variant.shown.items()}
    shown = dataclasses.replace(signed, **shown_changes)
    network = (OTHER_NETWORKS if variant.other_network else NETWORKS)[version]
    if version == 1:
        return ExactEvmPayment(1, "exact", network, signature, shown)
    required = v2_required()
    accepted = {**required["accepts"][0], "network": network}  # type: ignore[index]
    resource = required["resource"]
    return ExactEvmPayment(2, "exact", network, signature, shown, accepted=accepted, resource=resource)  # type: ignore[arg-type]


def reference_verdict(version: int, header: str) -> VerifyResponse:
    """The reference facilitator's verdict on our header, against our requirements (decoded by it too)."""
    decoded = reference_decode_signature(header)
    if version == 1:
        assert isinstance(decoded, PaymentPayloadV1)
        requirements_v1 = PaymentRequirementsV1.model_validate(v1_requirement())
        return ReferenceFacilitatorV1(stub_signer()).verify(decoded, requirements_v1)
    assert isinstance(decoded, PaymentPayload)
    required = decode_payment_required_header(encode_payment_required(v2_required()))
    assert isinstance(required, PaymentRequired)
    return ExactEvmFacilitatorScheme(stub_signer()).verify(decoded, required.accepts[0])


def our_verdict(version: int, header: str, now: int) -> str | None:
    """Our reason code for ``header`` (decoded and verified), or None if we accept it."""
    try:
        payment = decode_payment_header(header) if version == 1 else decode_payment_signature_header(header)
        verify_exact_payment(
            payment, network=NETWORKS[version], domain=DOMAIN, pay_to=PAY_TO, amount=AMOUNT, now=now,
            settle_margin=MARGIN, asset=ASSET,
        )  # fmt: skip
    except PaymentRejected as rejected:
        return rejected.reason
    return None


def encode(payment: ExactEvmPayment) -> str:
    return (
        encode_payment_header(payment)
        if payment.x402_version == 1
        else encode_payment_signature_header(payment)
    )


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_both_verifiers_agree(version: int, name: str) -> None:
    variant = VARIANTS[name]
    now = int(time.time())
    header = encode(build(version, variant, now))
    reference = reference_verdict(version, header)
    assert (reference.is_valid, reference.invalid_reason) == (variant.reason is None, variant.reason)
    assert our_verdict(version, header, now) == variant.reason


@pytest.mark.parametrize("version", [1, 2])
def test_high_s_signature_is_refused_by_us(version: int) -> None:
    """FiatToken rejects high-s signatures on chain; the reference leaves that to its simulation."""
    now = int(time.time())
    payment = build(version, VARIANTS["genuine"], now)
    sig = payment.signature
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high_s = sig[:32] + (n - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big") + bytes((55 - sig[64],))
    assert (
        our_verdict(version, encode(dataclasses.replace(payment, signature=high_s)), now) == INVALID_SIGNATURE
    )


def test_reference_client_payments_from_our_402_are_accepted() -> None:
    account = Account.from_key(PAYER_KEY)
    client = x402ClientSync()
    client.register("eip155:*", ExactEvmScheme(account))
    client.register_v1(NETWORKS[1], ReferenceClientV1(account))
    client.set_spend_controls(False)

    required = decode_payment_required_header(encode_payment_required(v2_required()))
    assert isinstance(required, PaymentRequired)
    v2_header = reference_encode_signature(client.create_payment_payload(required))
    payment = decode_payment_signature_header(v2_header)
    assert payment.accepted == v2_required()["accepts"][0]  # type: ignore[index]
    assert payment.resource == v2_required()["resource"]
    assert our_verdict(2, v2_header, int(time.time())) is None

    body = {"x402Version": 1, "error": "pay", "accepts": [v1_requirement()]}
    v1_header = reference_encode_signature(
        client.create_payment_payload(PaymentRequiredV1.model_validate(body))
    )
    assert decode_payment_header(v1_header).network == NETWORKS[1]
    assert our_verdict(1, v1_header, int(time.time())) is None


def test_our_v2_requirement_is_the_reference_model() -> None:
    ours = v2_required()["accepts"][0]  # type: ignore[index]
    reference = PaymentRequirements.model_validate(ours)
    assert reference.model_dump(by_alias=True, exclude_none=True) == ours


def test_payment_response_decodes_with_the_reference() -> None:
    header = encode_payment_response(success=True, transaction="", network=NETWORKS[2], payer=PAYER)
    response = decode_payment_response_header(header)
    assert (response.success, response.transaction, response.network, response.payer) == (
        True,
        "",
        NETWORKS[2],
        PAYER,
    )


def test_v1_network_names_agree_with_the_reference_where_it_agrees_with_typescript_and_go() -> None:
    ours = {name: chain_id for chain_id, name in V1_NETWORKS.items()}
    for name, chain_id in V1_NETWORK_CHAIN_IDS.items():
        if name in ours and name not in PYTHON_SDK_V1_DIVERGENCES:
            assert ours[name] == chain_id, name
