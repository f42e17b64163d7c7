"""confirmer: reads receipts of stored transactions and settles the work they carry.

A payment whose transferWithAuthorization succeeded (at the configured depth, in a block that is
still canonical) becomes `completed` and its `quantity` mint rows are inserted in the same database
transaction; a reverted one becomes `failed` and gets none. A mint transaction's logs decide each
mint: TokensMinted or "already minted" → completed, "sold out" → failed, absent → pending again.
A transaction with no receipt is (re)broadcast from its stored bytes, never re-signed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from psycopg import Connection
from web3.exceptions import TransactionNotFound
from web3.logs import DISCARD
from web3.types import TxReceipt

from shared.broadcaster import Outgoing, broadcast_stored
from shared.mint_ids import mint_id
from shared.queries import q
from shared.runtime import Runtime

log = structlog.get_logger()
RECHECK_SECONDS = 0.5
# MintToken's MintSkipped reasons: the id is on chain already (as good as minted), or it never will be.
SKIP_ALREADY_MINTED = 1
SKIP_FAILURES = {2: "sold_out", 3: "invalid_recipient"}


class Confirmer:
    name = "confirmer"
    channels = ("x402_chain_txs_unconfirmed",)

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.settings = runtime.settings
        self.stage_settings = runtime.settings.confirm_stage
        self.token_events = runtime.token()
        self.wake_after: float | None = None

    def start(self) -> None:
        pass

    def run_once(self) -> int:
        with self.rt.pool.connection() as conn, conn.transaction():
            txs = conn.execute(
                q("claim_unconfirmed_txs"),
                {"limit": self.stage_settings.batch_size, "lease": self.settings.lease_seconds},
            ).fetchall()
        self.wake_after = None
        if not txs:
            self._schedule_wake()
            return 0
        head = self.rt.w3.eth.block_number
        settled = 0
        for tx in txs:
            receipt = self._receipt(tx["tx_hashes"])
            if receipt is None or not self._final(receipt, head):
                self._not_yet(tx, receipt)
                self.wake_after = RECHECK_SECONDS
                continue
            with self.rt.pool.connection() as conn, conn.transaction():
                if self._settle(conn, tx, receipt):
                    settled += 1
        return settled

    def _schedule_wake(self) -> None:
        with self.rt.pool.connection() as conn:
            row = conn.execute(q("seconds_until_next_check")).fetchone()
            conn.rollback()
        if row and row["seconds"] is not None:
            self.wake_after = max(0.05, float(row["seconds"]))

    def _receipt(self, tx_hashes: list[str]) -> TxReceipt | None:
        for tx_hash in reversed(tx_hashes):
            try:
                return self.rt.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                continue
        return None

    def _final(self, receipt: TxReceipt, head: int) -> bool:
        """Deep enough, and its block is still the canonical one at that height."""
        if receipt["blockNumber"] + self.settings.confirmations - 1 > head:
            return False
        block = self.rt.w3.eth.get_block(receipt["blockNumber"])
        return bytes(block["hash"]) == bytes(receipt["blockHash"])

    def _not_yet(self, tx: dict[str, Any], receipt: TxReceipt | None) -> None:
        if receipt is None and self._rebroadcast_due(tx):
            stored = Outgoing(tx["id"], bytes(tx["latest_raw_tx"]), tx["tx_hashes"][-1], tx["nonce"])
            broadcast_stored(self.rt, [stored], "tx_rebroadcast")
        with self.rt.pool.connection() as conn, conn.transaction():
            conn.execute(q("recheck_chain_tx_later"), {"id": tx["id"], "delay": RECHECK_SECONDS})

    def _rebroadcast_due(self, tx: dict[str, Any]) -> bool:
        if tx["broadcast_count"] == 0:
            age = (datetime.now(UTC) - tx["created_at"]).total_seconds()
            return bool(age > 1.0)  # its sender had a moment to broadcast it and did not: it died in between
        last = tx["last_broadcast_at"]
        return (
            last is None
            or (datetime.now(UTC) - last).total_seconds() > self.settings.rebroadcast_after_seconds
        )

    def _settle(self, conn: Connection[Any], tx: dict[str, Any], receipt: TxReceipt) -> bool:
        succeeded = receipt["status"] == 1
        tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
        won = conn.execute(
            q("settle_chain_tx"),
            {
                "id": tx["id"],
                "state": "confirmed" if succeeded else "reverted",
                "tx_hash": tx_hash,
                "block_number": receipt["blockNumber"],
                "gas_used": receipt["gasUsed"],
            },
        ).fetchone()
        if won is None:
            return False  # another confirmer settled it first
        if tx["purpose"] == "payment":
            self._settle_payment(conn, tx["id"], tx_hash, succeeded)
        else:
            self._settle_mints(conn, tx["id"], tx_hash, receipt)
        return True

    def _settle_payment(self, conn: Connection[Any], chain_tx_id: int, tx_hash: str, succeeded: bool) -> None:
        if not succeeded:
            for row in conn.execute(
                q("fail_sent_payment"),
                {
                    "chain_tx_id": chain_tx_id,
                    "tx_hash": tx_hash,
                    "error": "transferWithAuthorization reverted on chain",
                },
            ).fetchall():
                log.info("payment_failed", payment_id=str(row["id"]), tx_hash=tx_hash)
            return
        for p in conn.execute(
            q("complete_payment"), {"chain_tx_id": chain_tx_id, "tx_hash": tx_hash}
        ).fetchall():
            nonce = bytes.fromhex(p["nonce"][2:])
            ids = [
                "0x" + mint_id(p["token_address"], p["asset"], p["payer"], nonce, i).hex()
                for i in range(p["quantity"])
            ]
            conn.execute(
                q("insert_mints"),
                {
                    "payment_id": p["id"],
                    "mint_ids": ids,
                    "token_address": p["token_address"],
                    "recipient": p["recipient"],
                },
            )
            log.info("payment_completed", payment_id=str(p["id"]), tx_hash=tx_hash, mints=p["quantity"])

    def _settle_mints(
        self, conn: Connection[Any], chain_tx_id: int, tx_hash: str, receipt: TxReceipt
    ) -> None:
        mints = conn.execute(q("mints_of_chain_tx"), {"chain_tx_id": chain_tx_id}).fetchall()
        minted: set[str] = set()
        refused: dict[str, str] = {}  # mint id -> why it can never be minted
        if receipt["status"] == 1:
            for ev in self.token_events.events.TokensMinted().process_receipt(receipt, errors=DISCARD):
                minted.add("0x" + bytes(ev["args"]["mintId"]).hex())
            for ev in self.token_events.events.MintSkipped().process_receipt(receipt, errors=DISCARD):
                key = "0x" + bytes(ev["args"]["mintId"]).hex()
                if ev["args"]["reason"] == SKIP_ALREADY_MINTED:
                    minted.add(key)
                else:
                    refused[key] = SKIP_FAILURES.get(
                        ev["args"]["reason"], f"skipped ({ev['args']['reason']})"
                    )
        args = {"chain_tx_id": chain_tx_id, "tx_hash": tx_hash}
        done = [m["id"] for m in mints if m["mint_id"] in minted]
        conn.execute(q("complete_sent_mints"), {**args, "ids": done})
        for m in mints:
            if m["mint_id"] in refused:
                conn.execute(q("fail_sent_mints"), {**args, "ids": [m["id"]], "error": refused[m["mint_id"]]})
        rest = [m for m in mints if m["mint_id"] not in minted and m["mint_id"] not in refused]
        exhausted = [m["id"] for m in rest if m["attempts"] >= self.settings.max_mint_attempts]
        retry = [m["id"] for m in rest if m["attempts"] < self.settings.max_mint_attempts]
        conn.execute(
            q("fail_sent_mints"),
            {**args, "ids": exhausted, "error": "mint transaction reverted; retries exhausted"},
        )
        conn.execute(
            q("retry_sent_mints"),
            {
                "chain_tx_id": chain_tx_id,
                "ids": retry,
                "error": f"mint transaction {tx_hash} did not mint it",
            },
        )
        log.info(
            "mint_tx_settled",
            chain_tx_id=chain_tx_id,
            tx_hash=tx_hash,
            completed=len(done),
            refused=len(refused),
            retried=len(retry),
            exhausted=len(exhausted),
        )


def create(runtime: Runtime) -> Confirmer:
    return Confirmer(runtime)
