"""Relayer keys: out of gas money, shared by two processes, and what the node says when sending."""

from __future__ import annotations

import threading
import time

import pytest
from eth_account import Account
from starlette.testclient import TestClient

from cli.devnet import anvil
from cli.devnet.paths import free_port
from shared import chain
from shared.chain.broadcast_errors import BroadcastOutcome
from shared.config import Settings
from shared.runtime import open_runtime
from shared.stage import run_stage
from tests.integration.conftest import CHAIN_ID, Chain, Deployment, Pipeline
from tests.integration.helpers import buy, buy_patiently
from tests.integration.stages import Stages, finished, payment, query, rpc
from workers import payment_sender

pytestmark = pytest.mark.chain
BUYER = anvil.dev_account(16)


def test_relayer_without_gas_money_keeps_the_work_until_funded(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment
) -> None:
    relayer = anvil.dev_account(anvil.PAYMENT_RELAYER).address
    balance = devchain.w3.eth.get_balance(relayer)
    stages = Stages(settings)
    try:
        rpc(devchain.w3, "anvil_setBalance", relayer, "0x0")
        payment_id = buy(client, deployment.token.address, BUYER.key.hex(), 2)
        for _ in range(3):
            stages.payment.run_once()
            query(
                settings,
                "UPDATE payment_queue SET locked_until = NULL WHERE id = %s RETURNING id",
                payment_id,
            )
        row = payment(settings, payment_id)
        assert row["state"] == "pending" and row["chain_tx_id"] is None  # kept, not failed, nothing sent
        assert "RelayerOutOfFunds" in row["last_error"]
    finally:
        rpc(devchain.w3, "anvil_setBalance", relayer, hex(balance))
    try:
        stages.run_until(lambda: finished(settings, payment_id))
        assert payment(settings, payment_id)["state"] == "completed"
    finally:
        stages.close()


def test_two_payment_senders_share_one_key(
    client: TestClient, settings: Settings, deployment: Deployment, pipeline: Pipeline
) -> None:
    second_rt = open_runtime(settings)
    second = payment_sender.create(second_rt)
    second.start()
    stop = threading.Event()
    thread = threading.Thread(target=run_stage, args=(second, settings.database_url, stop), daemon=True)
    thread.start()
    try:
        ids = [buy_patiently(client, deployment.token.address, BUYER.key.hex(), 1 + i % 3) for i in range(30)]
        deadline = time.monotonic() + 90
        while not all(finished(settings, pid) for pid in ids) and time.monotonic() < deadline:
            time.sleep(0.2)
        rows = [payment(settings, pid) for pid in ids]
        assert all(r["state"] == "completed" and r["minted"] == r["quantity"] for r in rows)
        txs = query(
            settings,
            "SELECT nonce, state::text AS state FROM chain_txs WHERE id = ANY(%s)",
            [r["chain_tx_id"] for r in rows],
        )
        # Payments claimed together share a Multicall3 transaction; no two transactions share a nonce.
        assert len({t["nonce"] for t in txs}) == len(txs) and {t["state"] for t in txs} == {"confirmed"}
    finally:
        stop.set()
        thread.join(30)
        second_rt.close()


def test_broadcast_outcomes_from_a_real_node(devchain: Chain) -> None:
    w3 = devchain.w3
    funded = anvil.dev_account(6)
    fees = chain.quote_fees(w3)
    nonce = chain.pending_nonce(w3, funded.address)
    signed = chain.sign(
        funded, chain_id=CHAIN_ID, nonce=nonce, to=funded.address, data=b"", gas=21_000, fees=fees
    )
    rpc(w3, "evm_setAutomine", False)
    try:
        assert chain.broadcast(w3, signed.raw)[0] is BroadcastOutcome.ACCEPTED
        assert chain.broadcast(w3, signed.raw)[0] is BroadcastOutcome.ALREADY_KNOWN  # counts as delivered
        same_fees = chain.sign(
            funded, chain_id=CHAIN_ID, nonce=nonce, to=funded.address, data=b"\x01", gas=30_000, fees=fees
        )
        assert (
            chain.broadcast(w3, same_fees.raw)[0] is BroadcastOutcome.UNDERPRICED
        )  # a replacement must pay more
        rpc(w3, "evm_mine")
    finally:
        rpc(w3, "evm_setAutomine", True)
    stale = chain.sign(
        funded,
        chain_id=CHAIN_ID,
        nonce=nonce,
        to=funded.address,
        data=b"",
        gas=21_000,
        fees=chain.Fees(fees.max_fee_per_gas * 2, fees.max_priority_fee * 2),
    )
    assert chain.broadcast(w3, stale.raw)[0] is BroadcastOutcome.NONCE_TOO_LOW
    pauper = Account.create()
    broke = chain.sign(pauper, chain_id=CHAIN_ID, nonce=0, to=funded.address, data=b"", gas=21_000, fees=fees)
    assert chain.broadcast(w3, broke.raw)[0] is BroadcastOutcome.INSUFFICIENT_FUNDS
    nobody = chain.connect(f"http://127.0.0.1:{free_port(29545)}", timeout=1.0)
    assert chain.broadcast(nobody, broke.raw)[0] is BroadcastOutcome.UNKNOWN
