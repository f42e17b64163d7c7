"""Write-ahead storage of chain transactions: persisted, and committed, before any broadcast."""

from __future__ import annotations

from typing import Any

from psycopg import Connection

from shared.chain import SignedTx
from shared.db.queries import q


def store_signed(
    conn: Connection[Any], *, chain_id: int, from_address: str, purpose: str, signed: SignedTx
) -> int:
    """Record a new logical transaction and its first attempt (inside the caller's transaction)."""
    row = conn.execute(
        q("insert_chain_tx"),
        {
            "chain_id": chain_id,
            "from_address": from_address,
            "nonce": signed.nonce,
            "purpose": purpose,
            "to_address": signed.to,
            "data": signed.data,
            "gas_limit": signed.gas_limit,
        },
    ).fetchone()
    assert row is not None
    chain_tx_id = int(row["id"])
    add_attempt(conn, chain_tx_id, signed, "work")
    return chain_tx_id


def add_attempt(conn: Connection[Any], chain_tx_id: int, signed: SignedTx, kind: str) -> None:
    """Another signed version of the same logical transaction (same nonce): a fee bump or a cancel."""
    conn.execute(
        q("insert_chain_tx_attempt"),
        {
            "chain_tx_id": chain_tx_id,
            "tx_hash": signed.tx_hash,
            "raw_tx": signed.raw,
            "max_fee": signed.fees.max_fee_per_gas,
            "max_priority": signed.fees.max_priority_fee,
            "gas_limit": signed.gas_limit,
            "kind": kind,
        },
    )


def record_broadcasts(conn: Connection[Any], results: list[tuple[int, str | None]]) -> None:
    """After broadcasting: count each attempt and keep the node's error, if any (autocommit-safe)."""
    if not results:
        return
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(q("record_broadcast"), [{"id": tx_id, "error": err} for tx_id, err in results])
