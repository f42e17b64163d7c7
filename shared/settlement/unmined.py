"""Our payment transactions that are not mined yet (payment-sender's upkeep): nothing in them may wait
forever.

A payment whose authorization expired unused, read at a block CONFIRMATIONS deep, can never be paid
by it (any later block is later still): it fails at once, whether or not our transaction is ever
mined (if it is, that call reverts). A transaction whose authorizations were all used by someone
else or expired has nothing left to pay: it is cancelled (a 0-value transfer to ourselves at its
nonce), so no authorization is submitted after it is known used and no nonce is left as a gap. In a
Multicall3 transaction a used authorization only fails its own call, so one with work left still goes.
"""

from __future__ import annotations

from typing import Any

import structlog
from web3.exceptions import TransactionNotFound

from shared.chain import history, rpc_batch
from shared.db.queries import q
from shared.runtime import Runtime
from shared.settlement import payments
from shared.settlement.authorizations import Terms, payment_terms, state_call
from shared.settlement.payments import Guard

log = structlog.get_logger()
TIDY_BATCH = 20
EXPIRED_UNMINED = "authorization expired before our transaction carrying it was mined"


def tidy(rt: Runtime, relayer: str) -> int:
    """Fail the expired payments of `relayer`'s unmined payment transactions and cancel those left
    with nothing to pay; return how many payments and transactions changed."""
    with rt.pool.connection() as conn:
        waiting = conn.execute(
            q("unconfirmed_payment_txs_of_sender"),
            {
                "chain_id": rt.settings.chain_id,
                "address": relayer,
                "limit": TIDY_BATCH,
                "older_than": rt.settings.rebroadcast_after_seconds,
            },
        ).fetchall()
        conn.rollback()
    if not waiting:
        return 0
    at = history.pin(rt.w3, rt.settings.confirmations)
    return sum(_tidy_one(rt, tx, at) for tx in waiting if not _mined(rt, tx["id"]))


def _tidy_one(rt: Runtime, tx: dict[str, Any], at: history.Pinned) -> int:
    terms = [payment_terms(p) for p in tx["payments"]]
    now_used = _used(rt, terms, None)  # the head: used there, our call would fail anyway
    deep_used = _used(rt, terms, at.number)
    if None in now_used or None in deep_used:
        return 0  # the node did not answer for all of them: next time
    expired = [
        p
        for p, t, used in zip(tx["payments"], terms, deep_used, strict=True)
        if not used and at.timestamp >= t.valid_before
    ]
    pointless = all(used or p in expired for p, used in zip(tx["payments"], now_used, strict=True))
    changed = 0
    with rt.pool.connection() as conn, conn.transaction():
        for p in expired:
            changed += payments.fail(
                conn, p["id"], Guard("sent", chain_tx_id=tx["id"]), EXPIRED_UNMINED, watch=False
            )
        if (
            pointless
            and conn.execute(
                q("mark_cancel"), {"id": tx["id"], "reason": "nothing left to pay: used elsewhere or expired"}
            ).fetchone()
        ):
            changed += 1
            log.warning(
                "payment_tx_cancelling",
                chain_tx_id=tx["id"],
                nonce=tx["nonce"],
                payment_ids=[p["id"] for p in tx["payments"]],
            )
    return changed


def _used(rt: Runtime, terms: list[Terms], block: int | None) -> list[bool | None]:
    answers = rpc_batch.calls(rt.w3, [(t.asset, state_call(t)) for t in terms], block=block)
    return [None if a is None else int.from_bytes(a, "big") != 0 for a in answers]


def _mined(rt: Runtime, chain_tx_id: int) -> bool:
    with rt.pool.connection() as conn:
        hashes = [r["tx_hash"] for r in conn.execute(q("attempt_hashes"), {"chain_tx_id": chain_tx_id})]
        conn.rollback()
    for tx_hash in hashes:
        try:
            rt.w3.eth.get_transaction_receipt(tx_hash)
            return True
        except TransactionNotFound:
            continue
    return False
