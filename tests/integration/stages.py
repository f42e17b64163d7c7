"""Driving the stages step by step from a test (no threads), and poking the dev chain."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import psycopg
from eth_account import Account
from psycopg.rows import dict_row
from web3 import Web3

from shared.config import Settings
from shared.runtime import Runtime, open_runtime
from workers import confirmer, mint_sender, payment_sender, refund_sender


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    reply = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply.get("result")


def mine_past(w3: Web3, timestamp: int) -> None:
    """Waits until the wall clock is past `timestamp`, then mines a block whose own timestamp is past
    it too. The dev chain's clock can run behind the wall clock (a test that set a block's timestamp
    leaves anvil's offset there), so a test about expiry sets the block's time, never assumes it."""
    while time.time() <= timestamp + 1:
        time.sleep(0.2)
    latest = int(w3.eth.get_block("latest")["timestamp"])
    rpc(w3, "evm_setNextBlockTimestamp", max(latest + 1, timestamp + 1))
    rpc(w3, "evm_mine")


def new_relayer_keys(w3: Web3, n: int) -> list[str]:
    """Keys of relayers no other test used (their nonces and unconfirmed transactions are this
    test's alone), each given 10 ETH of gas money."""
    keys = ["0x" + os.urandom(32).hex() for _ in range(n)]
    for key in keys:
        rpc(w3, "anvil_setBalance", Account.from_key(key).address, hex(10**19))
    return keys


class Stages:
    """One instance of each stage, each with its own runtime, as separate processes would have."""

    def __init__(self, settings: Settings) -> None:
        self.runtimes: list[Runtime] = [open_runtime(settings) for _ in range(4)]
        self.payment = payment_sender.create(self.runtimes[0])
        self.confirmer = confirmer.create(self.runtimes[1])
        self.mint = mint_sender.create(self.runtimes[2])
        self.refund = refund_sender.create(self.runtimes[3])
        for stage in (self.payment, self.mint, self.refund):
            stage.start()

    def step(self) -> None:
        for stage in (self.payment, self.confirmer, self.mint, self.refund):
            stage.run_once()

    def run_until(self, done: Callable[[], bool], timeout: float = 60.0, pause: float = 0.05) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not reached within {timeout} s")
            self.step()
            time.sleep(pause)

    def close(self) -> None:
        for rt in self.runtimes:
            rt.close()


def query(settings: Settings, sql: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(settings.database_url, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def payment(settings: Settings, payment_id: str) -> dict[str, Any]:
    (row,) = query(
        settings,
        "SELECT p.*, p.status::text AS state,"
        " (SELECT count(*) FROM mint_queue m WHERE m.payment_id = p.id) AS mints,"
        " (SELECT count(*) FROM mint_queue m WHERE m.payment_id = p.id AND m.status = 'completed')"
        " AS minted FROM payment_queue p WHERE id = %s",
        payment_id,
    )
    return row


def finished(settings: Settings, payment_id: str) -> bool:
    row = payment(settings, payment_id)
    return row["state"] == "failed" or (row["state"] == "completed" and row["minted"] == row["quantity"])


def attempts(settings: Settings, chain_tx_id: int) -> list[dict[str, Any]]:
    return query(
        settings,
        "SELECT tx_hash, kind FROM chain_tx_attempts WHERE chain_tx_id = %s ORDER BY id",
        chain_tx_id,
    )


def chain_tx(settings: Settings, chain_tx_id: int) -> dict[str, Any]:
    (row,) = query(settings, "SELECT *, state::text AS status FROM chain_txs WHERE id = %s", chain_tx_id)
    return row
