"""What the confirmer writes once a transaction is settled at depth: each payment or mint it carried
moves to the state its receipt (or, failing that, the chain's record of the authorization) shows.

All writes run in the caller's database transaction, the one that marks the chain transaction
settled, so a crash leaves either all of it or none of it.
"""

from __future__ import annotations

from typing import Any

import structlog
from psycopg import Connection
from web3.types import TxReceipt

from shared.db.queries import q
from shared.settlement.authorizations import AuthorizationState, Outcome
from shared.settlement.mint_ids import mint_id
from shared.settlement.mint_logs import mint_results
from shared.txs import txstore

log = structlog.get_logger()


def store_paying_tx(conn: Connection[Any], *, chain_id: int, outcome: Outcome) -> int:
    """Record the transaction (someone else's) that the chain shows paid a payment."""
    assert outcome.tx_hash and outcome.sender is not None and outcome.sender_nonce is not None
    return txstore.store_external(
        conn,
        chain_id=chain_id,
        sender=outcome.sender,
        nonce=outcome.sender_nonce,
        tx_hash=outcome.tx_hash,
        purpose="payment",
    )


def settle_payments(
    conn: Connection[Any], tx: dict[str, Any], tx_hash: str, decision: dict[str, Outcome | None]
) -> None:
    """`decision` per payment: None when the receipt shows its money arriving, else the chain's outcome."""
    paid = [payment_id for payment_id, outcome in decision.items() if outcome is None]
    if paid:
        _complete(conn, tx["id"], tx_hash, paid)
    for payment_id, outcome in decision.items():
        if outcome is not None:
            _not_paid_here(conn, tx, tx_hash, payment_id, outcome)


def _complete(conn: Connection[Any], chain_tx_id: int, tx_hash: str, ids: list[str]) -> None:
    completed = conn.execute(
        q("complete_payments"), {"chain_tx_id": chain_tx_id, "tx_hash": tx_hash, "ids": ids}
    ).fetchall()
    for p in completed:
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
        log.info("payment_completed", payment_id=str(p["id"]), tx_hash=tx_hash, mints=p["quantity"])


def _not_paid_here(
    conn: Connection[Any], tx: dict[str, Any], tx_hash: str, payment_id: str, outcome: Outcome
) -> None:
    ids = {"chain_tx_id": tx["id"], "id": payment_id}
    if outcome.state is AuthorizationState.PAID:  # someone else's transaction moved the money
        external = store_paying_tx(conn, chain_id=tx["chain_id"], outcome=outcome)
        conn.execute(
            q("repoint_payment"),
            {
                **ids,
                "new_chain_tx_id": external,
                "tx_hash": outcome.tx_hash,
                "note": f"paid by {outcome.tx_hash}; our {tx_hash} did not pay",
            },
        )
        log.warning("payment_paid_by_other_tx", payment_id=payment_id, tx_hash=outcome.tx_hash, ours=tx_hash)
    elif outcome.state is AuthorizationState.UNKNOWN:
        conn.execute(q("replan_payment"), {**ids, "error": "authorization used; settlement not found yet"})
    else:
        error = (
            "authorization_canceled"
            if outcome.state is AuthorizationState.CANCELED
            else f"transferWithAuthorization failed in {tx_hash}; the money did not move"
        )
        conn.execute(q("fail_sent_payment"), {**ids, "tx_hash": tx_hash, "error": error})
        log.info("payment_failed", payment_id=payment_id, tx_hash=tx_hash, error=error)


def settle_mints(
    conn: Connection[Any], chain_tx_id: int, tx_hash: str, receipt: TxReceipt, *, max_attempts: int
) -> None:
    """TokensMinted completes a mint, MintSkipped(sold out / bad recipient) fails it; the rest retry."""
    mints = conn.execute(q("mints_of_chain_tx"), {"chain_tx_id": chain_tx_id}).fetchall()
    minted, refused = mint_results(receipt) if receipt["status"] == 1 else (set(), {})
    args = {"chain_tx_id": chain_tx_id, "tx_hash": tx_hash}
    conn.execute(
        q("complete_sent_mints"), {**args, "ids": [m["id"] for m in mints if m["mint_id"] in minted]}
    )
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
