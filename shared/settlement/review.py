"""Operators' decisions about money (`x402-mint resolve`, `x402-mint refund`), each checked against
the chain before anything changes: an operator may settle what the stages could not determine, never
contradict what the chain shows.

- resolve --paid-by TX: TX (at least CONFIRMATIONS deep, on the canonical chain) must carry the
  payment's own transfer; the payment completes with its mints (or is owed a refund when sold out).
- resolve --not-paid: refused when the chain shows its own transfer (and, without --force, when it
  still cannot be searched far enough to say); otherwise it fails (watched while its authorization
  could still be used).
- refund: a refund_owed payment's money goes back (MintToken.refund, sent by refund-sender); a payment
  under review whose own transfer the chain shows — found by the search, or in the transaction the
  operator names (--paid-by, checked as for resolve) — may be refunded instead of minted.
"""

from __future__ import annotations

from typing import Any

import structlog
from web3.exceptions import TransactionNotFound

from shared.chain import history
from shared.db.queries import q
from shared.runtime import Runtime
from shared.settlement import payments
from shared.settlement.authorizations import Fate, Outcome, PaidBy, fate, paying_transfer, payment_terms
from shared.settlement.mint_ids import purchase_key
from shared.settlement.payments import Guard

log = structlog.get_logger()
REVIEWED = Guard("needs_review")


class Refused(Exception):
    """The chain, or the payment's state, does not allow this decision; nothing was changed."""


def _payment(rt: Runtime, payment_id: Any) -> dict[str, Any]:
    with rt.pool.connection() as conn:
        row = conn.execute(q("payment_row"), {"id": payment_id}).fetchone()
        conn.rollback()
    if row is None:
        raise Refused(f"no live payment {payment_id}")
    return dict(row)


def _under_review(p: dict[str, Any]) -> None:
    if p["status"] != "needs_review":
        raise Refused(f"payment {p['id']} is {p['status']}, not needs_review")


def resolve_paid_by(rt: Runtime, payment_id: Any, tx_hash: str) -> str:
    """The payment was paid by `tx_hash`: checked, then completed (or refund owed). New status."""
    p = _payment(rt, payment_id)
    _under_review(p)
    paid = _own_transfer_in(rt, p, tx_hash)
    with rt.pool.connection() as conn, conn.transaction():
        status = payments.complete(conn, p["id"], REVIEWED, paid)
    if status is None:
        raise Refused("the payment changed meanwhile; look again")
    log.warning("payment_resolved", payment_id=str(p["id"]), paid_by=tx_hash, status=status)
    return status


def _own_transfer_in(rt: Runtime, p: dict[str, Any], tx_hash: str) -> PaidBy:
    at = history.pin(rt.w3, rt.settings.confirmations)
    try:
        receipt = rt.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    except TransactionNotFound:
        raise Refused(f"the node has no receipt for {tx_hash}") from None
    block = int(receipt["blockNumber"])
    if block > at.number:
        raise Refused(
            f"{tx_hash} is in block {block}, not {rt.settings.confirmations} confirmations deep yet"
        )
    if bytes(rt.w3.eth.get_block(block)["hash"]) != bytes(receipt["blockHash"]):
        raise Refused(f"{tx_hash} is not on the canonical chain")
    index = paying_transfer(list(receipt["logs"]), payment_terms(p)) if receipt["status"] == 1 else None
    if index is None:
        raise Refused(
            f"{tx_hash} does not carry this payment's own transfer (its AuthorizationUsed + Transfer)"
        )
    return PaidBy("0x" + bytes(receipt["transactionHash"]).hex(), block, index)


def resolve_not_paid(rt: Runtime, payment_id: Any, *, force: bool = False) -> str:
    """The payment was not paid: refused if the chain shows its own transfer, or (without `force`)
    if the chain still cannot be searched far enough to say; else failed. New status."""
    p = _payment(rt, payment_id)
    _under_review(p)
    at = history.pin(rt.w3, rt.settings.confirmations)
    outcome = fate(rt.w3, payment_terms(p), at, rt.settings.log_search)
    if outcome.fate is Fate.PAID:
        assert outcome.paid_by is not None
        raise Refused(f"the chain shows it paid by {outcome.paid_by.tx_hash}: use --paid-by")
    if outcome.fate is Fate.UNDETERMINED and not force:
        raise Refused(
            f"the chain cannot say whether it was paid ({outcome.detail}); if you checked it yourself"
            " (an archive node, an explorer), add --force"
        )
    still_valid = outcome.fate is Fate.UNUSED and at.timestamp < int(p["valid_before"])
    reason = _not_paid_reason(outcome)
    with rt.pool.connection() as conn, conn.transaction():
        if not payments.fail(conn, p["id"], REVIEWED, reason, watch=still_valid):
            raise Refused("the payment changed meanwhile; look again")
    log.warning("payment_resolved", payment_id=str(p["id"]), paid_by=None, status="failed", reason=reason)
    return "failed"


def _not_paid_reason(outcome: Outcome) -> str:
    if outcome.fate in (Fate.USED_ELSEWHERE, Fate.CANCELED):
        return f"{outcome.fate.value}: {outcome.detail}"
    if outcome.fate is Fate.UNUSED:
        return "resolved by an operator: not paid (the authorization is unused)"
    return f"resolved by an operator: not paid ({outcome.detail})"


def order_refund(rt: Runtime, payment_id: Any, reason: str, *, paid_by: str = "") -> str:
    """Order the refund of a refund_owed payment (or of a payment under review that the chain shows
    paid — by the search, or by `paid_by`, its own transfer checked there — instead of minting it; or
    send a failed refund again). Returns what was done."""
    p = _payment(rt, payment_id)
    if paid_by and p["status"] != "needs_review":
        raise Refused(f"payment {p['id']} is {p['status']}: --paid-by is for a payment under review")
    if p["status"] == "needs_review":
        if paid_by:
            paid = _own_transfer_in(rt, p, paid_by)
        else:
            outcome = fate(
                rt.w3, payment_terms(p), history.pin(rt.w3, rt.settings.confirmations), rt.settings.log_search
            )
            if outcome.fate is not Fate.PAID:
                raise Refused(
                    f"the chain does not show this payment paid ({outcome.fate.value}): nothing to refund"
                    " (if you found the transaction that paid it, name it with --paid-by)"
                )
            assert outcome.paid_by is not None
            paid = outcome.paid_by
        with rt.pool.connection() as conn, conn.transaction():
            args = {"tx_hash": paid.tx_hash, "log_index": paid.log_index, "block_number": paid.block_number}
            error = f"paid by {paid.tx_hash}; refunded instead of minted by an operator: {reason}"
            if (
                conn.execute(q("owe_refund"), {**REVIEWED.params(p["id"]), **args, "error": error}).fetchone()
                is None
            ):
                raise Refused("the payment changed meanwhile; look again")
            return _insert(conn, p, reason)
    if p["status"] != "refund_owed":
        raise Refused(f"payment {p['id']} is {p['status']}: only refund_owed payments are refunded")
    with rt.pool.connection() as conn, conn.transaction():
        if conn.execute(q("refund_again"), {"payment_id": p["id"]}).fetchone():
            return "a failed refund is sent again"
        return _insert(conn, p, reason)


def _insert(conn: Any, p: dict[str, Any], reason: str) -> str:
    key = purchase_key(p["token_address"], p["asset"], p["payer"], bytes.fromhex(p["nonce"][2:]))
    row = conn.execute(
        q("insert_refund"),
        {
            "payment_id": p["id"],
            "payment_key": "0x" + key.hex(),
            "token_address": p["token_address"],
            "recipient": p["payer"],
            "amount": p["amount"],
            "reason": reason,
        },
    ).fetchone()
    if row is None:
        return "already ordered"
    log.warning("refund_ordered", payment_id=str(p["id"]), amount=str(p["amount"]), to=p["payer"])
    return "refund ordered"
