"""mint-sender: mints the tokens of confirmed payments with batchMint from the mint relayer.

pending → processing (claim, leased) → completed at once when hasMinted says the id is on chain (read
at a block CONFIRMATIONS deep), else → sent (one batchMint per token, signed, stored, committed; then
broadcast). The confirmer settles sent mints from the transaction's logs.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import structlog
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak

from shared import chain
from shared.chain import calldata, history, rpc_batch
from shared.db.queries import q
from shared.runtime import Runtime
from shared.txs.broadcaster import Outgoing
from shared.txs.relayer import Relayer
from shared.txs.sender_stage import SenderStage

log = structlog.get_logger()
_HAS_MINTED = keccak(b"hasMinted(bytes32)")[:4]


class MintSender(SenderStage):
    name = "mint-sender"
    channels = ("x402_mint_queue_pending",)
    claim_query = "claim_mints"
    release_query = "release_claimed_mints"

    def __init__(self, runtime: Runtime, keys: Sequence[LocalAccount]) -> None:
        super().__init__(runtime, keys, runtime.settings.mint_stage)

    def process(self, rows: list[dict[str, Any]], claim_token: uuid.UUID, relayer: Relayer) -> None:
        already, unknown = [], []
        # Read at a block CONFIRMATIONS deep: a mint only "already on chain" in a block a reorg could take
        # back must not complete its row; batchMint skips ids already minted anyway.
        at = history.pin(self.rt.w3, self.settings.confirmations)
        answers = rpc_batch.calls(
            self.rt.w3, [(r["token_address"], self._has_minted_call(r)) for r in rows], block=at.number
        )
        for r, answer in zip(rows, answers, strict=True):
            if answer is None:  # this read failed: only this mint waits, the others go on
                unknown.append(r)
            elif int.from_bytes(answer, "big"):
                already.append(r["id"])
        if unknown:
            self.release(unknown, claim_token, RuntimeError("hasMinted could not be read"))
        rows = [r for r in rows if r not in unknown]
        todo: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            if r["id"] not in already:
                todo[r["token_address"]].append(r)
        # Mints go ahead of new payments (twice the tip): a paid purchase's tokens first, so money
        # waits for its tokens as little as it can when blocks are full.
        fees = chain.quote_fees(self.rt.w3).ahead() if todo else None
        if fees is not None:
            largest = max(len(group) for group in todo.values())
            gas = self.settings.mint_gas_base + self.settings.mint_gas_per_item * largest
            relayer.ensure_gas_money(len(todo), gas, fees)
        sent: list[Outgoing] = []
        with self.rt.pool.connection() as conn, conn.transaction():
            if already:
                conn.execute(q("complete_claimed_mints"), {"ids": already, "claim_token": claim_token})
                log.info("mints_already_on_chain", count=len(already))
            for token_address, group in todo.items():
                owned = {
                    r["id"]
                    for r in conn.execute(
                        q("lock_claimed_mints"), {"ids": [r["id"] for r in group], "claim_token": claim_token}
                    ).fetchall()
                }
                batch = [r for r in group if r["id"] in owned]
                if not batch:
                    continue
                assert fees is not None
                nonce = relayer.allocate(conn, 1)
                data = calldata.batch_mint(
                    [r["recipient"] for r in batch], [bytes.fromhex(r["mint_id"][2:]) for r in batch]
                )
                gas = self.settings.mint_gas_base + self.settings.mint_gas_per_item * len(batch)
                chain_tx_id, signed = relayer.sign_and_store(
                    conn, nonce=nonce, to=token_address, data=data, gas=gas, fees=fees, purpose="mint"
                )
                conn.execute(
                    q("mark_mints_sent"),
                    {
                        "ids": [r["id"] for r in batch],
                        "claim_token": claim_token,
                        "chain_tx_id": chain_tx_id,
                        "tx_hash": signed.tx_hash,
                    },
                )
                sent.append(Outgoing(chain_tx_id, signed.raw, signed.tx_hash, nonce, {"mints": len(batch)}))
        relayer.send(sent, "mint_tx_broadcast")

    def _has_minted_call(self, row: dict[str, Any]) -> bytes:
        return _HAS_MINTED + bytes.fromhex(row["mint_id"][2:])


def create(runtime: Runtime) -> MintSender:
    return MintSender(runtime, [chain.relayer(key) for key in runtime.settings.mint_relayer_keys])
