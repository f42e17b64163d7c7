"""What the confirmer writes once a transaction is settled at depth: each payment, mint or refund it
carried moves to the state its receipt (or, failing that, the chain's record of the authorization)
shows.

All writes run in the caller's database transaction, the one that marks the chain transaction
settled, so a crash leaves either all of it or none of it.
"""

from __future__ import annotations

from typing import Any

import structlog
from psycopg import Connection
from web3.types import TxReceipt

from shared import metrics
from shared.db.queries import q
from shared.settlement import payments
from shared.settlement.authorizations import Fate, Outcome
from shared.settlement.mint_logs import mint_results
from shared.settlement.payments import Guard

log = structlog.get_logger()


def settle_payments(
    conn: Connection[Any],
    tx: dict[str, Any],
    tx_hash: str,
    decisions: dict[str, Outcome],
    *,
    send_retries: int,
) -> None:
    """Each payment our settled transaction carried, by what the chain says of it: paid (by its own
    transfer in this receipt, or in another transaction), used elsewhere or cancelled — final; not
    moved — back to payment-sender for a fresh pre-flight (`send_retries` times: its call may have
    failed for another's sake, e.g. a call before it that burned the transaction's gas), then failed
    and watched while its authorization is valid; undetermined — back to payment-sender, which looks
    again (a bounded number of times)."""
    guard = Guard("sent", chain_tx_id=tx["id"])
    done = set(
        payments.complete_many(
            conn,
            {p: o.paid_by for p, o in decisions.items() if o.fate is Fate.PAID and o.paid_by is not None},
            guard,
        )
    )
    for payment_id, outcome in decisions.items():
        if str(payment_id) in done:
            continue
        if outcome.fate is Fate.UNUSED:
            error = f"transferWithAuthorization failed in {tx_hash}; the money did not move"
            again = {"chain_tx_id": tx["id"], "id": payment_id, "error": error, "limit": send_retries}
            if conn.execute(q("resend_payment"), again).fetchone() is None:
                payments.fail(conn, payment_id, guard, error, watch=True, tx_hash=tx_hash)
        elif outcome.fate is Fate.UNDETERMINED:
            conn.execute(
                q("replan_payment"), {"chain_tx_id": tx["id"], "id": payment_id, "error": outcome.detail}
            )
        else:
            payments.final(conn, payment_id, guard, outcome)


def settle_mints(
    conn: Connection[Any], chain_tx_id: int, tx_hash: str, receipt: TxReceipt, *, max_attempts: int
) -> None:
    """TokensMinted completes a mint, MintSkipped(sold out / bad recipient) fails it; the rest retry."""
    mints = conn.execute(q("mints_of_chain_tx"), {"chain_tx_id": chain_tx_id}).fetchall()
    minted, refused = mint_results(receipt) if receipt["status"] == 1 else (set(), {})
    args = {"chain_tx_id": chain_tx_id, "tx_hash": tx_hash}
    for done in conn.execute(
        q("complete_sent_mints"), {**args, "ids": [m["id"] for m in mints if m["mint_id"] in minted]}
    ):
        metrics.mint_seconds.observe(done["since_paid_seconds"])
    for m in mints:
        if m["mint_id"] in refused:
            conn.execute(q("fail_sent_mints"), {**args, "ids": [m["id"]], "error": refused[m["mint_id"]]})
    rest = [m for m in mints if m["mint_id"] not in minted and m["mint_id"] not in refused]
    conn.execute(
        q("fail_sent_mints"),
        {
            **args,
            "ids": [m["id"] for m in rest if m["attempts"] >= max_attempts],
            "error": "mint transaction reverted; retries exhausted",
        },
    )
    conn.execute(
        q("retry_sent_mints"),
        {
            "chain_tx_id": chain_tx_id,
            "ids": [m["id"] for m in rest if m["attempts"] < max_attempts],
            "error": f"mint transaction {tx_hash} did not mint it",
        },
    )
    log.info(
        "mint_tx_settled",
        chain_tx_id=chain_tx_id,
        tx_hash=tx_hash,
        minted=len(minted & {m["mint_id"] for m in mints}),
        refused=len(refused),
        retried=len(rest),
    )
