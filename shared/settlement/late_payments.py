"""Watching failed payments whose authorization is still unused, until it expires.

A failed payment's authorization stays valid until validBefore, and anyone may submit it. If the
chain shows its own transfer paid after all, the payment completes with its mints at once (or, when
the token sold out meanwhile, is owed a refund) — so money that arrives is never left without its
mints. The watch ends when the authorization expires unused, or its nonce goes to another
authorization or a cancellation. Every read is pinned to one block at least CONFIRMATIONS deep, its
timestamp being the chain's time: nothing is decided from a block a reorg could take back.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import structlog

from shared.chain import history, rpc_batch
from shared.db.queries import q
from shared.runtime import Runtime
from shared.settlement import payments
from shared.settlement.authorizations import Fate, Outcome, fate, payment_terms, state_call
from shared.settlement.payments import Guard

log = structlog.get_logger()
WATCH_EVERY_SECONDS = 10.0
WATCH_BATCH = 50
WATCHED = Guard("failed")


class Verdict(StrEnum):
    KEEP = "keep"  # still unused and still valid, or used but not yet known how: look again later
    END = "end"  # expired unused, or its nonce went elsewhere: it can never pay
    PAID = "paid"  # its own transfer paid after all: complete it
    REVIEW = "review"  # used, the log that says how out of reach, and its window closed: an operator decides


def verdict(outcome: Outcome, *, valid_before: int) -> Verdict:
    """What to do with a watched payment, from the chain's answer at a pinned block (pure)."""
    closed = outcome.at.timestamp >= valid_before  # no block from here on can run the authorization
    if outcome.fate is Fate.UNUSED:
        return Verdict.END if closed else Verdict.KEEP
    if outcome.fate is Fate.PAID:
        return Verdict.PAID
    if outcome.fate is Fate.UNDETERMINED:
        return Verdict.REVIEW if closed else Verdict.KEEP
    return Verdict.END


def watch(rt: Runtime) -> int:
    """Look at the failed payments that are due; return how many were decided."""
    with rt.pool.connection() as conn, conn.transaction():
        due = conn.execute(
            q("claim_watched_payments"), {"limit": WATCH_BATCH, "every": WATCH_EVERY_SECONDS}
        ).fetchall()
    if not due:
        return 0
    at = history.pin(rt.w3, rt.settings.confirmations)
    terms = [payment_terms(p) for p in due]
    answers = rpc_batch.calls(rt.w3, [(t.asset, state_call(t)) for t in terms], block=at.number)
    changed = 0
    for p, t, answer in zip(due, terms, answers, strict=True):
        if answer is None:
            continue  # no answer this time: the next look asks again
        try:
            outcome = fate(rt.w3, t, at, rt.settings.log_search, used=int.from_bytes(answer, "big") != 0)
            decided = verdict(outcome, valid_before=int(p["watch_until"]))
            if decided is not Verdict.KEEP:
                with rt.pool.connection() as conn, conn.transaction():
                    changed += _write(conn, p, outcome, decided)
        except Exception as exc:  # this one waits for its next look; the others go on
            log.warning("watch_look_failed", payment_id=str(p["id"]), error=str(exc)[:300])
    return changed


def _write(conn: Any, p: dict[str, Any], outcome: Outcome, decided: Verdict) -> int:
    if decided is Verdict.PAID:
        return int(payments.final(conn, p["id"], WATCHED, outcome) is not None)
    if decided is Verdict.REVIEW:
        return int(payments.review(conn, p["id"], WATCHED, f"after it failed: {outcome.detail}"))
    note = (
        "watch ended: the authorization expired unused"
        if outcome.fate is Fate.UNUSED
        else f"watch ended: {outcome.fate.value}: {outcome.detail}"
    )
    conn.execute(q("end_watch"), {"id": p["id"], "note": note})
    return 1
