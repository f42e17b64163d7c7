"""Who signed: an EOA (65 bytes), a deployed contract wallet (ERC-1271: longer), or a wallet deployed
by its factory first (ERC-6492) — read from the signature's shape alone."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode

from shared.x402.wallets import ERC6492_MAGIC, MAX_SIGNATURE_BYTES, Signer, WalletSignatureError, parse

FACTORY = "0x" + "fa" * 20
INNER = b"\x01" + b"\x22" * 65


def wrapped(factory: str, calldata: bytes, inner: bytes) -> bytes:
    return encode(["address", "bytes", "bytes"], [factory, calldata, inner]) + ERC6492_MAGIC


def test_an_eoa_signature_is_65_bytes() -> None:
    assert parse(b"\x11" * 65).signer is Signer.EOA


def test_a_longer_signature_is_a_deployed_wallets() -> None:
    parsed = parse(INNER)
    assert parsed.signer is Signer.CONTRACT and parsed.signature == INNER


def test_erc6492_carries_the_factory_call_and_the_wallets_own_signature() -> None:
    parsed = parse(wrapped(FACTORY, b"\xca\x11\xda\x7a", INNER))
    assert parsed.signer is Signer.COUNTERFACTUAL
    assert (parsed.factory, parsed.factory_calldata, parsed.signature) == (
        FACTORY,
        b"\xca\x11\xda\x7a",
        INNER,
    )


@pytest.mark.parametrize("inner", [INNER, b"\x33" * 65])
def test_erc6492_without_a_factory_marks_a_deployed_wallets_signature(inner: bytes) -> None:
    parsed = parse(wrapped("0x" + "00" * 20, b"", inner))
    assert parsed.signer is Signer.CONTRACT and parsed.signature == inner  # 65 bytes too: a wallet's


@pytest.mark.parametrize(
    ("signature", "words"),
    [
        (b"", "empty"),
        (b"\x11" * 64, "64 bytes"),
        (b"\x11" * (MAX_SIGNATURE_BYTES + 1), "at most"),
        (b"\x00" * 40 + ERC6492_MAGIC, "malformed ERC-6492"),
        (wrapped(FACTORY, b"\x01", b""), "wraps no signature"),
    ],
)
def test_malformed_signatures_are_refused(signature: bytes, words: str) -> None:
    with pytest.raises(WalletSignatureError, match=words):
        parse(signature)
