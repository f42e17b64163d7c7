"""What a stage process holds: settings, a database pool, a web3 client and the contract ABIs."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from psycopg import Connection
from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool
from web3 import Web3

from shared import chain
from shared.chain.contracts import load_artifact
from shared.chain.endpoints import FailoverProvider
from shared.config import Settings
from shared.db.pools import open_pool
from shared.db.queries import q

HEALTH_EVERY_SECONDS = 10.0


@dataclass
class Runtime:
    settings: Settings
    pool: ConnectionPool[Connection[DictRow]]
    w3: Web3
    _health_reported_at: float = field(default=float("-inf"), repr=False)
    _contracts: dict[tuple[str, str | None], Any] = field(default_factory=dict, repr=False)

    def usdc(self, address: str | None = None) -> Any:
        return self._contract("TestUSDC", address)

    def token(self, address: str | None = None) -> Any:
        return self._contract("MintToken", address)

    def _contract(self, name: str, address: str | None) -> Any:
        """Made once per (contract, address): web3 builds a class for each."""
        key = (name, address.lower() if address else None)
        if key not in self._contracts:
            abi = load_artifact(name).abi
            self._contracts[key] = (
                self.w3.eth.contract(abi=abi)
                if address is None
                else self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)
            )
        return self._contracts[key]

    def report_health(self, stage: str) -> None:
        """Every HEALTH_EVERY_SECONDS: how this process sees each RPC endpoint, written where every
        exporter, `stats` and the dashboard read it (rpc_endpoints, 0016)."""
        provider = self.w3.provider
        now = time.monotonic()
        if (
            not isinstance(provider, FailoverProvider)
            or now - self._health_reported_at < HEALTH_EVERY_SECONDS
        ):
            return
        self._health_reported_at = now
        reporter = f"{socket.gethostname()}/{stage}/{os.getpid()}"
        with self.pool.connection() as conn, conn.transaction():
            for h in provider.health():
                conn.execute(
                    q("record_rpc_endpoint"),
                    {
                        "endpoint": h.label,
                        "reporter": reporter,
                        "up": h.up,
                        "head": h.head,
                        "lag": h.lag,
                        "error": h.error,
                    },
                )
            conn.execute(q("forget_old_rpc_reports"))

    def close(self) -> None:
        self.pool.close()


def open_runtime(settings: Settings, *, pool_size: int = 4, connect_timeout: float = 30.0) -> Runtime:
    return Runtime(
        settings=settings,
        pool=open_pool(settings.database_url, max_size=pool_size, timeout=connect_timeout),
        w3=chain.connect(
            settings.rpc_urls,
            settings.rpc_timeout_seconds,
            max_lag_blocks=settings.rpc_max_lag_blocks,
            quarantine_seconds=settings.rpc_quarantine_seconds,
            chain_id=settings.chain_id,
        ),
    )
