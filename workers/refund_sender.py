"""refund-sender: sends the refunds operators ordered (`x402-mint refund`) with MintToken.refund.

pending → processing (claim, leased) → sent (signed, stored, committed; then broadcast; one refund a
transaction — they are rare) → completed by the confirmer from the receipt's Refunded log. Its
pre-flight eth_call finds a payment key refunded on chain already (an earlier attempt of ours went
through): → completed at once, with the transaction that did it; or a refund that cannot go (the
contract's USDC was withdrawn, the key lacks REFUNDER_ROLE): → failed, for an operator to look at.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import structlog
from eth_account.signers.local import LocalAccount
from web3 import Web3

from shared import chain
from shared.chain import calldata, history
from shared.db.queries import q
from shared.runtime import Runtime
from shared.settlement import payment_calls, refunds
from shared.settlement.payment_calls import Call, PaymentCalls
from shared.txs.broadcaster import Outgoing
from shared.txs.relayer import Relayer
from shared.txs.sender_stage import SenderStage

log = structlog.get_logger()
REFUND_GAS = 120_000
ALREADY_REFUNDED = "AlreadyRefunded"


class RefundSender(SenderStage):
    name = "refund-sender"
    channels = ("x402_refunds_pending",)
    claim_query = "claim_refunds"
    release_query = "release_claimed_refunds"

    def __init__(self, runtime: Runtime, keys: Sequence[LocalAccount]) -> None:
        super().__init__(runtime, keys, runtime.settings.refund_stage)

    def process(self, rows: list[dict[str, Any]], claim_token: uuid.UUID, relayer: Relayer) -> None:
        calls = {
            r["id"]: PaymentCalls([Call(r["token_address"], self._calldata(r), REFUND_GAS)], alone=True)
            for r in rows
        }
        verdicts = payment_calls.preflight(self.rt.w3, relayer.address, calls, aggregator="")
        already = {
            r["id"]: self._refunded_in(r)
            for r in rows
            if isinstance(verdicts[r["id"]], str) and ALREADY_REFUNDED in str(verdicts[r["id"]])
        }
        waiting = [
            r
            for r in rows
            if isinstance(verdicts[r["id"]], payment_calls.Unavailable) or already.get(r["id"], "") is None
        ]
        if waiting:  # no answer, or refunded in a block not deep enough yet: look again later
            self.release(waiting, claim_token, RuntimeError("refund not decidable yet"))
        sendable = [r for r in rows if verdicts[r["id"]] is None]
        fees = chain.quote_fees(self.rt.w3) if sendable else None
        if fees is not None:
            relayer.ensure_gas_money(len(sendable), REFUND_GAS, fees)
        sent: list[Outgoing] = []
        with self.rt.pool.connection() as conn, conn.transaction():
            for r in rows:
                verdict = verdicts[r["id"]]
                if already.get(r["id"]) is not None:  # refunded on chain, at depth: done
                    tx_hash = already[r["id"]] or None
                    refunds.complete(conn, r["id"], tx_hash, expected="processing", claim_token=claim_token)
                elif isinstance(verdict, str) and r["id"] not in already:
                    conn.execute(
                        q("fail_claimed_refund"),
                        {"id": r["id"], "claim_token": claim_token, "error": verdict},
                    )
                    log.error("refund_cannot_go", refund_id=str(r["id"]), reason=verdict)
            for r in sendable:
                assert fees is not None
                chain_tx_id, signed = relayer.sign_and_store(
                    conn,
                    nonce=relayer.allocate(conn, 1),
                    to=r["token_address"],
                    data=calls[r["id"]].calls[0].data,
                    gas=REFUND_GAS,
                    fees=fees,
                    purpose="refund",
                )
                if conn.execute(
                    q("mark_refund_sent"),
                    {
                        "id": r["id"],
                        "claim_token": claim_token,
                        "chain_tx_id": chain_tx_id,
                        "tx_hash": signed.tx_hash,
                    },
                ).fetchone():
                    sent.append(
                        Outgoing(
                            chain_tx_id, signed.raw, signed.tx_hash, signed.nonce, {"refund_id": str(r["id"])}
                        )
                    )
        relayer.send(sent, "refund_tx_broadcast")

    def _calldata(self, r: dict[str, Any]) -> bytes:
        return calldata.refund(bytes.fromhex(r["payment_key"][2:]), r["recipient"], int(r["amount"]))

    def _refunded_in(self, r: dict[str, Any]) -> str | None:
        """Where the key was refunded, as of a block CONFIRMATIONS deep: the transaction whose Refunded
        log holds it ("" if that log is beyond the search), or None while it is not refunded that deep."""
        at = history.pin(self.rt.w3, self.settings.confirmations)
        key = bytes.fromhex(r["payment_key"][2:])
        if not self.rt.token(r["token_address"]).functions.refunded(key).call(block_identifier=at.number):
            return None
        search = history.search_back(
            self.rt.w3,
            address=r["token_address"],
            topics=[Web3.to_hex(refunds.REFUNDED_TOPIC), r["payment_key"]],
            high=at.number,
            since_time=int(r["created_at"].timestamp()),
            chunk=self.settings.log_search.chunk_blocks,
            budget=self.settings.log_search.max_blocks,
        )
        return "0x" + bytes(search.logs[0]["transactionHash"]).hex() if search.logs else ""


def create(runtime: Runtime) -> RefundSender:
    return RefundSender(runtime, [chain.relayer(key) for key in runtime.settings.refund_keys])
