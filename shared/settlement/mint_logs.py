"""What a batchMint receipt says about each mint id (MintToken's TokensMinted / MintSkipped logs)."""

from __future__ import annotations

from typing import Any

from eth_hash.auto import keccak

TOKENS_MINTED_TOPIC = keccak(b"TokensMinted(address,uint256,bytes32)")
MINT_SKIPPED_TOPIC = keccak(b"MintSkipped(bytes32,uint8)")
SKIP_ALREADY_MINTED = 1  # the id is on chain already: as good as minted
SKIP_REASONS = {2: "sold_out", 3: "invalid_recipient"}  # the id can never be minted


def _bytes(value: Any) -> bytes:
    return bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)


def mint_results(receipt: Any) -> tuple[set[str], dict[str, str]]:
    """(mint ids minted or already minted, {mint id: why it can never be minted}) from the receipt."""
    minted: set[str] = set()
    refused: dict[str, str] = {}
    for entry in receipt["logs"]:
        topics = [_bytes(t) for t in entry["topics"]]
        if len(topics) == 3 and topics[0] == TOKENS_MINTED_TOPIC:
            minted.add("0x" + topics[2].hex())
        elif len(topics) == 2 and topics[0] == MINT_SKIPPED_TOPIC:
            reason = int.from_bytes(_bytes(entry["data"]), "big")
            key = "0x" + topics[1].hex()
            if reason == SKIP_ALREADY_MINTED:
                minted.add(key)
            else:
                refused[key] = SKIP_REASONS.get(reason, f"skipped (reason {reason})")
    return minted, refused
