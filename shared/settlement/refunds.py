"""Refunds: money that arrived for a payment that can never be minted goes back to its payer, once.

An operator orders it (`x402-mint refund`, shared/settlement/review.py); refund-sender sends
MintToken.refund(paymentKey, payer, amount) through the write-ahead path; the confirmer settles it
from the receipt's Refunded log. The contract records the payment's key before it transfers, so the
same payment can never be refunded twice, whoever asks and however often.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from eth_hash.auto import keccak
from psycopg import Connection
from web3.types import TxReceipt

from shared.db.queries import q

log = structlog.get_logger()
REFUNDED_TOPIC = keccak(b"Refunded(bytes32,address,uint256)")


def _bytes(value: Any) -> bytes:
    return bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)


def refunded_keys(receipt: Any) -> set[str]:
    """The payment keys a receipt's Refunded logs show refunded."""
    keys: set[str] = set()
    for entry in receipt["logs"]:
        topics = [_bytes(t) for t in entry["topics"]]
        if len(topics) == 3 and topics[0] == REFUNDED_TOPIC:
            keys.add("0x" + topics[1].hex())
    return keys


def complete(
    conn: Connection[Any],
    refund_id: Any,
    tx_hash: str | None,
    *,
    expected: str,
    claim_token: uuid.UUID | None = None,
    chain_tx_id: int | None = None,
) -> bool:
    """The refund is done and its payment refunded (one statement); False when the guard failed."""
    row = conn.execute(
        q("complete_refund"),
        {
            "id": refund_id,
            "tx_hash": tx_hash,
            "expected": expected,
            "claim_token": claim_token,
            "chain_tx_id": chain_tx_id,
        },
    ).fetchone()
    if row is not None:
        log.info("payment_refunded", payment_id=str(row["id"]), refund_id=str(refund_id), tx_hash=tx_hash)
    return row is not None


def settle(
    conn: Connection[Any], chain_tx_id: int, tx_hash: str, receipt: TxReceipt, *, max_attempts: int
) -> None:
    """Confirmer: a Refunded log completes a refund; otherwise it is tried again, or fails once its
    attempts ran out."""
    done = refunded_keys(receipt) if receipt["status"] == 1 else set()
    for r in conn.execute(q("refunds_of_chain_tx"), {"chain_tx_id": chain_tx_id}).fetchall():
        if r["payment_key"] in done:
            complete(conn, r["id"], tx_hash, expected="sent", chain_tx_id=chain_tx_id)
        elif r["attempts"] >= max_attempts:
            error = f"refund transaction {tx_hash} did not refund it; retries exhausted"
            conn.execute(q("fail_sent_refund"), {"id": r["id"], "chain_tx_id": chain_tx_id, "error": error})
            log.error("refund_failed", refund_id=str(r["id"]), tx_hash=tx_hash)
        else:
            error = f"refund transaction {tx_hash} did not refund it"
            conn.execute(q("retry_sent_refund"), {"id": r["id"], "chain_tx_id": chain_tx_id, "error": error})
