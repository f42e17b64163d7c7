"""The `transferWithAuthorization` calls that settle payments: calldata, pre-flight (and what a
refused one becomes), and packing many of them into one Multicall3 transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from eth_typing import HexStr
from web3 import Web3
from web3.exceptions import ContractLogicError

from shared.chain import multicall
from shared.chain.reverts import AUTHORIZATION_USED, EXPIRED, reason_from_return_data, revert_reason
from shared.settlement.authorizations import Fate, Outcome

# Gas for the aggregate3 frame itself, on top of each call's own limit.
AGGREGATE_GAS_BASE = 40_000


@dataclass(frozen=True, slots=True)
class Unavailable:
    """The node did not answer the pre-flight: try this payment again later."""

    error: str


# None: the call would move the money; str: why it would revert; Unavailable: no answer.
Preflight = str | Unavailable | None


def transfer_args(
    payer: str, pay_to: str, value: int, valid_after: int, valid_before: int, nonce: bytes, signature: bytes
) -> list[Any]:
    """The arguments of `transferWithAuthorization` (v, r, s split from the 65-byte signature)."""
    return [
        Web3.to_checksum_address(payer),
        Web3.to_checksum_address(pay_to),
        value,
        valid_after,
        valid_before,
        nonce,
        signature[64],
        signature[:32],
        signature[32:64],
    ]


def transfer_calldata(usdc_abi: Any, row: Mapping[str, Any]) -> bytes:
    args = transfer_args(
        row["payer"],
        row["token_address"],
        int(row["amount"]),
        int(row["valid_after"]),
        int(row["valid_before"]),
        bytes.fromhex(str(row["nonce"]).removeprefix("0x")),
        bytes.fromhex(str(row["signature"]).removeprefix("0x")),
    )
    return bytes.fromhex(str(usdc_abi.encode_abi("transferWithAuthorization", args=args)).removeprefix("0x"))


@dataclass(frozen=True, slots=True)
class PlannedTx:
    """What one payment transaction carries: a direct call, or an aggregate of several."""

    to: str
    data: bytes
    gas: int


def plan(calls: Sequence[tuple[str, bytes]], *, aggregator: str, gas_per_call: int) -> PlannedTx:
    """One call goes straight to the asset; several go through Multicall3 (when one is configured)."""
    if len(calls) == 1 or not aggregator:
        if len(calls) != 1:
            raise ValueError("without an aggregator a transaction carries exactly one call")
        to, data = calls[0]
        return PlannedTx(to, data, gas_per_call)
    return PlannedTx(
        aggregator, multicall.encode_aggregate3(calls), AGGREGATE_GAS_BASE + gas_per_call * len(calls)
    )


def preflight(
    w3: Web3, sender: str, calls: Mapping[Any, tuple[str, bytes]], aggregator: str
) -> dict[Any, Preflight]:
    """eth_call every transfer: one aggregate3 call for the lot when possible, else one call each."""
    if aggregator and len(calls) > 1:
        keys = list(calls)
        try:
            output = w3.eth.call(
                {
                    "from": Web3.to_checksum_address(sender),
                    "to": Web3.to_checksum_address(aggregator),
                    "data": HexStr("0x" + multicall.encode_aggregate3([calls[k] for k in keys]).hex()),
                }
            )
            results = multicall.decode_aggregate3(bytes(output))
        except Exception as exc:  # no answer for the lot: each waits and is tried again
            gone = Unavailable(f"pre-flight unavailable: {type(exc).__name__}: {exc}"[:500])
            return dict.fromkeys(keys, gone)
        return {
            k: None if res.success else reason_from_return_data(res.return_data)
            for k, res in zip(keys, results, strict=True)
        }
    return {k: _single(w3, sender, *call) for k, call in calls.items()}


def _single(w3: Web3, sender: str, to: str, data: bytes) -> Preflight:
    try:
        w3.eth.call(
            {
                "from": Web3.to_checksum_address(sender),
                "to": Web3.to_checksum_address(to),
                "data": HexStr("0x" + data.hex()),
            }
        )
    except ContractLogicError as exc:
        return revert_reason(exc)
    except Exception as exc:  # the node did not answer for this one: it waits, the others go on
        return Unavailable(f"pre-flight unavailable: {type(exc).__name__}: {exc}"[:500])
    return None


class Next(StrEnum):
    """What a payment whose pre-flight was refused becomes."""

    WAIT = "wait"  # look again after a backoff: the chain may still change its answer
    FAIL = "fail"  # failed for good: this authorization can never move the money
    FAIL_WATCHED = "fail_watched"  # failed, but watched until validBefore: it may still be paid
    FINAL = "final"  # the chain's outcome is final (paid, used elsewhere, cancelled): write it
    REVIEW = "review"  # used, but how stayed unknown look after look: an operator decides


def after_refusal(
    reason: str, outcome: Outcome | None, *, valid_before: int, attempts: int, review_attempts: int
) -> tuple[Next, str]:
    """A refusal (a revert reason at the head) is never a verdict by itself: where the authorization
    stands at a block CONFIRMATIONS deep decides (`outcome`; None when that lookup failed). An expired
    authorization may well have been used — and paid — before it expired; one used at the head may not
    be used at depth yet. Pure."""
    if outcome is None or outcome.fate is Fate.UNDETERMINED:
        why = (
            outcome.detail if outcome is not None else f"the authorization could not be looked up ({reason})"
        )
        return (Next.REVIEW, why) if attempts >= review_attempts else (Next.WAIT, why)
    if outcome.fate is not Fate.UNUSED:
        return Next.FINAL, outcome.fate.value
    if AUTHORIZATION_USED in reason:
        return Next.WAIT, "authorization used in a block not yet deep enough"
    if outcome.at.timestamp >= valid_before:
        return Next.FAIL, "authorization_expired: it expired unused"
    if EXPIRED in reason:
        return Next.WAIT, "authorization expired at the head, not yet at depth"
    return Next.FAIL_WATCHED, reason
