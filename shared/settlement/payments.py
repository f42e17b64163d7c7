"""Writing what the chain decided about a payment: completed with its mints, refund owed, failed, or
needs review. Whoever found the answer writes it — payment-sender's pre-flight, the confirmer, the
late-payment watch, an operator — each as a compare-and-set on the status it expects and the claim or
transaction it expects to hold the payment (a Guard), inside the caller's database transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
from psycopg import Connection

from shared import metrics
from shared.db.queries import q
from shared.settlement.authorizations import Fate, Outcome, PaidBy
from shared.settlement.mint_ids import mint_id

log = structlog.get_logger()
SOLD_OUT = "XM001"  # SQLSTATE of the supply reservation (0004, 0009, 0011)


@dataclass(frozen=True, slots=True)
class Guard:
    """What a write expects of the payment: its status, and the claim or our transaction holding it."""

    status: str
    claim_token: uuid.UUID | None = None
    chain_tx_id: int | None = None

    def params(self, payment_id: Any) -> dict[str, Any]:
        return {
            "id": payment_id,
            "expected": self.status,
            "claim_token": self.claim_token,
            "chain_tx_id": self.chain_tx_id,
        }


def complete(conn: Connection[Any], payment_id: Any, guard: Guard, paid_by: PaidBy) -> str | None:
    """Completed with its `quantity` mint rows, in the caller's transaction; a payment that had given
    its supply back and finds it sold meanwhile is owed a refund instead. Returns the new status, or
    None when the guard no longer holds (someone else decided first)."""
    paid = {"tx_hash": paid_by.tx_hash, "log_index": paid_by.log_index, "block_number": paid_by.block_number}
    try:
        with conn.transaction():  # a savepoint: taking the supply back may be refused
            row = conn.execute(q("complete_payment"), {**guard.params(payment_id), **paid}).fetchone()
            if row is None:
                return None
            _insert_mints(conn, row)
    except psycopg.Error as exc:
        if exc.sqlstate != SOLD_OUT:
            raise
        note = f"paid by {paid_by.tx_hash} after the token's supply was sold: refund owed"
        owed = conn.execute(q("owe_refund"), {**guard.params(payment_id), **paid, "error": note}).fetchone()
        if owed is None:
            return None
        log.error("payment_refund_owed", payment_id=str(payment_id), tx_hash=paid_by.tx_hash)
        return "refund_owed"
    metrics.payment_paid_seconds.observe(row["waited_seconds"])
    log.info(
        "payment_completed",
        payment_id=str(payment_id),
        tx_hash=paid_by.tx_hash,
        log_index=paid_by.log_index,
        mints=row["quantity"],
        was=guard.status,
    )
    return "completed"


def complete_many(conn: Connection[Any], paid: dict[Any, PaidBy], guard: Guard) -> list[str]:
    """Several payments of one of our transactions, each paid by its own transfer: completed with
    their mint rows in two statements (the confirmer settles dozens at once). Returns the payments it
    completed; any it could not (the guard no longer holds, or — in a savepoint that is then undone —
    a supply that ran out) are for the caller to write one by one. Ids are compared as text."""
    paid = {str(k): v for k, v in paid.items()}
    if not paid:
        return []
    ids = list(paid)
    try:
        with conn.transaction():  # a savepoint: on any refusal, nothing of it stays
            rows = conn.execute(
                q("complete_payments"),
                {
                    "ids": ids,
                    "tx_hashes": [paid[i].tx_hash for i in ids],
                    "log_indexes": [paid[i].log_index for i in ids],
                    "block_numbers": [paid[i].block_number for i in ids],
                    "expected": guard.status,
                    "chain_tx_id": guard.chain_tx_id,
                },
            ).fetchall()
            _insert_mints_of(conn, rows)
    except psycopg.Error as exc:
        if exc.sqlstate != SOLD_OUT:
            raise
        return []
    for row in rows:
        metrics.payment_paid_seconds.observe(row["waited_seconds"])
        by = paid[str(row["id"])]
        log.info(
            "payment_completed",
            payment_id=str(row["id"]),
            tx_hash=by.tx_hash,
            log_index=by.log_index,
            mints=row["quantity"],
            was=guard.status,
        )
    return [str(row["id"]) for row in rows]


def _insert_mints_of(conn: Connection[Any], rows: list[dict[str, Any]]) -> None:
    """The mint rows of payments just completed, in one statement."""
    columns: dict[str, list[Any]] = {
        "payment_ids": [],
        "indexes": [],
        "mint_ids": [],
        "tokens": [],
        "recipients": [],
    }
    for p in rows:
        nonce = bytes.fromhex(p["nonce"][2:])
        for i in range(p["quantity"]):
            columns["payment_ids"].append(p["id"])
            columns["indexes"].append(i)
            columns["mint_ids"].append(
                "0x" + mint_id(p["token_address"], p["asset"], p["payer"], nonce, i).hex()
            )
            columns["tokens"].append(p["token_address"])
            columns["recipients"].append(p["recipient"])
    conn.execute(q("insert_mints_of_payments"), columns)


def _insert_mints(conn: Connection[Any], p: dict[str, Any]) -> None:
    nonce = bytes.fromhex(p["nonce"][2:])
    conn.execute(
        q("insert_mints"),
        {
            "payment_id": p["id"],
            "mint_ids": [
                "0x" + mint_id(p["token_address"], p["asset"], p["payer"], nonce, i).hex()
                for i in range(p["quantity"])
            ],
            "token_address": p["token_address"],
            "recipient": p["recipient"],
        },
    )


def fail(
    conn: Connection[Any],
    payment_id: Any,
    guard: Guard,
    error: str,
    *,
    watch: bool,
    tx_hash: str | None = None,
) -> bool:
    """Failed, its supply given back; `watch` while its authorization could still move the money."""
    row = conn.execute(
        q("fail_payment"),
        {**guard.params(payment_id), "error": error[:500], "watch": watch, "tx_hash": tx_hash},
    ).fetchone()
    if row is not None:
        log.info("payment_failed", payment_id=str(payment_id), error=error[:200], watched=watch)
    return row is not None


def review(conn: Connection[Any], payment_id: Any, guard: Guard, error: str) -> bool:
    """Needs an operator's decision (`x402-mint resolve`); keeps its supply."""
    row = conn.execute(q("review_payment"), {**guard.params(payment_id), "error": error[:500]}).fetchone()
    if row is not None:
        log.error("payment_needs_review", payment_id=str(payment_id), error=error[:200])
    return row is not None


def final(conn: Connection[Any], payment_id: Any, guard: Guard, outcome: Outcome) -> str | None:
    """Write a final outcome (paid, used elsewhere, cancelled); the new status, or None when the guard
    no longer holds. UNUSED and UNDETERMINED are not final: the caller decides what waiting means."""
    if outcome.fate is Fate.PAID:
        assert outcome.paid_by is not None
        return complete(conn, payment_id, guard, outcome.paid_by)
    if outcome.fate in (Fate.USED_ELSEWHERE, Fate.CANCELED):
        reason = f"{outcome.fate.value}: {outcome.detail}"
        return "failed" if fail(conn, payment_id, guard, reason, watch=False) else None
    raise ValueError(f"{outcome.fate} is not a final outcome")
