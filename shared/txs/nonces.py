"""Relayer nonces kept in PostgreSQL, so any number of processes can share one key.

`allocate` takes the relayer's row lock for the length of the caller's (short, RPC-free)
transaction; the unique (chain_id, from_address, nonce) constraint on chain_txs backs it up.
"""

from __future__ import annotations

from typing import Any

from psycopg import Connection

from shared.db.queries import q


def reconcile(conn: Connection[Any], chain_id: int, address: str, chain_pending: int) -> int:
    """Make sure the row exists and is not behind the chain's pending count; return next_nonce."""
    with conn.transaction():
        conn.execute(
            q("ensure_relayer_nonce"), {"chain_id": chain_id, "address": address, "next": chain_pending}
        )
        row = conn.execute(
            q("advance_relayer_nonce"), {"chain_id": chain_id, "address": address, "next": chain_pending}
        ).fetchone()
    assert row is not None
    return int(_first(row))


def allocate(conn: Connection[Any], chain_id: int, address: str, count: int) -> int:
    """Reserve `count` consecutive nonces inside the caller's transaction; return the first."""
    row = conn.execute(
        q("allocate_relayer_nonces"), {"chain_id": chain_id, "address": address, "count": count}
    ).fetchone()
    if row is None:
        raise LookupError(f"no nonce row for relayer {address} on chain {chain_id}; reconcile first")
    return int(_first(row))


def _first(row: Any) -> Any:
    return next(iter(row.values())) if isinstance(row, dict) else row[0]
