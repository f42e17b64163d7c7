"""EIP-3009 digest, signing and recovery, cross-checked against eth_account; and mint ids."""

from __future__ import annotations

import os
from typing import Any

import coincurve
import pytest
from eth_abi.packed import encode_packed
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.settlement.mint_ids import mint_id
from shared.x402.eip3009 import (
    SECP256K1_N,
    SIGNATURE_REASON,
    Authorization,
    Eip712Domain,
    SignatureError,
    domain_separator,
    recover_signer,
    sign_transfer,
    transfer_digest,
)

SECP256K1_P = 2**256 - 2**32 - 977
UINT256_MAX = 2**256 - 1

USDC_BASE = Eip712Domain("USD Coin", "2", 8453, "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913")
PAYER_KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
PAYER = Account.from_key(PAYER_KEY).address.lower()
AUTH = Authorization(
    from_address=PAYER,
    to="0x209693bc6afc0c5328ba36faf03c514ef312287c",
    value=10_000,
    valid_after=1_740_672_089,
    valid_before=1_740_672_154,
    nonce=bytes.fromhex("f3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480"),
)

TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "TransferWithAuthorization": [
        {"name": "from", "type": "address"},
        {"name": "to", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "validAfter", "type": "uint256"},
        {"name": "validBefore", "type": "uint256"},
        {"name": "nonce", "type": "bytes32"},
    ],
}


def typed_data(domain: Eip712Domain, auth: Authorization) -> dict[str, Any]:
    """The same message in eth_account's full-message form."""
    return {
        "types": TYPES,
        "primaryType": "TransferWithAuthorization",
        "domain": {
            "name": domain.name,
            "version": domain.version,
            "chainId": domain.chain_id,
            "verifyingContract": to_checksum_address(domain.verifying_contract),
        },
        "message": {
            "from": to_checksum_address(auth.from_address),
            "to": to_checksum_address(auth.to),
            "value": auth.value,
            "validAfter": auth.valid_after,
            "validBefore": auth.valid_before,
            "nonce": auth.nonce,
        },
    }


def eth_account_digest(domain: Eip712Domain, auth: Authorization) -> bytes:
    signable = encode_typed_data(full_message=typed_data(domain, auth))
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def with_s_v(signature: bytes, *, s: int | None = None, v: int | None = None, r: int | None = None) -> bytes:
    """``signature`` with r, s and/or v replaced."""
    r_bytes = signature[:32] if r is None else r.to_bytes(32, "big")
    s_bytes = signature[32:64] if s is None else s.to_bytes(32, "big")
    return r_bytes + s_bytes + bytes((signature[64] if v is None else v,))


addresses = st.binary(min_size=20, max_size=20).map(lambda raw: "0x" + raw.hex())
uint256 = st.integers(min_value=0, max_value=UINT256_MAX)
domains = st.builds(
    Eip712Domain,
    name=st.text(max_size=40),
    version=st.text(max_size=10),
    chain_id=st.one_of(st.integers(min_value=1, max_value=2**64), uint256),
    verifying_contract=addresses.flatmap(
        lambda a: st.sampled_from([a, a.upper().replace("0X", "0x"), to_checksum_address(a)])
    ),
)
authorizations = st.builds(
    Authorization,
    from_address=addresses,
    to=addresses,
    value=uint256,
    valid_after=uint256,
    valid_before=uint256,
    nonce=st.binary(min_size=32, max_size=32),
)
private_keys = st.integers(min_value=1, max_value=SECP256K1_N - 1).map(lambda k: k.to_bytes(32, "big"))


# --- digest and domain separator -------------------------------------------------------------


def test_domain_separator_matches_deployed_usdc() -> None:
    # DOMAIN_SEPARATOR() of USDC on Ethereum mainnet and on Base, as read from the contracts.
    mainnet = Eip712Domain("USD Coin", "2", 1, "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48")
    assert (
        domain_separator(mainnet).hex() == "06c37168a7db5138defc7866392bb87a741f9b3d104deb5094588ce041cae335"
    )
    assert (
        domain_separator(USDC_BASE).hex()
        == "02fa7265e7c5d81118673727957699e4d68f74cd74b7db77da710fe8a2c7834f"
    )


@settings(max_examples=300, deadline=None)
@given(domain=domains, auth=authorizations)
def test_digest_and_domain_separator_match_eth_account(domain: Eip712Domain, auth: Authorization) -> None:
    signable = encode_typed_data(full_message=typed_data(domain, auth))
    assert domain_separator(domain) == signable.header
    assert transfer_digest(domain, auth) == eth_account_digest(domain, auth)


def test_domain_separator_ignores_contract_case_and_is_cached() -> None:
    lower = Eip712Domain("USDC", "2", 84532, "0x036cbd53842c5426634e7929541ec2318f3dcf7e")
    checksummed = Eip712Domain("USDC", "2", 84532, "0x036CbD53842c5426634e7929541eC2318f3dCF7e")
    assert domain_separator(lower) == domain_separator(checksummed)
    hits = domain_separator.cache_info().hits
    domain_separator(lower)
    assert domain_separator.cache_info().hits == hits + 1


@pytest.mark.parametrize(
    "field, value",
    [("name", "USDC"), ("version", "1"), ("chain_id", 84532), ("verifying_contract", "0x" + "11" * 20)],
)
def test_every_domain_field_changes_the_digest(field: str, value: object) -> None:
    other = Eip712Domain(**{**_domain_fields(USDC_BASE), field: value})
    assert transfer_digest(other, AUTH) != transfer_digest(USDC_BASE, AUTH)


def _domain_fields(domain: Eip712Domain) -> dict[str, Any]:
    return {
        "name": domain.name,
        "version": domain.version,
        "chain_id": domain.chain_id,
        "verifying_contract": domain.verifying_contract,
    }


# --- signing and recovery --------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(domain=domains, auth=authorizations, key=private_keys)
def test_sign_recover_round_trip(domain: Eip712Domain, auth: Authorization, key: bytes) -> None:
    signature = sign_transfer(domain, auth, key)
    assert len(signature) == 65
    assert signature[64] in (27, 28)
    assert int.from_bytes(signature[32:64], "big") <= SECP256K1_N // 2
    assert recover_signer(transfer_digest(domain, auth), signature) == Account.from_key(key).address.lower()


@settings(max_examples=50, deadline=None)
@given(domain=domains, auth=authorizations, key=private_keys)
def test_eth_account_signatures_verify(domain: Eip712Domain, auth: Authorization, key: bytes) -> None:
    signed = Account.sign_typed_data(key, full_message=typed_data(domain, auth))
    assert signed.message_hash == transfer_digest(domain, auth)
    assert recover_signer(signed.message_hash, signed.signature) == Account.from_key(key).address.lower()
    # Both sign deterministically (RFC 6979), low-s, v in {27, 28}: the bytes are identical.
    assert sign_transfer(domain, auth, key) == signed.signature


def test_sign_transfer_takes_hex_keys() -> None:
    signature = sign_transfer(USDC_BASE, AUTH, PAYER_KEY)
    assert sign_transfer(USDC_BASE, AUTH, "0x" + PAYER_KEY.hex()) == signature
    assert sign_transfer(USDC_BASE, AUTH, PAYER_KEY.hex()) == signature
    with pytest.raises(ValueError, match="32 bytes"):
        sign_transfer(USDC_BASE, AUTH, PAYER_KEY[:31])


def test_a_changed_message_recovers_someone_else() -> None:
    signature = sign_transfer(USDC_BASE, AUTH, PAYER_KEY)
    tampered = Authorization(
        AUTH.from_address, AUTH.to, AUTH.value + 1, AUTH.valid_after, AUTH.valid_before, AUTH.nonce
    )
    assert recover_signer(transfer_digest(USDC_BASE, tampered), signature) != PAYER


GOOD_SIGNATURE = sign_transfer(USDC_BASE, AUTH, PAYER_KEY)
GOOD_DIGEST = transfer_digest(USDC_BASE, AUTH)
GOOD_S = int.from_bytes(GOOD_SIGNATURE[32:64], "big")


def _x_not_on_curve() -> int:
    """The smallest x for which no curve point exists (x³ + 7 is not a square mod p)."""
    x = 1
    while pow((x**3 + 7) % SECP256K1_P, (SECP256K1_P - 1) // 2, SECP256K1_P) == 1:
        x += 1
    return x


@pytest.mark.parametrize(
    "signature, message",
    [
        (b"", "signature is 0 bytes; expected 65"),
        (GOOD_SIGNATURE[:64], "signature is 64 bytes; expected 65"),
        (GOOD_SIGNATURE + b"\x00", "signature is 66 bytes; expected 65"),
        (GOOD_SIGNATURE + bytes(32), "signature is 97 bytes; expected 65"),
        (with_s_v(GOOD_SIGNATURE, v=0), "signature v is 0; expected 27 or 28"),
        (with_s_v(GOOD_SIGNATURE, v=1), "signature v is 1; expected 27 or 28"),
        (with_s_v(GOOD_SIGNATURE, v=29), "signature v is 29; expected 27 or 28"),
        (with_s_v(GOOD_SIGNATURE, r=0), "signature r is zero"),
        (with_s_v(GOOD_SIGNATURE, r=SECP256K1_N), "signature r is not below the secp256k1 curve order"),
        (with_s_v(GOOD_SIGNATURE, r=2**256 - 1), "signature r is not below the secp256k1 curve order"),
        (with_s_v(GOOD_SIGNATURE, s=0), "signature s is zero"),
        (with_s_v(GOOD_SIGNATURE, s=SECP256K1_N), "signature s is not below the secp256k1 curve order"),
        (
            with_s_v(GOOD_SIGNATURE, s=SECP256K1_N - GOOD_S, v=55 - GOOD_SIGNATURE[64]),
            "signature s is in the upper half of the curve order (malleable high-s form)",
        ),
        (with_s_v(GOOD_SIGNATURE, s=SECP256K1_N // 2 + 1), "malleable high-s form"),
        (with_s_v(GOOD_SIGNATURE, r=_x_not_on_curve()), "no public key can be recovered from this signature"),
    ],
    ids=[
        "empty",
        "64-bytes",
        "66-bytes",
        "97-bytes",
        "v=0",
        "v=1",
        "v=29",
        "r=0",
        "r=n",
        "r=max",
        "s=0",
        "s=n",
        "high-s-flip",
        "s=n/2+1",
        "r-not-on-curve",
    ],
)
def test_signature_defects_are_rejected(signature: bytes, message: str) -> None:
    with pytest.raises(SignatureError) as caught:
        recover_signer(GOOD_DIGEST, signature)
    assert caught.value.reason == "invalid_exact_evm_payload_signature"
    assert caught.value.reason == SIGNATURE_REASON
    assert message in caught.value.message
    assert str(caught.value) == caught.value.message


def test_high_s_flip_is_the_same_signature_in_malleable_form() -> None:
    """The rejected high-s twin really is a valid secp256k1 signature by the same key."""
    flipped = with_s_v(GOOD_SIGNATURE, s=SECP256K1_N - GOOD_S, v=55 - GOOD_SIGNATURE[64])
    public_key = coincurve.PublicKey.from_signature_and_message(
        flipped[:64] + bytes((flipped[64] - 27,)), GOOD_DIGEST, hasher=None
    )
    assert "0x" + keccak(public_key.format(compressed=False)[1:])[12:].hex() == PAYER
    assert recover_signer(GOOD_DIGEST, GOOD_SIGNATURE) == PAYER


def test_v_28_and_27_recover_different_keys() -> None:
    other_v = with_s_v(GOOD_SIGNATURE, v=55 - GOOD_SIGNATURE[64])
    assert recover_signer(GOOD_DIGEST, other_v) != PAYER


def test_digest_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="digest must be 32 bytes") as caught:
        recover_signer(GOOD_DIGEST[:31], GOOD_SIGNATURE)
    assert not isinstance(caught.value, SignatureError)


# --- value objects -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"from_address": PAYER.upper().replace("0X", "0x")}, "from_address must be a lowercase 0x address"),
        ({"to": "0x" + "ab" * 19}, "to must be a lowercase 0x address"),
        ({"value": -1}, "value must be an int"),
        ({"value": 2**256}, "value must be an int"),
        ({"value": True}, "value must be an int"),
        ({"valid_after": 1.0}, "valid_after must be an int"),
        ({"valid_before": "1"}, "valid_before must be an int"),
        ({"nonce": bytes(31)}, "nonce must be exactly 32 bytes"),
        ({"nonce": "00" * 32}, "nonce must be exactly 32 bytes"),
    ],
)
def test_authorization_validates_its_fields(changes: dict[str, Any], message: str) -> None:
    fields = {
        "from_address": AUTH.from_address,
        "to": AUTH.to,
        "value": AUTH.value,
        "valid_after": AUTH.valid_after,
        "valid_before": AUTH.valid_before,
        "nonce": AUTH.nonce,
    }
    with pytest.raises(ValueError, match=message):
        Authorization(**{**fields, **changes})


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"verifying_contract": "0x1234"}, "verifying_contract is not a 0x address"),
        ({"verifying_contract": "833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"}, "verifying_contract is not"),
        ({"chain_id": -1}, "chain_id must be an int"),
        ({"chain_id": True}, "chain_id must be an int"),
        ({"name": b"USDC"}, "name and version must be strings"),
    ],
)
def test_domain_validates_its_fields(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Eip712Domain(**{**_domain_fields(USDC_BASE), **changes})


# --- mint ids ----------------------------------------------------------------------------------

TOKEN = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
ASSET = "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512"
NONCE = bytes(range(32))


def test_mint_id_is_the_purchase_key_then_the_index_byte() -> None:
    key = keccak(
        encode_packed(
            ["address", "address", "address", "bytes32"],
            [to_checksum_address(TOKEN), to_checksum_address(ASSET), to_checksum_address(PAYER), NONCE],
        )
    )
    assert len(encode_packed(["address"], [TOKEN])) == 20  # packed, not padded to 32
    assert mint_id(TOKEN, ASSET, PAYER, NONCE, 7) == key[:31] + b"\x07"
    # The units of one purchase share the contract's bitmap word (id >> 8), each its own bit.
    words = {int.from_bytes(mint_id(TOKEN, ASSET, PAYER, NONCE, i), "big") >> 8 for i in range(10)}
    assert len(words) == 1


def test_mint_id_is_deterministic_and_ignores_address_case() -> None:
    first = mint_id(TOKEN, ASSET, PAYER, NONCE, 0)
    assert mint_id(TOKEN, ASSET, PAYER, NONCE, 0) == first
    assert mint_id(to_checksum_address(TOKEN), ASSET.upper().replace("0X", "0x"), PAYER, NONCE, 0) == first


def test_mint_id_differs_by_every_input() -> None:
    base = mint_id(TOKEN, ASSET, PAYER, NONCE, 0)
    variants = [
        mint_id(TOKEN, ASSET, PAYER, NONCE, 1),
        mint_id(TOKEN, ASSET, PAYER, NONCE, 255),
        mint_id(TOKEN, ASSET, PAYER, bytes(32), 0),
        mint_id(TOKEN, ASSET, "0x" + "00" * 20, NONCE, 0),
        mint_id("0x" + "00" * 20, ASSET, PAYER, NONCE, 0),
        mint_id(TOKEN, "0x" + "00" * 20, PAYER, NONCE, 0),
    ]
    assert len({base, *variants}) == 1 + len(variants)


@given(indexes=st.lists(st.integers(min_value=0, max_value=255), min_size=2, max_size=20, unique=True))
def test_mint_ids_of_one_payment_are_distinct(indexes: list[int]) -> None:
    ids = {mint_id(TOKEN, ASSET, PAYER, NONCE, index) for index in indexes}
    assert len(ids) == len(indexes)


@pytest.mark.parametrize(
    "args, message",
    [
        ((TOKEN, ASSET, PAYER, NONCE, -1), "index must be an int in"),
        ((TOKEN, ASSET, PAYER, NONCE, 256), "index must be an int in"),
        ((TOKEN, ASSET, PAYER, NONCE, True), "index must be an int in"),
        ((TOKEN, ASSET, PAYER, NONCE[:31], 0), "nonce must be exactly 32 bytes"),
        (("0x1234", ASSET, PAYER, NONCE, 0), "token is not a 0x address"),
        ((TOKEN, ASSET[2:], PAYER, NONCE, 0), "asset is not a 0x address"),
        ((TOKEN, ASSET, PAYER + "00", NONCE, 0), "payer is not a 0x address"),
    ],
)
def test_mint_id_rejects_bad_input(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mint_id(*args)


def test_random_nonces_give_distinct_ids() -> None:
    ids = {mint_id(TOKEN, ASSET, PAYER, os.urandom(32), 0) for _ in range(100)}
    assert len(ids) == 100
