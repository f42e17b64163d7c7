"""Watching failed payments whose authorization is still unused, until it expires.

A failed payment's authorization stays valid until validBefore, and anyone may submit it. If the
chain shows its money arrived after all, the payment is revived (failed → sent, following the
transaction that paid) and the confirmer completes it with its mints — so money that arrives is
never left without its mints. The watch ends when the authorization expires unused or is cancelled.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import psycopg
import structlog
from eth_hash.auto import keccak
from web3 import Web3

from shared.chain import rpc_batch
from shared.db.queries import q
from shared.runtime import Runtime
from shared.settlement import outcomes
from shared.settlement.authorizations import AuthorizationState, Outcome, payment_outcome

log = structlog.get_logger()
WATCH_EVERY_SECONDS = 10.0
WATCH_BATCH = 50
SOLD_OUT = "XM001"  # SQLSTATE of the supply reservation trigger (0004)
_AUTHORIZATION_STATE = keccak(b"authorizationState(address,bytes32)")[:4]


class Verdict(StrEnum):
    KEEP = "keep"  # still unused and still valid: look again later
    END = "end"  # expired unused, or cancelled: it can never pay
    REVIVE = "revive"  # paid after all


def verdict(used: bool, outcome: Outcome | None, *, chain_time: int, valid_before: int) -> Verdict:
    """What to do with a watched payment, from the chain's answers (pure)."""
    if not used:
        return Verdict.END if chain_time >= valid_before else Verdict.KEEP
    if outcome is None or outcome.state is AuthorizationState.UNKNOWN:
        return Verdict.KEEP  # used, but how is not known yet
    return Verdict.REVIVE if outcome.state is AuthorizationState.PAID else Verdict.END


def watch(rt: Runtime) -> int:
    """Look at the failed payments that are due; return how many were revived or ended."""
    with rt.pool.connection() as conn, conn.transaction():
        due = conn.execute(
            q("claim_watched_payments"), {"limit": WATCH_BATCH, "every": WATCH_EVERY_SECONDS}
        ).fetchall()
    if not due:
        return 0
    chain_time = int(rt.w3.eth.get_block("latest")["timestamp"])
    answers = rpc_batch.calls(rt.w3, [(p["asset"], _state_call(p)) for p in due])
    changed = 0
    for p, answer in zip(due, answers, strict=True):
        if answer is None:
            continue  # no answer this time: the next look asks again
        used = int.from_bytes(answer, "big") != 0
        outcome = payment_outcome(rt.w3, p, lookback_blocks=rt.settings.log_lookback_blocks) if used else None
        decided = verdict(used, outcome, chain_time=chain_time, valid_before=int(p["watch_until"]))
        if decided is Verdict.END:
            changed += _end(rt, p, "watch ended: the authorization expired unused or was cancelled")
        elif decided is Verdict.REVIVE:
            assert outcome is not None
            changed += _revive(rt, p, outcome)
    return changed


def _state_call(p: dict[str, Any]) -> bytes:
    payer = bytes(12) + bytes.fromhex(p["payer"][2:])
    return _AUTHORIZATION_STATE + payer + bytes.fromhex(p["nonce"][2:])


def _end(rt: Runtime, p: dict[str, Any], note: str) -> int:
    with rt.pool.connection() as conn, conn.transaction():
        conn.execute(q("end_watch"), {"id": p["id"], "note": note})
    return 1


def _revive(rt: Runtime, p: dict[str, Any], outcome: Outcome) -> int:
    try:
        with rt.pool.connection() as conn, conn.transaction():
            chain_tx_id = outcomes.store_paying_tx(conn, chain_id=rt.settings.chain_id, outcome=outcome)
            revived = conn.execute(
                q("revive_paid_late"),
                {
                    "id": p["id"],
                    "chain_tx_id": chain_tx_id,
                    "tx_hash": outcome.tx_hash,
                    "note": f"failed, then paid by {outcome.tx_hash}",
                },
            ).fetchone()
    except psycopg.Error as exc:
        if exc.sqlstate != SOLD_OUT:
            raise
        # The money arrived, but the supply it reserved was sold meanwhile: an operator must refund.
        log.error("payment_paid_after_failure_sold_out", payment_id=str(p["id"]), tx_hash=outcome.tx_hash)
        return _end(rt, p, f"paid by {outcome.tx_hash} after it failed, but sold out meanwhile: refund it")
    if revived is None:
        return 0
    log.warning(
        "payment_paid_after_failure",
        payment_id=str(p["id"]),
        tx_hash=outcome.tx_hash,
        payer=Web3.to_checksum_address(p["payer"]),
    )
    return 1
