"""One relayer key of a sender stage: its nonces live in PostgreSQL, its transactions are signed and
stored before they are broadcast, and it keeps its own transactions moving (gap fillers, fee bumps).

A stage holds a pool of these (PAYMENT_RELAYER_KEYS / MINT_RELAYER_KEYS); any number of processes may
share a key, because every nonce is allocated under the key's row lock in PostgreSQL.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from eth_account.signers.local import LocalAccount
from psycopg import Connection
from web3 import Web3

from shared import chain, metrics
from shared.chain import Fees
from shared.chain.broadcast_errors import BroadcastOutcome
from shared.db.queries import q
from shared.runtime import Runtime
from shared.txs import nonces, txstore
from shared.txs.broadcaster import Outgoing, broadcast_stored
from shared.txs.retry import bumped_fees

log = structlog.get_logger()
UPKEEP_BATCH = 20
STATUS_EVERY_SECONDS = 10.0
GAP_FILL_BATCH = 50


class RelayerOutOfFunds(RuntimeError):
    """The relayer cannot pay for the gas of this batch: alert, back off, keep the work."""


class Relayer:
    def __init__(self, runtime: Runtime, account: LocalAccount, stage: str) -> None:
        self.rt = runtime
        self.settings = runtime.settings
        self.account = account
        self.address = account.address.lower()
        self.stage = stage
        self._reported_at = float("-inf")

    def reconcile_nonce(self) -> int:
        """Line the stored next nonce up with the chain (at start, and after "nonce too low")."""
        with self.rt.pool.connection() as conn:
            nonce = nonces.reconcile(
                conn, self.settings.chain_id, self.address, chain.pending_nonce(self.rt.w3, self.address)
            )
        log.info("relayer_nonce_reconciled", stage=self.stage, relayer=self.address, next_nonce=nonce)
        return nonce

    def allocate(self, conn: Connection[Any], count: int) -> int:
        """The first of `count` consecutive nonces of this key (in the caller's transaction)."""
        return nonces.allocate(conn, self.settings.chain_id, self.address, count)

    def sign_and_store(
        self,
        conn: Connection[Any],
        *,
        nonce: int,
        to: str,
        data: str | bytes,
        gas: int,
        fees: Fees,
        purpose: str,
    ) -> tuple[int, chain.SignedTx]:
        """Sign a new transaction at `nonce` and store it (write-ahead, in the caller's transaction)."""
        signed = chain.sign(
            self.account, chain_id=self.settings.chain_id, nonce=nonce, to=to, data=data, gas=gas, fees=fees
        )
        chain_tx_id = txstore.store_signed(
            conn, chain_id=self.settings.chain_id, from_address=self.address, purpose=purpose, signed=signed
        )
        return chain_tx_id, signed

    def send(self, outgoing: list[Outgoing], event: str) -> None:
        """Broadcast transactions just stored; a "nonce too low" means the key was used elsewhere, so the
        stored next nonce is lined up with the chain again (the confirmer re-plans the lost ones)."""
        if BroadcastOutcome.NONCE_TOO_LOW in broadcast_stored(self.rt, outgoing, event):
            self.reconcile_nonce()

    def ensure_gas_money(self, transactions: int, gas_limit: int, fees: Fees) -> None:
        need = transactions * gas_limit * fees.max_fee_per_gas
        balance = int(self.rt.w3.eth.get_balance(Web3.to_checksum_address(self.address)))
        if balance < need:
            log.error(
                "relayer_out_of_funds", stage=self.stage, relayer=self.address, balance=balance, need=need
            )
            raise RelayerOutOfFunds(f"relayer {self.address} has {balance} wei, needs {need} for this batch")

    def upkeep(self) -> int:
        """Fill nonce gaps, then re-sign this relayer's stuck transactions with bumped fees."""
        return self.fill_nonce_gaps() + self.bump_stuck()

    def report_status(self) -> int:
        """Every STATUS_EVERY_SECONDS: the key's gas money and mined nonce, written where the metrics,
        `stats` and the dashboard read them (relayer_status, 0016). Nothing moves: returns 0."""
        now = time.monotonic()
        if now - self._reported_at < STATUS_EVERY_SECONDS:
            return 0
        self._reported_at = now
        account = Web3.to_checksum_address(self.address)
        balance = int(self.rt.w3.eth.get_balance(account))
        mined = int(self.rt.w3.eth.get_transaction_count(account, "latest"))
        with self.rt.pool.connection() as conn:
            conn.execute(
                q("record_relayer_status"),
                {
                    "chain_id": self.settings.chain_id,
                    "address": self.address,
                    "stage": self.stage,
                    "balance": balance,
                    "mined": mined,
                },
            )
            conn.execute(q("forget_old_relayer_status"))
        return 0

    def fill_nonce_gaps(self) -> int:
        """Nonces between the chain's mined count and our lowest open transaction that have no stored
        transaction would jam everything after them: fill each with a 0-value transfer to ourselves."""
        with self.rt.pool.connection() as conn:
            row = conn.execute(
                q("lowest_open_nonce"), {"chain_id": self.settings.chain_id, "address": self.address}
            ).fetchone()
            conn.rollback()
        if row is None or row["nonce"] is None:
            return 0
        mined = int(self.rt.w3.eth.get_transaction_count(Web3.to_checksum_address(self.address), "latest"))
        low, high = mined, min(int(row["nonce"]), mined + GAP_FILL_BATCH)
        if low >= high:
            return 0
        outgoing: list[Outgoing] = []
        fees = chain.quote_fees(self.rt.w3)
        with self.rt.pool.connection() as conn, conn.transaction():
            stored = {
                r["nonce"]
                for r in conn.execute(
                    q("stored_nonces_between"),
                    {"chain_id": self.settings.chain_id, "address": self.address, "low": low, "high": high},
                )
            }
            for nonce in sorted(set(range(low, high)) - stored):
                chain_tx_id, signed = self.sign_and_store(
                    conn, nonce=nonce, to=self.address, data=b"", gas=21_000, fees=fees, purpose="filler"
                )
                outgoing.append(Outgoing(chain_tx_id, signed.raw, signed.tx_hash, nonce))
        if outgoing:
            log.warning(
                "nonce_gap_filled", stage=self.stage, relayer=self.address, nonces=[o.nonce for o in outgoing]
            )
        broadcast_stored(self.rt, outgoing, "filler_tx_broadcast")
        return len(outgoing)

    def bump_stuck(self) -> int:
        """Re-sign this relayer's stuck transactions with bumped fees (a new attempt, same nonce)."""
        outgoing: list[Outgoing] = []
        stuck_now = {
            "chain_id": self.settings.chain_id,
            "address": self.address,
            "stuck_after": self.settings.stuck_after_seconds,
            "limit": UPKEEP_BATCH,
        }
        with self.rt.pool.connection() as conn:  # a look first, so no row is locked while the node is asked
            if not conn.execute(q("stuck_txs_of_sender"), stuck_now).fetchall():
                return 0
            conn.rollback()
        market = chain.quote_fees(self.rt.w3, max_age=0)
        with self.rt.pool.connection() as conn, conn.transaction():
            stuck = conn.execute(q("stuck_txs_of_sender"), stuck_now).fetchall()
            for tx in stuck:
                fees = bumped_fees(
                    Fees(int(tx["max_fee_per_gas"]), int(tx["max_priority_fee"])),
                    market,
                    max_fee_cap=self.settings.max_fee_per_gas_cap,
                )
                if fees is None:
                    log.error("fee_cap_reached", stage=self.stage, chain_tx_id=tx["id"], nonce=tx["nonce"])
                    continue
                signed = self._resign(tx, fees)
                txstore.add_attempt(conn, tx["id"], signed, "cancel" if tx["cancel_reason"] else "work")
                outgoing.append(
                    Outgoing(
                        tx["id"],
                        signed.raw,
                        signed.tx_hash,
                        signed.nonce,
                        {"bumped_max_fee": fees.max_fee_per_gas},
                    )
                )
        metrics.transactions_bumped.labels(self.stage).inc(len(outgoing))
        broadcast_stored(self.rt, outgoing, "tx_fee_bumped")  # "nonce too low" here: it was mined
        return len(outgoing)

    def _resign(self, tx: dict[str, Any], fees: Fees) -> chain.SignedTx:
        if tx["cancel_reason"]:  # a 0-value transfer to ourselves fills the nonce and does nothing else
            return chain.sign(
                self.account,
                chain_id=self.settings.chain_id,
                nonce=tx["nonce"],
                to=self.address,
                data=b"",
                gas=21_000,
                fees=fees,
            )
        return chain.sign(
            self.account,
            chain_id=self.settings.chain_id,
            nonce=tx["nonce"],
            to=tx["to_address"],
            data=bytes(tx["data"]),
            gas=int(tx["gas_limit"]),
            fees=fees,
        )
