"""Many calls in one transaction through Multicall3's `aggregate3`, each call allowed to fail alone.

Multicall3 lives at the same address on every chain that has it (Base included); the dev chain gets
its canonical runtime code (`contracts/vendor/`). With `allowFailure` set on every call, one payment
whose authorization cannot move the money does not take the others down: its call fails, the
transaction succeeds, and the receipt's logs say, payment by payment, which money moved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from eth_abi.abi import decode
from eth_hash.auto import keccak

CANONICAL_ADDRESS = "0xca11bde05977b3631167028862be2a173976ca11"
RUNTIME_CODE_FILE = Path(__file__).resolve().parents[2] / "contracts" / "vendor" / "Multicall3.runtime.hex"

_AGGREGATE3 = keccak(b"aggregate3((address,bool,bytes)[])")[:4]
_RESULT = "(bool,bytes)[]"


@dataclass(frozen=True, slots=True)
class CallResult:
    success: bool
    return_data: bytes


def encode_aggregate3(calls: Sequence[tuple[str, bytes]]) -> bytes:
    """Calldata for `aggregate3` over (target, calldata) pairs, every call allowed to fail. Laid out
    by hand — the ABI of `(address,bool,bytes)[]` is a few fixed words around each call's bytes — as
    eth_abi took a millisecond for fifty calls, three times a batch (tests/unit/test_multicall.py
    checks it against eth_abi's)."""
    heads, tails, offset = [], [], 32 * len(calls)
    for target, data in calls:
        padded = data + bytes(-len(data) % 32)
        tail = b"".join(
            (bytes(12), bytes.fromhex(target.removeprefix("0x")), _TRUE, _BYTES_AT, _word(len(data)), padded)
        )
        heads.append(_word(offset))
        tails.append(tail)
        offset += len(tail)
    return b"".join((_AGGREGATE3, _word(32), _word(len(calls)), *heads, *tails))


def _word(n: int) -> bytes:
    return n.to_bytes(32, "big")


_TRUE = _word(1)  # allowFailure
_BYTES_AT = _word(96)  # a call's bytes start after its three head words (target, allowFailure, offset)


def decode_aggregate3(output: bytes) -> list[CallResult]:
    """The (success, returnData) of each call, from `aggregate3`'s return value."""
    (results,) = decode([_RESULT], output)
    return [CallResult(bool(ok), bytes(data)) for ok, data in results]


def runtime_code() -> bytes:
    """Canonical Multicall3 runtime code, for installing it on a dev chain."""
    return bytes.fromhex(RUNTIME_CODE_FILE.read_text(encoding="ascii").strip().removeprefix("0x"))
