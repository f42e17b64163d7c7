"""What payment-sender and mint-sender share: a relayer key whose nonces live in PostgreSQL, and the
claim → process → (on error) release cycle over leased rows."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from eth_account.signers.local import LocalAccount

from shared import chain, nonces
from shared.config import StageSettings
from shared.queries import q
from shared.runtime import Runtime

log = structlog.get_logger()


class SenderStage:
    name: str
    channels: tuple[str, ...]
    claim_query: str  # named block: claims rows (status → processing) under a claim token and lease
    release_query: str  # named block: puts this claim's unfinished rows straight back to pending

    def __init__(self, runtime: Runtime, relayer: LocalAccount, stage_settings: StageSettings) -> None:
        self.rt = runtime
        self.settings = runtime.settings
        self.stage_settings = stage_settings
        self.wake_after: float | None = None
        self.relayer = relayer
        self.address = relayer.address.lower()

    def start(self) -> None:
        """Line the stored nonce up with the chain before sending anything."""
        self.reconcile_nonce()

    def reconcile_nonce(self) -> int:
        with self.rt.pool.connection() as conn:
            nonce = nonces.reconcile(
                conn, self.settings.chain_id, self.address, chain.pending_nonce(self.rt.w3, self.address)
            )
        log.info("relayer_nonce_reconciled", stage=self.name, relayer=self.address, next_nonce=nonce)
        return nonce

    def run_once(self) -> int:
        claim_token = uuid.uuid4()
        with self.rt.pool.connection() as conn, conn.transaction():
            rows = conn.execute(
                q(self.claim_query),
                {
                    "limit": self.stage_settings.batch_size,
                    "claim_token": claim_token,
                    "lease": self.settings.lease_seconds,
                },
            ).fetchall()
        self.wake_after = None
        if not rows:
            return 0
        try:
            self.process(rows, claim_token)
        except Exception:
            with self.rt.pool.connection() as conn, conn.transaction():
                conn.execute(
                    q(self.release_query), {"ids": [r["id"] for r in rows], "claim_token": claim_token}
                )
            raise
        return len(rows)

    def process(self, rows: list[dict[str, Any]], claim_token: uuid.UUID) -> None:
        """Do the chain work for claimed rows; every write is a compare-and-set on `claim_token`."""
        raise NotImplementedError
