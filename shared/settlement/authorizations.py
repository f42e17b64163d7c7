"""When a payment counts as paid: on-chain truth about its EIP-3009 authorization, whoever sent it.

Anyone may submit a buyer's authorization, batch it with others, or use its nonce up with another
authorization of the same payer (nonces are per payer). So a payment is paid only by its *own*
transfer: the USDC `Transfer(payer → payTo, amount)` emitted by the same call as its
`AuthorizationUsed(payer, nonce)` — FiatToken emits the two back to back, so the Transfer is the log
right after it, from the asset's address. One (payer, nonce) is used once, so each such Transfer
pays at most one payment.

Verdicts that move money or supply (paid, used elsewhere, cancelled) are read at a block at least
CONFIRMATIONS deep (shared/chain/history.py), so a reorg above that depth cannot undo them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from eth_hash.auto import keccak
from web3 import Web3

from shared.chain import history
from shared.chain.history import Pinned, SearchLimits

TRANSFER_TOPIC = keccak(b"Transfer(address,address,uint256)")
AUTHORIZATION_USED_TOPIC = keccak(b"AuthorizationUsed(address,bytes32)")
AUTHORIZATION_CANCELED_TOPIC = keccak(b"AuthorizationCanceled(address,bytes32)")
AUTHORIZATION_STATE = keccak(b"authorizationState(address,bytes32)")[:4]


@dataclass(frozen=True, slots=True)
class Terms:
    """What a payment's authorization moves, and when it can: from the payment_queue row."""

    asset: str
    payer: str
    pay_to: str
    amount: int
    nonce: bytes
    valid_after: int
    valid_before: int


def payment_terms(payment: Mapping[str, Any]) -> Terms:
    """The Terms of a payment_queue row (asset, payer, token_address, amount, nonce, valid_*)."""
    return Terms(
        asset=str(payment["asset"]).lower(),
        payer=str(payment["payer"]).lower(),
        pay_to=str(payment["token_address"]).lower(),
        amount=int(payment["amount"]),
        nonce=bytes.fromhex(str(payment["nonce"])[2:]),
        valid_after=int(payment["valid_after"]),
        valid_before=int(payment["valid_before"]),
    )


@dataclass(frozen=True, slots=True)
class PaidBy:
    """The Transfer log that paid a payment: which transaction, which block, which log."""

    tx_hash: str
    block_number: int
    log_index: int


class Fate(StrEnum):
    UNUSED = "unused"  # at the pinned block: the money has not moved with this nonce (yet)
    PAID = "paid"  # its own transfer, at or below the pinned block (paid_by says which)
    USED_ELSEWHERE = "authorization_used_elsewhere"  # the nonce went to another authorization
    CANCELED = "authorization_canceled"  # the payer cancelled the nonce
    UNDETERMINED = "undetermined"  # used, but the log that says how is beyond the search budget


@dataclass(frozen=True, slots=True)
class Outcome:
    fate: Fate
    at: Pinned
    paid_by: PaidBy | None = None
    detail: str = ""


def _word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address.lower().removeprefix("0x"))


def _bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)


def _topics(entry: Any) -> list[bytes]:
    return [_bytes(t) for t in entry["topics"]]


def _from_asset(entry: Any, terms: Terms) -> bool:
    return str(entry["address"]).lower() == terms.asset


class ReceiptLogs:
    """One receipt's logs, read once, asked for each payment it may have paid: the AuthorizationUsed
    logs by (asset, payer, nonce), each with the log right after it."""

    def __init__(self, logs: list[Any]) -> None:
        ordered = sorted(logs, key=lambda e: int(e["logIndex"]))
        self._used: dict[tuple[str, bytes, bytes], tuple[Any, Any | None]] = {}
        for i, entry in enumerate(ordered):
            topics = _topics(entry)
            if len(topics) == 3 and topics[0] == AUTHORIZATION_USED_TOPIC:
                key = (str(entry["address"]).lower(), topics[1], topics[2])
                following = ordered[i + 1] if i + 1 < len(ordered) else None
                self._used.setdefault(key, (entry, following))

    def paying(self, terms: Terms) -> int | None:
        """The logIndex of the Transfer that pays `terms`, or None: the log right after the
        AuthorizationUsed(payer, nonce), from the asset, moving exactly `amount` to payTo."""
        found = self._used.get((terms.asset, _word(terms.payer), terms.nonce))
        if found is None:
            return None
        entry, following = found
        if (
            following is not None
            and int(following["logIndex"]) == int(entry["logIndex"]) + 1
            and _from_asset(following, terms)
            and _topics(following) == [TRANSFER_TOPIC, _word(terms.payer), _word(terms.pay_to)]
            and int.from_bytes(_bytes(following["data"]), "big") == terms.amount
        ):
            return int(following["logIndex"])
        return None  # the nonce was used in this receipt, by a call that did not pay these terms


def paying_transfer(logs: list[Any], terms: Terms) -> int | None:
    """The logIndex of the Transfer that pays `terms` in one receipt's logs, or None (ReceiptLogs,
    for one payment)."""
    return ReceiptLogs(logs).paying(terms)


def state_call(terms: Terms) -> bytes:
    """Calldata of `authorizationState(payer, nonce)`."""
    return AUTHORIZATION_STATE + _word(terms.payer) + terms.nonce


def is_used(w3: Web3, terms: Terms, at: Pinned) -> bool:
    answer = w3.eth.call(
        {"to": Web3.to_checksum_address(terms.asset), "data": Web3.to_hex(state_call(terms))},
        block_identifier=at.number,
    )
    return int.from_bytes(bytes(answer), "big") != 0


def fate(w3: Web3, terms: Terms, at: Pinned, limits: SearchLimits, *, used: bool | None = None) -> Outcome:
    """Where the authorization stands as of block `at`. When its nonce is used, the log that used it
    is searched for from `at` back to where an authorization we accept is normally signed — its
    validAfter, or validBefore minus the longest validity we accept, whichever is later (see
    SearchLimits): found, its receipt says paid, cancelled or used elsewhere; the window beyond
    `limits`, undetermined. Not found in that whole window, the nonce was used earlier: by something
    else — or by this very authorization, signed long before it was posted to us (its validAfter
    allows it). So the search goes on back to validAfter, as far as `limits` allow, and only a use not
    found there either counts as used elsewhere (a nonce burnt long ago cannot hold supply in review).
    `used` may be passed when already read at `at`."""
    if used is None:
        used = is_used(w3, terms, at)
    if not used:
        return Outcome(Fate.UNUSED, at)
    usual = max(terms.valid_after, terms.valid_before - limits.longest_validity)
    search = _search(w3, terms, high=at.number, since_time=usual, budget=limits.max_blocks, limits=limits)
    if search.logs:
        return _by_log(w3, terms, at, search.logs[0])
    if not search.complete:
        return Outcome(
            Fate.UNDETERMINED,
            at,
            detail=f"its nonce is used, but no log of it in the {search.searched_blocks} blocks searched",
        )
    budget, below = limits.max_blocks - search.searched_blocks, at.number - search.searched_blocks
    complete = terms.valid_after >= usual or below < 0
    if not complete and budget > 0:
        earlier = _search(w3, terms, high=below, since_time=terms.valid_after, budget=budget, limits=limits)
        if earlier.logs:
            return _by_log(w3, terms, at, earlier.logs[0])
        complete = earlier.complete
    detail = (
        "its nonce was used before this authorization became valid"
        if complete
        else f"its nonce was used long before this authorization was posted ({limits.max_blocks} blocks)"
    )
    return Outcome(Fate.USED_ELSEWHERE, at, detail=detail)


def _search(
    w3: Web3, terms: Terms, *, high: int, since_time: int, budget: int, limits: SearchLimits
) -> history.LogSearch:
    """The AuthorizationUsed or AuthorizationCanceled log of (payer, nonce), from `high` back."""
    return history.search_back(
        w3,
        address=terms.asset,
        topics=[
            [Web3.to_hex(AUTHORIZATION_USED_TOPIC), Web3.to_hex(AUTHORIZATION_CANCELED_TOPIC)],
            Web3.to_hex(_word(terms.payer)),
            Web3.to_hex(terms.nonce),
        ],
        high=high,
        since_time=since_time,
        chunk=limits.chunk_blocks,
        budget=budget,
    )


def _by_log(w3: Web3, terms: Terms, at: Pinned, entry: Any) -> Outcome:
    """What the log that used (payer, nonce) says: cancelled, paid by this payment's own transfer in
    its receipt, or used by something else."""
    tx_hash = "0x" + _bytes(entry["transactionHash"]).hex()
    if _topics(entry)[0] == AUTHORIZATION_CANCELED_TOPIC:
        return Outcome(Fate.CANCELED, at, detail=f"cancelled in {tx_hash}")
    receipt = w3.eth.get_transaction_receipt(entry["transactionHash"])
    index = paying_transfer(list(receipt["logs"]), terms) if receipt["status"] == 1 else None
    if index is None:
        return Outcome(Fate.USED_ELSEWHERE, at, detail=f"its nonce was used in {tx_hash} without paying")
    return Outcome(Fate.PAID, at, PaidBy(tx_hash, int(receipt["blockNumber"]), index))
