"""payment-sender: settles accepted x402 payments on chain with transferWithAuthorization.

pending → processing (claim, leased) → sent (signed, stored, committed; then broadcast: the claim's
transfers go out together in one Multicall3 transaction, each allowed to fail alone), or
→ sent pointing at someone else's transaction (the authorization was already paid by a third party),
or → failed (pre-flight: the authorization cannot move the money now, so nothing is sent).
Its upkeep cancels its own unmined transactions whose authorizations someone else used meanwhile
(so no authorization is submitted after it is known used, and no nonce is left as a gap), and
watches failed payments until their authorization expires (shared/settlement/late_payments.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import structlog
from eth_account.signers.local import LocalAccount
from psycopg import Connection
from web3 import Web3
from web3.exceptions import TransactionNotFound

from shared import chain
from shared.chain import Fees
from shared.chain.reverts import AUTHORIZATION_USED
from shared.db.queries import q
from shared.runtime import Runtime
from shared.settlement import late_payments, outcomes, payment_calls
from shared.settlement.authorizations import AuthorizationState, Outcome, payment_outcome
from shared.txs.broadcaster import Outgoing
from shared.txs.relayer import Relayer
from shared.txs.retry import retry_delay
from shared.txs.sender_stage import SenderStage

log = structlog.get_logger()
_TRANSIENT = ("authorization is not yet valid",)


def is_transient(reason: str) -> bool:
    """A pre-flight revert that time will cure (the chain's clock has not reached validAfter)."""
    return any(marker in reason for marker in _TRANSIENT)


class PaymentSender(SenderStage):
    name = "payment-sender"
    channels = ("x402_payment_queue_pending",)
    claim_query = "claim_payments"
    release_query = "release_claimed_payments"

    def __init__(self, runtime: Runtime, keys: Sequence[LocalAccount]) -> None:
        super().__init__(runtime, keys, runtime.settings.payment_stage)
        self.usdc_abi = runtime.usdc()
        self.aggregator = runtime.settings.payment_aggregator

    def process(self, rows: list[dict[str, Any]], claim_token: uuid.UUID, relayer: Relayer) -> None:
        calls = {r["id"]: (r["asset"], payment_calls.transfer_calldata(self.usdc_abi, r)) for r in rows}
        verdicts = payment_calls.preflight(self.rt.w3, relayer.address, calls, self.aggregator)
        sendable: dict[Any, tuple[str, bytes]] = {}
        failures: dict[Any, str] = {}
        deferred: dict[Any, str] = {}
        paid_elsewhere: dict[Any, Outcome] = {}
        for row in rows:
            verdict = verdicts[row["id"]]
            if verdict is None:
                sendable[row["id"]] = calls[row["id"]]
            elif isinstance(verdict, payment_calls.Unavailable):
                deferred[row["id"]] = verdict.error
            elif is_transient(verdict):
                deferred[row["id"]] = verdict
            elif AUTHORIZATION_USED in verdict:
                try:
                    outcome = payment_outcome(
                        self.rt.w3, row, lookback_blocks=self.settings.log_lookback_blocks
                    )
                except Exception as exc:
                    deferred[row["id"]] = f"settlement lookup unavailable: {type(exc).__name__}: {exc}"[:500]
                    continue
                if outcome.state is AuthorizationState.PAID:
                    paid_elsewhere[row["id"]] = outcome
                elif outcome.state is AuthorizationState.CANCELED:
                    failures[row["id"]] = "authorization_canceled: the payer cancelled the authorization"
                else:
                    deferred[row["id"]] = f"authorization used; settlement not found ({outcome.state})"
            else:
                failures[row["id"]] = verdict
        fees = chain.quote_fees(self.rt.w3) if sendable else None
        if fees is not None:
            relayer.ensure_gas_money(len(sendable), self.settings.payment_gas_limit, fees)
        with self.rt.pool.connection() as conn, conn.transaction():
            self._record_failures(conn, claim_token, failures)
            self._record_deferred(conn, claim_token, deferred, {r["id"]: int(r["attempts"]) for r in rows})
            self._record_paid_elsewhere(conn, claim_token, paid_elsewhere)
            sent = self._sign_and_store(conn, relayer, claim_token, sendable, fees)
        relayer.send(sent, "payment_tx_broadcast")

    def _sign_and_store(
        self,
        conn: Connection[Any],
        relayer: Relayer,
        claim_token: uuid.UUID,
        sendable: dict[Any, tuple[str, bytes]],
        fees: Fees | None,
    ) -> list[Outgoing]:
        """The payments this claim still owns go out in transactions of up to `aggregate_size` calls
        (one Multicall3 transaction each; a lone payment goes straight to the asset)."""
        owned = [
            r["id"]
            for r in conn.execute(
                q("lock_claimed_payments"), {"ids": list(sendable), "claim_token": claim_token}
            ).fetchall()
        ]
        if not owned:
            return []
        assert fees is not None
        size = self.settings.payment_aggregate_size if self.aggregator else 1
        groups = [owned[i : i + size] for i in range(0, len(owned), size)]
        first = relayer.allocate(conn, len(groups))
        sent: list[Outgoing] = []
        for offset, group in enumerate(groups):
            planned = payment_calls.plan(
                [sendable[p] for p in group],
                aggregator=self.aggregator,
                gas_per_call=self.settings.payment_gas_limit,
            )
            chain_tx_id, signed = relayer.sign_and_store(
                conn,
                nonce=first + offset,
                to=planned.to,
                data=planned.data,
                gas=planned.gas,
                fees=fees,
                purpose="payment",
            )
            conn.execute(
                q("mark_payments_sent"),
                {
                    "ids": group,
                    "claim_token": claim_token,
                    "chain_tx_id": chain_tx_id,
                    "tx_hash": signed.tx_hash,
                },
            )
            context = {"payment_id": str(group[0])} if len(group) == 1 else {"payments": len(group)}
            sent.append(Outgoing(chain_tx_id, signed.raw, signed.tx_hash, signed.nonce, context))
        return sent

    def _record_failures(
        self, conn: Connection[Any], claim_token: uuid.UUID, failures: dict[Any, str]
    ) -> None:
        for payment_id, reason in failures.items():
            conn.execute(
                q("fail_claimed_payment"), {"id": payment_id, "claim_token": claim_token, "error": reason}
            )
            log.info("payment_failed_preflight", payment_id=str(payment_id), reason=reason)

    def _record_deferred(
        self,
        conn: Connection[Any],
        claim_token: uuid.UUID,
        deferred: dict[Any, str],
        attempts: dict[Any, int],
    ) -> None:
        for payment_id, reason in deferred.items():
            delay = retry_delay(
                attempts[payment_id],
                base=self.settings.retry_base_seconds,
                cap=self.settings.retry_cap_seconds,
            )
            self.wake_after = min(self.wake_after or delay, delay)
            conn.execute(
                q("defer_claimed_payment"),
                {"id": payment_id, "claim_token": claim_token, "error": reason, "delay": delay},
            )

    def _record_paid_elsewhere(
        self, conn: Connection[Any], claim_token: uuid.UUID, paid_elsewhere: dict[Any, Outcome]
    ) -> None:
        for payment_id, outcome in paid_elsewhere.items():
            chain_tx_id = outcomes.store_paying_tx(conn, chain_id=self.settings.chain_id, outcome=outcome)
            conn.execute(
                q("mark_external_payment_sent"),
                {
                    "id": payment_id,
                    "claim_token": claim_token,
                    "chain_tx_id": chain_tx_id,
                    "tx_hash": outcome.tx_hash,
                },
            )
            log.warning("payment_paid_by_other_tx", payment_id=str(payment_id), tx_hash=outcome.tx_hash)

    def upkeep(self) -> int:
        cancelled = sum(self._cancel_pointless(r) for r in self.relayers)
        return cancelled + late_payments.watch(self.rt) + super().upkeep()

    def _cancel_pointless(self, relayer: Relayer) -> int:
        """Cancel our unmined payment transactions whose authorizations someone else has all used (in
        a Multicall3 transaction a used one only fails its own call, so the others still go)."""
        with self.rt.pool.connection() as conn:
            waiting = conn.execute(
                q("unconfirmed_payment_txs_of_sender"),
                {
                    "chain_id": self.settings.chain_id,
                    "address": relayer.address,
                    "limit": 20,
                    "older_than": self.settings.rebroadcast_after_seconds,
                },
            ).fetchall()
            conn.rollback()
        cancelled = 0
        for tx in waiting:
            if not all(self._authorization_used(p) for p in tx["payments"]) or self._mined(tx["id"]):
                continue
            with self.rt.pool.connection() as conn, conn.transaction():
                if conn.execute(
                    q("mark_cancel"), {"id": tx["id"], "reason": "authorization used elsewhere"}
                ).fetchone():
                    cancelled += 1
                    log.warning(
                        "payment_tx_cancelling",
                        chain_tx_id=tx["id"],
                        nonce=tx["nonce"],
                        payment_ids=[p["payment_id"] for p in tx["payments"]],
                    )
        return cancelled

    def _authorization_used(self, payment: dict[str, Any]) -> bool:
        usdc = self.rt.usdc(payment["asset"])
        return bool(
            usdc.functions.authorizationState(
                Web3.to_checksum_address(payment["payer"]), bytes.fromhex(payment["auth_nonce"][2:])
            ).call()
        )

    def _mined(self, chain_tx_id: int) -> bool:
        with self.rt.pool.connection() as conn:
            hashes = [r["tx_hash"] for r in conn.execute(q("attempt_hashes"), {"chain_tx_id": chain_tx_id})]
            conn.rollback()
        for tx_hash in hashes:
            try:
                self.rt.w3.eth.get_transaction_receipt(tx_hash)
                return True
            except TransactionNotFound:
                continue
        return False


def create(runtime: Runtime) -> PaymentSender:
    return PaymentSender(runtime, [chain.relayer(key) for key in runtime.settings.payment_relayer_keys])
