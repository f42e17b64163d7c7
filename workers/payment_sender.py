"""payment-sender: settles accepted x402 payments on chain with transferWithAuthorization.

pending → processing (claim, leased) → sent (signed, stored, committed; then broadcast: the claim's
transfers go out together in one Multicall3 transaction, each allowed to fail alone), or, when the
pre-flight finds the authorization already used, what the chain says at a block CONFIRMATIONS deep
(shared/settlement/authorizations.py): → completed with its mints (its own transfer paid, whoever
sent it), → failed (its nonce went to another authorization or a cancellation), or → needs_review
(the log that says how stayed out of reach, PAYMENT_REVIEW_ATTEMPTS times); → failed too when the
authorization cannot move the money now (watched until it expires). Anything the node cannot answer
yet waits, with backoff.
Its upkeep fails payments whose authorization expired in a transaction of ours that was never mined,
and cancels such a transaction once it has nothing left to pay (shared/settlement/unmined.py); and it
watches failed payments until their authorization expires (shared/settlement/late_payments.py).
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Sequence
from typing import Any

import structlog
from eth_account.signers.local import LocalAccount
from psycopg import Connection

from shared import chain
from shared.chain import Fees, history, rpc_batch
from shared.db.queries import q
from shared.runtime import Runtime
from shared.settlement import late_payments, payment_calls, payments, unmined
from shared.settlement.authorizations import Outcome, fate, payment_terms
from shared.settlement.payment_calls import Next, PaymentCalls
from shared.settlement.payments import Guard
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
        self.aggregator = runtime.settings.payment_aggregator

    def process(self, rows: list[dict[str, Any]], claim_token: uuid.UUID, relayer: Relayer) -> None:
        gas = self.settings.payment_gas_limit
        calls = {r["id"]: payment_calls.calls_for(r, gas=gas) for r in rows}
        if sum(not c.alone for c in calls.values()) > 1:  # they could share a transaction: may they?
            payers = {r["id"]: str(r["payer"]).lower() for r in rows}
            codes = rpc_batch.have_code(self.rt.w3, {payers[k] for k, c in calls.items() if not c.alone})
            calls = payment_calls.alone_where_code(calls, payers, codes)
        verdicts = payment_calls.preflight(
            self.rt.w3, relayer.address, calls, self.aggregator, shared_gas=self.settings.payment_shared_gas
        )
        sendable: dict[Any, PaymentCalls] = {}
        deferred: dict[Any, str] = {}
        refused: dict[Any, str] = {}
        unanswered: set[Any] = set()
        for row in rows:
            verdict = verdicts[row["id"]]
            if verdict is None:
                sendable[row["id"]] = calls[row["id"]]
            elif isinstance(verdict, payment_calls.Unavailable):
                if int(row["valid_before"]) <= time.time():  # past its validBefore: the chain decides
                    refused[row["id"]] = verdict.error
                    unanswered.add(row["id"])
                else:
                    deferred[row["id"]] = verdict.error
            elif is_transient(verdict):
                deferred[row["id"]] = verdict
            else:
                refused[row["id"]] = verdict
        outcomes = self._fates([r for r in rows if r["id"] in refused], deferred)
        fees = chain.quote_fees(self.rt.w3) if sendable else None
        if fees is not None:
            need = sum(self._plan(sendable, group).gas for group in self._groups(sendable, list(sendable)))
            relayer.ensure_gas_money(1, need, fees)
        by_id = {r["id"]: r for r in rows}
        attempts = {r["id"]: int(r["attempts"]) for r in rows}
        valid_before = {r["id"]: int(r["valid_before"]) for r in rows}
        guard = Guard("processing", claim_token)
        undetermined: set[Any] = set()
        with self.rt.pool.connection() as conn, conn.transaction():
            for payment_id, reason in refused.items():
                if payment_id in deferred:  # the chain could not be asked at all: next time
                    continue
                outcome = outcomes.get(payment_id)
                step, why = payment_calls.after_refusal(
                    reason,
                    outcome,
                    valid_before=valid_before[payment_id],
                    undetermined_looks=int(by_id[payment_id]["undetermined_looks"]),
                    review_after=self.settings.payment_review_attempts,
                    answered=payment_id not in unanswered,
                )
                if step is Next.FINAL:
                    assert outcome is not None
                    payments.final(conn, payment_id, guard, outcome)
                elif step in (Next.FAIL, Next.FAIL_WATCHED):
                    why = payment_calls.worded(why, by_id[payment_id])
                    payments.fail(conn, payment_id, guard, why, watch=step is Next.FAIL_WATCHED)
                elif step is Next.REVIEW:
                    payments.review(conn, payment_id, guard, why)
                elif step is Next.WAIT_UNDETERMINED:
                    deferred[payment_id] = why
                    undetermined.add(payment_id)
                else:
                    deferred[payment_id] = why
            self._record_deferred(conn, claim_token, deferred, attempts, undetermined)
            sent = self._sign_and_store(conn, relayer, claim_token, sendable, fees)
        relayer.send(sent, "payment_tx_broadcast")

    def _fates(self, refused: list[dict[str, Any]], deferred: dict[Any, str]) -> dict[Any, Outcome]:
        """Where each refused authorization stands, at one block CONFIRMATIONS deep. Without that block
        they all wait (in `deferred`); a lookup that fails leaves its payment out: it waits, with
        backoff, for a node that answers (after_refusal), the others go on."""
        if not refused:
            return {}
        found: dict[Any, Outcome] = {}
        try:
            at = history.pin(self.rt.w3, self.settings.confirmations)
        except Exception as exc:
            deferred.update(dict.fromkeys((r["id"] for r in refused), f"chain unavailable: {exc}"[:500]))
            return found
        for row in refused:
            try:
                found[row["id"]] = fate(self.rt.w3, payment_terms(row), at, self.settings.log_search)
            except Exception as exc:
                log.warning("authorization_lookup_failed", payment_id=str(row["id"]), error=str(exc)[:300])
        return found

    def _sign_and_store(
        self,
        conn: Connection[Any],
        relayer: Relayer,
        claim_token: uuid.UUID,
        sendable: dict[Any, PaymentCalls],
        fees: Fees | None,
    ) -> list[Outgoing]:
        """The payments this claim still owns go out in transactions of up to `aggregate_size` calls
        (one Multicall3 transaction each; a lone payment goes straight to the asset; a contract
        wallet's goes alone)."""
        owned = [
            r["id"]
            for r in conn.execute(
                q("lock_claimed_payments"), {"ids": list(sendable), "claim_token": claim_token}
            ).fetchall()
        ]
        if not owned:
            return []
        assert fees is not None
        groups = self._groups(sendable, owned)
        first = relayer.allocate(conn, len(groups))
        sent: list[Outgoing] = []
        for offset, group in enumerate(groups):
            planned = self._plan(sendable, group)
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

    def _groups(self, sendable: dict[Any, PaymentCalls], ids: list[Any]) -> list[list[Any]]:
        size = self.settings.payment_aggregate_size if self.aggregator else 1
        return payment_calls.transactions(sendable, ids, size=size)

    def _plan(self, sendable: dict[Any, PaymentCalls], group: list[Any]) -> payment_calls.PlannedTx:
        shared = not any(sendable[p].alone for p in group)  # EOAs' transfers: PAYMENT_SHARED_GAS_LIMIT each
        return payment_calls.plan(
            [c for p in group for c in sendable[p].calls],
            aggregator=self.aggregator,
            gas_each=self.settings.payment_shared_gas if shared else None,
        )

    def _record_deferred(
        self,
        conn: Connection[Any],
        claim_token: uuid.UUID,
        deferred: dict[Any, str],
        attempts: dict[Any, int],
        undetermined: set[Any],
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
                {
                    "id": payment_id,
                    "claim_token": claim_token,
                    "error": reason,
                    "delay": delay,
                    "undetermined": payment_id in undetermined,
                },
            )

    def upkeep(self) -> int:
        parts = [
            (f"unmined {r.address}", functools.partial(unmined.tidy, self.rt, r.address))
            for r in self.relayers
        ]
        parts.append(("late payments", functools.partial(late_payments.watch, self.rt)))
        return self.run_parts(parts) + super().upkeep()


def create(runtime: Runtime) -> PaymentSender:
    return PaymentSender(runtime, [chain.relayer(key) for key in runtime.settings.payment_relayer_keys])
