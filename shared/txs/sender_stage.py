"""What payment-sender and mint-sender share: a pool of relayer keys (shared/relayer.py), and the
claim → process → (on error) release-with-backoff cycle over leased rows."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from eth_account.signers.local import LocalAccount

from shared import metrics
from shared.config import StageSettings
from shared.db.queries import q
from shared.runtime import Runtime
from shared.txs.relayer import Relayer, RelayerOutOfFunds
from shared.txs.retry import retry_delay

log = structlog.get_logger()


class SenderStage:
    name: str
    channels: tuple[str, ...]
    claim_query: str  # named block: claims rows (status → processing) under a claim token and lease
    release_query: str  # named block: puts this claim's unfinished rows back to pending after a delay

    def __init__(self, runtime: Runtime, keys: Sequence[LocalAccount], stage_settings: StageSettings) -> None:
        if not keys:
            raise ValueError(f"{self.name} needs at least one relayer key")
        self.rt = runtime
        self.settings = runtime.settings
        self.stage_settings = stage_settings
        self.wake_after: float | None = None
        self.relayers = [Relayer(runtime, key, self.name) for key in keys]
        self._turn = 0
        self._upkept_at = float("-inf")

    def start(self) -> None:
        """Line each key's stored nonce up with the chain before sending anything."""
        for relayer in self.relayers:
            relayer.reconcile_nonce()

    def next_relayer(self) -> Relayer:
        """Claims take the pool's keys in turn, so each key carries a share of the transactions (and
        one key's stuck transaction holds up only its own share)."""
        relayer = self.relayers[self._turn % len(self.relayers)]
        self._turn += 1
        return relayer

    def run_once(self) -> int:
        self.wake_after = None
        upkept = 0
        now = time.monotonic()
        # At most every UPKEEP_INTERVAL_SECONDS: a busy stage claims many batches a second, and the
        # upkeep's chain reads (fees, nonces, gas money) need not be repeated for each.
        if now - self._upkept_at >= self.settings.upkeep_interval_seconds:
            self._upkept_at = now
            try:
                upkept = self.upkeep()
            except Exception as exc:  # upkeep is retried next round; it must not hold up new work
                log.warning("upkeep_failed", stage=self.name, error=str(exc)[:300])
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
        if not rows:
            return upkept
        metrics.batch_size.labels(self.name).observe(len(rows))
        try:
            self.process(rows, claim_token, self.next_relayer())
        except Exception as exc:
            self.release(rows, claim_token, exc)
            if not isinstance(exc, RelayerOutOfFunds):
                raise
        return len(rows) + upkept

    def upkeep(self) -> int:
        """Each key fills its nonce gaps and re-signs its stuck transactions with bumped fees."""
        return self.run_parts(
            [(f"relayer {r.address}", r.upkeep) for r in self.relayers]
            + [(f"relayer {r.address} status", r.report_status) for r in self.relayers]
        )

    def run_parts(self, parts: Sequence[tuple[str, Callable[[], int]]]) -> int:
        """Run each part of the upkeep; one that fails (an RPC error) is logged and tried again next
        round, and never keeps the others from running."""
        done = 0
        for name, part in parts:
            try:
                done += part()
            except Exception as exc:
                log.warning("upkeep_failed", stage=self.name, part=name, error=str(exc)[:300])
        return done

    def release(self, rows: list[dict[str, Any]], claim_token: uuid.UUID, exc: Exception) -> None:
        delay = retry_delay(
            max(int(r["attempts"]) for r in rows),
            base=self.settings.retry_base_seconds,
            cap=self.settings.retry_cap_seconds,
        )
        with self.rt.pool.connection() as conn, conn.transaction():
            conn.execute(
                q(self.release_query),
                {
                    "ids": [r["id"] for r in rows],
                    "claim_token": claim_token,
                    "delay": delay,
                    "error": f"{type(exc).__name__}: {exc}"[:500],
                },
            )
        log.warning("batch_released", stage=self.name, items=len(rows), retry_in=delay, error=str(exc)[:200])

    def process(self, rows: list[dict[str, Any]], claim_token: uuid.UUID, relayer: Relayer) -> None:
        """Do the chain work for claimed rows from `relayer`; every write is a compare-and-set on
        `claim_token`."""
        raise NotImplementedError
