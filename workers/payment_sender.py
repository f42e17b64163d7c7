"""payment-sender: settles accepted x402 payments on chain with transferWithAuthorization.

pending → processing (claim, leased) → sent (signed, stored, committed; then broadcast), or
→ sent pointing at someone else's transaction (the authorization was already paid by a third party),
or → failed (pre-flight: the authorization can never move the money, so nothing is sent).
Its upkeep cancels its own unmined transactions whose authorization someone else used meanwhile,
so no authorization is submitted after it is known used, and no nonce is left as a gap.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound

from shared import chain, nonces, txstore
from shared.broadcaster import Outgoing
from shared.queries import q
from shared.retry import retry_delay
from shared.reverts import AUTHORIZATION_USED, revert_reason
from shared.runtime import Runtime
from shared.sender_stage import SenderStage
from shared.settlement import AuthorizationState, Outcome, authorization_outcome

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

    def __init__(self, runtime: Runtime, relayer: LocalAccount) -> None:
        super().__init__(runtime, relayer, runtime.settings.payment_stage)
        self.usdc_abi = runtime.usdc()

    def process(self, rows: list[dict[str, Any]], claim_token: uuid.UUID) -> None:
        calls: dict[Any, str] = {}
        failures: dict[Any, str] = {}
        deferred: dict[Any, str] = {}
        paid_elsewhere: dict[Any, Outcome] = {}
        for row in rows:
            data = self._calldata(row)
            try:
                reason = self._preflight(row["asset"], data)
            except Exception as exc:  # the node did not answer for this one: it waits, the others go on
                deferred[row["id"]] = f"pre-flight unavailable: {type(exc).__name__}: {exc}"[:500]
                continue
            if reason is None:
                calls[row["id"]] = data
            elif is_transient(reason):
                deferred[row["id"]] = reason
            elif AUTHORIZATION_USED in reason:
                try:
                    outcome = self._outcome(row)
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
                failures[row["id"]] = reason
        fees = chain.quote_fees(self.rt.w3) if calls else None
        if fees is not None:
            self.ensure_gas_money(len(calls), self.settings.payment_gas_limit, fees)
        sent: list[Outgoing] = []
        with self.rt.pool.connection() as conn, conn.transaction():
            for payment_id, reason in failures.items():
                conn.execute(
                    q("fail_claimed_payment"), {"id": payment_id, "claim_token": claim_token, "error": reason}
                )
                log.info("payment_failed_preflight", payment_id=str(payment_id), reason=reason)
            attempts = {r["id"]: int(r["attempts"]) for r in rows}
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
            for payment_id, outcome in paid_elsewhere.items():
                assert outcome.tx_hash and outcome.sender and outcome.sender_nonce is not None
                chain_tx_id = txstore.store_external(
                    conn,
                    chain_id=self.settings.chain_id,
                    sender=outcome.sender,
                    nonce=outcome.sender_nonce,
                    tx_hash=outcome.tx_hash,
                    purpose="payment",
                )
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
            owned = [
                r["id"]
                for r in conn.execute(
                    q("lock_claimed_payments"), {"ids": list(calls), "claim_token": claim_token}
                ).fetchall()
            ]
            if owned:
                assert fees is not None
                first = nonces.allocate(conn, self.settings.chain_id, self.address, len(owned))
                by_id = {r["id"]: r for r in rows}
                for offset, payment_id in enumerate(owned):
                    chain_tx_id, signed = self.sign_and_store(
                        conn,
                        nonce=first + offset,
                        to=by_id[payment_id]["asset"],
                        data=calls[payment_id],
                        gas=self.settings.payment_gas_limit,
                        fees=fees,
                        purpose="payment",
                    )
                    conn.execute(
                        q("mark_payment_sent"),
                        {
                            "id": payment_id,
                            "claim_token": claim_token,
                            "chain_tx_id": chain_tx_id,
                            "tx_hash": signed.tx_hash,
                        },
                    )
                    sent.append(
                        Outgoing(
                            chain_tx_id,
                            signed.raw,
                            signed.tx_hash,
                            signed.nonce,
                            {"payment_id": str(payment_id)},
                        )
                    )
        self.send(sent, "payment_tx_broadcast")

    def upkeep(self) -> int:
        return self._cancel_pointless() + super().upkeep()

    def _cancel_pointless(self) -> int:
        """Cancel our unmined payment transactions whose authorization someone else has used."""
        with self.rt.pool.connection() as conn:
            waiting = conn.execute(
                q("unconfirmed_payment_txs_of_sender"),
                {
                    "chain_id": self.settings.chain_id,
                    "address": self.address,
                    "limit": 20,
                    "older_than": self.settings.rebroadcast_after_seconds,
                },
            ).fetchall()
            conn.rollback()
        cancelled = 0
        for tx in waiting:
            if not self._authorization_used(tx) or self._mined(tx["id"]):
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
                        payment_id=str(tx["payment_id"]),
                    )
        return cancelled

    def _authorization_used(self, tx: dict[str, Any]) -> bool:
        usdc = self.rt.usdc(tx["asset"])
        return bool(
            usdc.functions.authorizationState(
                Web3.to_checksum_address(tx["payer"]), bytes.fromhex(tx["auth_nonce"][2:])
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

    def _outcome(self, row: dict[str, Any]) -> Outcome:
        return authorization_outcome(
            self.rt.w3,
            asset=row["asset"],
            payer=row["payer"],
            pay_to=row["token_address"],
            amount=int(row["amount"]),
            nonce=bytes.fromhex(row["nonce"][2:]),
            lookback_blocks=self.settings.log_lookback_blocks,
        )

    def _calldata(self, row: dict[str, Any]) -> str:
        sig = bytes.fromhex(row["signature"].removeprefix("0x"))
        r, s, v = sig[:32], sig[32:64], sig[64]
        return str(
            self.usdc_abi.encode_abi(
                "transferWithAuthorization",
                args=[
                    Web3.to_checksum_address(row["payer"]),
                    Web3.to_checksum_address(row["token_address"]),
                    int(row["amount"]),
                    int(row["valid_after"]),
                    int(row["valid_before"]),
                    bytes.fromhex(row["nonce"].removeprefix("0x")),
                    v,
                    r,
                    s,
                ],
            )
        )

    def _preflight(self, asset: str, data: str) -> str | None:
        """eth_call the transfer; a revert here means sending it would only burn gas."""
        try:
            self.rt.w3.eth.call(
                {"from": self.relayer.address, "to": Web3.to_checksum_address(asset), "data": HexStr(data)}
            )
        except ContractLogicError as exc:
            return revert_reason(exc)
        return None


def create(runtime: Runtime) -> PaymentSender:
    return PaymentSender(runtime, chain.relayer(runtime.settings.payment_relayer_key))
