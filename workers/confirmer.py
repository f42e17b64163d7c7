"""confirmer: reads receipts of stored transactions and settles the work they carry.

The chain decides. A payment is `completed` — and its `quantity` mint rows are inserted in the same
database transaction — only when a receipt at the configured depth, in a block that is still
canonical, shows the authorization used and the USDC arriving at payTo. If our transaction reverted
because someone else submitted the authorization first, the payment follows that transaction instead.
A mint transaction's logs decide each mint. A transaction with no receipt is re-sent from its stored
bytes (never re-signed); one whose nonce was taken by a transaction that is not ours, or that vanished
in a reorg, or was cancelled, hands its work back to the stage that sends it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from psycopg import Connection
from web3 import Web3
from web3.types import TxReceipt

from shared import metrics
from shared.chain import history, rpc_batch
from shared.chain.history import Pinned
from shared.db.queries import q
from shared.runtime import Runtime
from shared.settlement import outcomes, refunds
from shared.settlement.authorizations import (
    Fate,
    Outcome,
    PaidBy,
    ReceiptLogs,
    Terms,
    fate,
    payment_terms,
)
from shared.txs.broadcaster import Outgoing, broadcast_stored

log = structlog.get_logger()
RECHECK_SECONDS = 0.5
# Just broadcast: its receipt may be a moment away (a node serves it shortly after it accepted it).
FRESH_SECONDS, FRESH_RECHECK_SECONDS = 2.0, 0.05
ERROR_RECHECK_SECONDS = 2.0
DROP_GRACE_SECONDS = 5.0
# Next in line for its sender (its nonce is the sender's mined count) and still not mined this long
# after it was sent: re-sent from its stored bytes. A node now and then loses a transaction it accepted
# (anvil does), and every later one of the sender waits behind it; a node that still holds it answers
# "already known", nothing more.
HEAD_OF_LINE_RESEND_SECONDS = 1.0


class Confirmer:
    name = "confirmer"
    channels = ("x402_chain_txs_unconfirmed",)

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.settings = runtime.settings
        self.stage_settings = runtime.settings.confirm_stage
        self.wake_after: float | None = None
        # Read for the whole claim in one JSON-RPC batch each; what is missing is read one at a time.
        self._receipts: dict[str, TxReceipt | None] = {}
        self._block_hashes: dict[int, bytes] = {}
        self._mined_nonces: dict[str, int] = {}  # sender (lower-case) → its transaction count
        self._looked_again: set[int] = set()  # ids whose receipts were read after their nonce
        self._pinned: history.Pinned | None = None
        self._rechecks: list[tuple[str, dict[str, Any]]] = []  # written together after the batch

    def start(self) -> None:
        pass

    def run_once(self) -> int:
        with self.rt.pool.connection() as conn, conn.transaction():
            txs = conn.execute(
                q("claim_unconfirmed_txs"),
                {"limit": self.stage_settings.batch_size, "lease": self.settings.lease_seconds},
            ).fetchall()
        self.wake_after = None
        self._pinned = None
        if not txs:
            self._schedule_wake()
            return 0
        metrics.batch_size.labels(self.name).observe(len(txs))
        self._prefetch(txs)
        head = self.rt.w3.eth.block_number  # after the receipts: at least as new as any block they name
        settled = 0
        self._rechecks = []
        for tx in txs:
            try:
                settled += self._check(tx, head)
            except Exception as exc:  # one bad answer must not hold the others for a whole lease
                log.warning("tx_check_failed", chain_tx_id=tx["id"], nonce=tx["nonce"], error=str(exc)[:300])
                self._recheck(tx, delay=ERROR_RECHECK_SECONDS)
        self._write_rechecks()
        log.info("confirmer_batch", checking=len(txs), confirmed=settled, head=head)  # the seed's line
        return settled

    def _prefetch(self, txs: list[dict[str, Any]]) -> None:
        """Receipts of every attempt; for the transactions without one, their senders' mined nonces,
        then — only where the nonce shows their own was used — their receipts again (one mined in
        between is not missed); block hashes of every receipt. One JSON-RPC batch each."""
        self._receipts = rpc_batch.receipts(
            self.rt.w3, [a["hash"] for tx in txs for a in tx["attempts"] or []]
        )
        missing = [  # the batch says no attempt has a receipt (not asked: looked at one by one later)
            tx for tx in txs if all(self._receipts.get(a["hash"], 0) is None for a in tx["attempts"] or [])
        ]
        self._mined_nonces = rpc_batch.mined_nonces(self.rt.w3, [tx["from_address"] for tx in missing])
        used = [tx for tx in missing if tx["nonce"] < self._mined_nonces.get(tx["from_address"].lower(), -1)]
        again = rpc_batch.receipts(self.rt.w3, [a["hash"] for tx in used for a in tx["attempts"] or []])
        self._receipts.update(again)
        self._looked_again = {tx["id"] for tx in used if all(a["hash"] in again for a in tx["attempts"])}
        self._block_hashes = rpc_batch.block_hashes(
            self.rt.w3, [r["blockNumber"] for r in self._receipts.values() if r is not None]
        )

    def _schedule_wake(self) -> None:
        with self.rt.pool.connection() as conn:
            row = conn.execute(q("seconds_until_next_check")).fetchone()
            conn.rollback()
        if row and row["seconds"] is not None:
            self.wake_after = max(0.05, float(row["seconds"]))

    def _check(self, tx: dict[str, Any], head: int) -> int:
        found = self._receipt(tx)
        if found is None:
            # Read the nonce first, then look again: a receipt mined in between is not missed. The
            # batch did both where it could (_prefetch); what it could not read is read here.
            mined_nonce = self._mined_nonces.get(tx["from_address"].lower())
            if mined_nonce is None:
                sender = Web3.to_checksum_address(tx["from_address"])
                mined_nonce = self.rt.w3.eth.get_transaction_count(sender, "latest")
            if mined_nonce > tx["nonce"]:
                if tx["id"] not in self._looked_again:
                    found = self._receipt(tx, fresh=True)
                if found is None:
                    return self._nonce_used_elsewhere(tx)
        if found is None:
            self._not_yet(tx)
            return 0
        receipt, kind = found
        if receipt["blockNumber"] > head:  # mined since the head was read (found by the second look)
            head = max(head, self.rt.w3.eth.block_number)
        if receipt["blockNumber"] + self.settings.confirmations - 1 > head or not self._canonical(receipt):
            self._recheck(tx, seen_block=receipt["blockNumber"])
            return 0
        if kind == "cancel":
            return self._replan(tx, "cancelled", "cancelled: the authorization was used by someone else")
        decision = self._payment_decision(tx, receipt) if tx["purpose"] == "payment" else None
        with self.rt.pool.connection() as conn, conn.transaction():
            return self._settle(conn, tx, receipt, decision)

    def _nonce_used_elsewhere(self, tx: dict[str, Any]) -> int:
        """The nonce is used and no attempt of ours has a receipt: once that has held for the grace
        period, a transaction that is not ours took the nonce, and the work goes back to be re-sent."""
        with self.rt.pool.connection() as conn, conn.transaction():
            row = conn.execute(
                q("note_nonce_used"), {"id": tx["id"], "delay": FRESH_RECHECK_SECONDS}
            ).fetchone()
        if row is None or row["seconds"] < DROP_GRACE_SECONDS:
            self.wake_after = FRESH_RECHECK_SECONDS  # most often the receipt is only a moment away
            return 0
        return self._replan(tx, "dropped", f"nonce {tx['nonce']} was used by a transaction that is not ours")

    def _receipt(self, tx: dict[str, Any], *, fresh: bool = False) -> tuple[TxReceipt, str] | None:
        for attempt in reversed(tx["attempts"] or []):
            if not fresh and attempt["hash"] in self._receipts:
                receipt = self._receipts[attempt["hash"]]
                if receipt is not None:
                    return receipt, attempt["kind"]
                continue
            found = rpc_batch.receipt(self.rt.w3, attempt["hash"])
            if found is not None:
                return found, attempt["kind"]
        return None

    def _canonical(self, receipt: TxReceipt) -> bool:
        canonical = self._block_hashes.get(receipt["blockNumber"])
        if canonical is None:
            canonical = bytes(self.rt.w3.eth.get_block(receipt["blockNumber"])["hash"])
        return canonical == bytes(receipt["blockHash"])

    def _recheck(
        self, tx: dict[str, Any], *, seen_block: int | None = None, delay: float = RECHECK_SECONDS
    ) -> None:
        self.wake_after = min(self.wake_after or delay, delay)
        if seen_block is None:
            self._rechecks.append(("recheck_chain_tx_later", {"id": tx["id"], "delay": delay}))
        else:
            self._rechecks.append(
                ("mark_receipt_seen", {"id": tx["id"], "block_number": seen_block, "delay": RECHECK_SECONDS})
            )

    def _write_rechecks(self) -> None:
        """The batch's next checks, in one database transaction (a commit each cost a WAL flush each,
        a dozen times per transaction while it waits for its block). Lost with the process, a row is
        looked at again when its claim's lease runs out, as after any crash."""
        if not self._rechecks:
            return
        with self.rt.pool.connection() as conn, conn.transaction():
            for name, params in self._rechecks:
                conn.execute(q(name), params)
        self._rechecks = []

    def _not_yet(self, tx: dict[str, Any]) -> None:
        reorged = tx["seen_block_number"] is not None
        if tx["has_raw_tx"] and (reorged or self._rebroadcast_due(tx)):
            with self.rt.pool.connection() as conn, conn.transaction():
                if reorged:
                    log.warning(
                        "receipt_vanished_in_reorg", chain_tx_id=tx["id"], block=tx["seen_block_number"]
                    )
                    conn.execute(q("forget_receipt_seen"), {"id": tx["id"]})
                raw = conn.execute(q("latest_raw_tx"), {"id": tx["id"]}).fetchone()
            if raw is not None:
                hashes = [a["hash"] for a in tx["attempts"]]
                stored = Outgoing(tx["id"], bytes(raw["raw_tx"]), hashes[-1], tx["nonce"])
                broadcast_stored(self.rt, [stored], "tx_rebroadcast")
        last = tx["last_broadcast_at"]
        fresh = last is not None and (datetime.now(UTC) - last).total_seconds() < FRESH_SECONDS
        self._recheck(tx, delay=FRESH_RECHECK_SECONDS if fresh else RECHECK_SECONDS)

    def _rebroadcast_due(self, tx: dict[str, Any]) -> bool:
        now = datetime.now(UTC)
        if tx["broadcast_count"] == 0:  # its sender died between commit and broadcast
            return bool((now - tx["created_at"]).total_seconds() > 1.0)
        last = tx["last_broadcast_at"]
        if last is None:
            return True
        waited = float((now - last).total_seconds())
        head_of_line = self._mined_nonces.get(tx["from_address"].lower()) == tx["nonce"]
        return waited > (
            HEAD_OF_LINE_RESEND_SECONDS if head_of_line else self.settings.rebroadcast_after_seconds
        )

    def _replan(self, tx: dict[str, Any], state: str, reason: str) -> int:
        with self.rt.pool.connection() as conn, conn.transaction():
            if (
                conn.execute(q("drop_chain_tx"), {"id": tx["id"], "state": state, "error": reason}).fetchone()
                is None
            ):
                return 0
            query = {"payment": "replan_payments", "mint": "replan_mints", "refund": "replan_refunds"}.get(
                tx["purpose"]
            )
            rows = (
                conn.execute(q(query), {"chain_tx_id": tx["id"], "error": reason}).fetchall() if query else []
            )
        metrics.transactions_dropped.labels(tx["purpose"], state).inc()
        log.warning(
            "work_replanned",
            chain_tx_id=tx["id"],
            nonce=tx["nonce"],
            state=state,
            reason=reason,
            purpose=tx["purpose"],
            items=len(rows),
        )
        return 1

    def _payment_decision(self, tx: dict[str, Any], receipt: TxReceipt) -> dict[str, Outcome]:
        """Per payment of this transaction: paid by its own transfer in this receipt, or else what the
        chain says of its authorization at a block CONFIRMATIONS deep (this receipt is at least that
        deep, so the pinned block is not older)."""
        with self.rt.pool.connection() as conn:
            rows = conn.execute(q("payments_of_chain_tx"), {"chain_tx_id": tx["id"]}).fetchall()
            conn.rollback()
        if not rows:
            return {}
        if self._pinned is None:  # once per batch: every receipt settled in it is at least this deep
            self._pinned = history.pin(self.rt.w3, self.settings.confirmations)
        at = self._pinned
        tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
        decision: dict[str, Outcome] = {}
        logs = ReceiptLogs(list(receipt["logs"]) if receipt["status"] == 1 else [])
        for p in rows:
            terms = payment_terms(p)
            index = logs.paying(terms)
            if index is not None:
                paid = PaidBy(tx_hash, int(receipt["blockNumber"]), index)
                decision[str(p["id"])] = Outcome(Fate.PAID, at, paid)
            else:
                decision[str(p["id"])] = self._fate(p, terms, at)
        return decision

    def _fate(self, payment: dict[str, Any], terms: Terms, at: Pinned) -> Outcome:
        """Where a payment's authorization stands; a lookup the node failed makes only this payment
        undetermined (back to payment-sender, which looks again), never holds up the transaction's
        other payments."""
        try:
            return fate(self.rt.w3, terms, at, self.settings.log_search)
        except Exception as exc:
            log.warning("authorization_lookup_failed", payment_id=str(payment["id"]), error=str(exc)[:300])
            return Outcome(
                Fate.UNDETERMINED, at, detail=f"its authorization could not be looked up: {exc}"[:500]
            )

    def _settle(
        self,
        conn: Connection[Any],
        tx: dict[str, Any],
        receipt: TxReceipt,
        decision: dict[str, Outcome] | None,
    ) -> int:
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
            return 0  # another confirmer settled it first
        if tx["purpose"] == "mint":
            outcomes.settle_mints(
                conn, tx["id"], tx_hash, receipt, max_attempts=self.settings.max_mint_attempts
            )
        elif tx["purpose"] == "refund":
            refunds.settle(conn, tx["id"], tx_hash, receipt, max_attempts=self.settings.max_mint_attempts)
        elif decision is not None:  # a payment (a nonce filler carries no work)
            outcomes.settle_payments(
                conn, tx, tx_hash, decision, send_retries=self.settings.payment_send_retries
            )
        return 1


def create(runtime: Runtime) -> Confirmer:
    return Confirmer(runtime)
