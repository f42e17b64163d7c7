"""Broadcast transactions already stored (and committed) by txstore, and record how each went."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog

from shared import chain, metrics
from shared.chain.broadcast_errors import BroadcastOutcome
from shared.runtime import Runtime
from shared.txs import txstore

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class Outgoing:
    chain_tx_id: int
    raw: bytes
    tx_hash: str
    nonce: int
    context: dict[str, Any] = field(default_factory=dict)  # ids for the log line


def broadcast_stored(rt: Runtime, outgoing: list[Outgoing], event: str) -> set[BroadcastOutcome]:
    """Send each; failures stay stored for the confirmer to re-send, so nothing here raises for them.
    Returns the outcomes seen, so a sender can react (e.g. reconcile its nonce)."""
    results: list[tuple[int, str | None]] = []
    seen: set[BroadcastOutcome] = set()
    for item in outgoing:
        outcome, message = chain.broadcast(rt.w3, item.raw)
        seen.add(outcome)
        metrics.transactions_broadcast.labels(event, outcome.value).inc()
        results.append((item.chain_tx_id, None if outcome.delivered else f"{outcome.value}: {message}"))
        log.info(
            event,
            chain_tx_id=item.chain_tx_id,
            tx_hash=item.tx_hash,
            nonce=item.nonce,
            outcome=outcome.value,
            error=message or None,
            **item.context,
        )
    with rt.pool.connection() as conn:
        txstore.record_broadcasts(conn, results)
    return seen
