"""The `transferWithAuthorization` calls that settle payments: calldata, pre-flight (and what a
refused one becomes), and packing many of them into one Multicall3 transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import requests
from eth_typing import HexStr
from web3 import Web3
from web3.exceptions import ContractLogicError

from shared.chain import calldata, multicall
from shared.chain.reverts import AUTHORIZATION_USED, EXPIRED, reason_from_return_data, revert_reason
from shared.settlement.authorizations import Fate, Outcome
from shared.x402 import wallets
from shared.x402.wallets import Signer

# Gas for the aggregate3 frame itself, on top of each call's own limit.
AGGREGATE_GAS_BASE = 40_000
# The node did not answer at all (as opposed to answering with an error).
_TRANSPORT = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, TimeoutError, OSError)


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


@dataclass(frozen=True, slots=True)
class Call:
    """One call of a payment transaction, with the gas it may use."""

    target: str
    data: bytes
    gas: int


#: Gas for deploying a wallet by its factory (ERC-6492), on top of the transfer's.
DEPLOY_GAS = 400_000
#: x402's reason when an undeployed wallet's factory call (ERC-6492) did not deploy it.
DEPLOYMENT_FAILED = "smart_wallet_deployment_failed"
#: What a payment whose wallet must be deployed first says when no Multicall3 can carry both calls.
NEEDS_AGGREGATOR = (
    "a wallet not deployed yet (ERC-6492) is deployed by its factory in the paying transaction:"
    " that needs Multicall3 (MULTICALL3_ADDRESS)"
)


@dataclass(frozen=True, slots=True)
class PaymentCalls:
    """The calls that pay one payment, and whether it must go alone: a contract wallet's payment runs
    the wallet's code (ERC-1271) — and, not deployed yet, its factory's — inside our transaction, where
    it could take all the gas or make the whole transaction revert. So it never shares a pre-flight
    or a transaction with other payments."""

    calls: list[Call]
    alone: bool


def calls_for(row: Mapping[str, Any], *, gas: int) -> PaymentCalls:
    """The calls that pay one payment: its `transferWithAuthorization` — the (v, r, s) form for an EOA's
    signature, the `bytes signature` form (FiatToken v2.2) for a contract wallet's, checked by its
    ERC-1271 — preceded, for a wallet not deployed yet (ERC-6492), by its factory call."""
    signed = wallets.parse(bytes.fromhex(str(row["signature"]).removeprefix("0x")))
    data = calldata.transfer_with_authorization(
        str(row["payer"]),
        str(row["token_address"]),
        int(row["amount"]),
        int(row["valid_after"]),
        int(row["valid_before"]),
        bytes.fromhex(str(row["nonce"]).removeprefix("0x")),
        signed.signature,
        split=signed.signer is Signer.EOA,  # else the bytes form, checked by the wallet (ERC-1271)
    )
    transfer = Call(str(row["asset"]), data, gas)
    if signed.signer is Signer.COUNTERFACTUAL:
        return PaymentCalls([Call(signed.factory, signed.factory_calldata, DEPLOY_GAS), transfer], alone=True)
    return PaymentCalls([transfer], alone=signed.signer is not Signer.EOA)


def alone_where_code(
    calls: Mapping[Any, PaymentCalls], payers: Mapping[Any, str], has_code: Mapping[str, bool]
) -> dict[Any, PaymentCalls]:
    """An EOA-signed payment whose payer holds code (an EOA delegated with EIP-7702) goes alone too:
    USDC asks that code (ERC-1271) inside our transaction, where it could burn the gas of every call
    after it. A payer whose code could not be read counts as one that has it. Pure."""
    return {
        k: PaymentCalls(c.calls, alone=True) if not c.alone and has_code.get(payers[k], True) else c
        for k, c in calls.items()
    }


def transactions(payments: Mapping[Any, PaymentCalls], ids: Sequence[Any], *, size: int) -> list[list[Any]]:
    """How payments go out: those that may share a transaction, `size` at a time; each other alone."""
    shared = [i for i in ids if not payments[i].alone]
    return [shared[n : n + size] for n in range(0, len(shared), size)] + [
        [i] for i in ids if payments[i].alone
    ]


@dataclass(frozen=True, slots=True)
class PlannedTx:
    """What one payment transaction carries: a direct call, or an aggregate of several."""

    to: str
    data: bytes
    gas: int


def plan(calls: Sequence[Call], *, aggregator: str, gas_each: int | None = None) -> PlannedTx:
    """One call goes straight to its target; several go through Multicall3 (when one is configured),
    each given `gas_each` there when set (EOAs' transfers sharing a transaction: see `aggregate_gas`)."""
    if len(calls) == 1 or not aggregator:
        if len(calls) != 1:
            raise ValueError("without an aggregator a transaction carries exactly one call")
        return PlannedTx(calls[0].target, calls[0].data, calls[0].gas)
    return PlannedTx(
        aggregator,
        multicall.encode_aggregate3([(c.target, c.data) for c in calls]),
        aggregate_gas(calls, gas_each),
    )


def aggregate_gas(calls: Sequence[Call], gas_each: int | None = None) -> int:
    """The gas limit of a Multicall3 transaction of `calls`: the frame's, and each call's own limit —
    or `gas_each` apiece, for EOAs' transfers that share a transaction. Those use a near-constant
    amount (no code of the payer's runs), and a block takes a transaction only while its whole limit
    fits in the gas left: a limit far above the use leaves blocks part empty when they are full.
    Too tight, the calls after the gas ran out fail alone and go back to pre-flight (send failures).
    Pure."""
    return AGGREGATE_GAS_BASE + sum(c.gas if gas_each is None else gas_each for c in calls)


def preflight(
    w3: Web3,
    sender: str,
    payments: Mapping[Any, PaymentCalls],
    aggregator: str,
    *,
    shared_gas: int | None = None,
) -> dict[Any, Preflight]:
    """eth_call every payment's calls: the ones that may share a transaction in one aggregate3 call
    (with `shared_gas` a call, as their transaction gives them), each that goes alone by itself. A
    payment's verdict is its last call's (the transfer; a deployment before it may fail alone, e.g.
    when the wallet exists already). When the node refuses the shared
    aggregate as a whole (not a transport failure), each is asked alone, so one payment cannot hold up
    the others."""
    shared = {k: p.calls for k, p in payments.items() if not p.alone}
    verdicts: dict[Any, Preflight] = {}
    if aggregator and sum(len(c) for c in shared.values()) > 1:
        try:
            verdicts.update(_aggregate(w3, sender, shared, aggregator, shared_gas))
            shared = {}
        except _TRANSPORT as exc:  # no answer for the lot: each waits and is tried again
            gone = Unavailable(f"pre-flight unavailable: {type(exc).__name__}: {exc}"[:500])
            verdicts.update(dict.fromkeys(shared, gone))
            shared = {}
        except Exception:  # refused as a whole: one by one below
            pass
    for k, calls in {**shared, **{k: p.calls for k, p in payments.items() if p.alone}}.items():
        if len(calls) == 1:
            verdicts[k] = _single(w3, sender, calls[0])
        elif not aggregator:
            verdicts[k] = NEEDS_AGGREGATOR
        else:
            try:
                verdicts.update(_aggregate(w3, sender, {k: calls}, aggregator))
            except ContractLogicError as exc:
                verdicts[k] = revert_reason(exc)
            except Exception as exc:
                verdicts[k] = Unavailable(f"pre-flight unavailable: {type(exc).__name__}: {exc}"[:500])
    return verdicts


def _aggregate(
    w3: Web3,
    sender: str,
    calls: Mapping[Any, Sequence[Call]],
    aggregator: str,
    gas_each: int | None = None,
) -> dict[Any, Preflight]:
    keys = list(calls)
    flat = [(c.target, c.data) for k in keys for c in calls[k]]
    output = w3.eth.call(
        {
            "from": Web3.to_checksum_address(sender),
            "to": Web3.to_checksum_address(aggregator),
            "data": HexStr("0x" + multicall.encode_aggregate3(flat).hex()),
            # The gas the transaction will have: code that behaves only when given far more (as
            # eth_call gives by default) must show itself here.
            "gas": aggregate_gas([c for k in keys for c in calls[k]], gas_each),
        }
    )
    results = multicall.decode_aggregate3(bytes(output))
    verdicts: dict[Any, Preflight] = {}
    end = 0
    for k in keys:
        start, end = end, end + len(calls[k])
        last = results[end - 1]
        verdicts[k] = None if last.success else reason_from_return_data(last.return_data)
        undeployed = [r for r in results[start : end - 1] if not r.success]
        if undeployed and isinstance(verdicts[k], str) and "invalid signature" in str(verdicts[k]):
            verdicts[k] = (  # no wallet at the payer's address to check the signature: why not
                f"{DEPLOYMENT_FAILED}: the wallet's factory call failed "
                f"({reason_from_return_data(undeployed[0].return_data)}), so no wallet checked the "
                f"signature: {verdicts[k]}"
            )
    return verdicts


def worded(reason: str, row: Mapping[str, Any]) -> str:
    """A refusal in the words a client needs: a contract wallet's "invalid signature" means its
    ERC-1271 isValidSignature refused it (or, not deployed yet, its factory call did not deploy it)."""
    signer = wallets.parse(bytes.fromhex(str(row["signature"]).removeprefix("0x"))).signer
    if signer is Signer.EOA or "invalid signature" not in reason or reason.startswith(DEPLOYMENT_FAILED):
        return reason
    return (
        f"invalid_exact_evm_payload_signature: the contract wallet refused the signature (ERC-1271): {reason}"
    )


def _single(w3: Web3, sender: str, call: Call) -> Preflight:
    try:
        w3.eth.call(
            {
                "from": Web3.to_checksum_address(sender),
                "to": Web3.to_checksum_address(call.target),
                "data": HexStr("0x" + call.data.hex()),
                "gas": call.gas,  # the transaction's own limit, as in _aggregate
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
    WAIT_UNDETERMINED = "wait_undetermined"  # the same, counted: used, but how is out of reach
    FAIL = "fail"  # failed for good: this authorization can never move the money
    FAIL_WATCHED = "fail_watched"  # failed, but watched until validBefore: it may still be paid
    FINAL = "final"  # the chain's outcome is final (paid, used elsewhere, cancelled): write it
    REVIEW = "review"  # used, but how stayed unknown look after look: an operator decides


def after_refusal(
    reason: str,
    outcome: Outcome | None,
    *,
    valid_before: int,
    undetermined_looks: int,
    review_after: int,
    answered: bool = True,
) -> tuple[Next, str]:
    """A refusal (a revert reason at the head) is never a verdict by itself: where the authorization
    stands at a block CONFIRMATIONS deep decides (`outcome`; None when the node did not answer that
    lookup: it waits, uncounted). An expired authorization may well have been used — and paid — before
    it expired; one used at the head may not be used at depth yet. Used, but how out of reach: it waits,
    and after `review_after` such looks (counting this one) goes to review. A payment whose pre-flight
    got no answer (`answered` false) is looked up once its validBefore passed, so that nothing waits
    for a pre-flight for ever: expired unused, it fails. Pure."""
    if outcome is None:
        return Next.WAIT, f"its authorization could not be looked up ({reason})"
    if outcome.fate is Fate.UNDETERMINED:
        return (
            Next.REVIEW if undetermined_looks + 1 >= review_after else Next.WAIT_UNDETERMINED
        ), outcome.detail
    if outcome.fate is not Fate.UNUSED:
        return Next.FINAL, outcome.fate.value
    if AUTHORIZATION_USED in reason:
        return Next.WAIT, "authorization used in a block not yet deep enough"
    if outcome.at.timestamp >= valid_before:
        return Next.FAIL, "authorization_expired: it expired unused"
    if not answered:  # the pre-flight got no answer for it, and it may still pay: ask again
        return Next.WAIT, reason
    if EXPIRED in reason:
        return Next.WAIT, "authorization expired at the head, not yet at depth"
    return Next.FAIL_WATCHED, reason
