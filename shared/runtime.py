"""What a stage process holds: settings, a database pool, a web3 client and the contract ABIs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import Connection
from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool
from web3 import Web3

from shared import chain
from shared.chain.contracts import load_artifact
from shared.config import Settings
from shared.db.pools import open_pool


@dataclass
class Runtime:
    settings: Settings
    pool: ConnectionPool[Connection[DictRow]]
    w3: Web3

    def usdc(self, address: str | None = None) -> Any:
        return self._contract("TestUSDC", address)

    def token(self, address: str | None = None) -> Any:
        return self._contract("MintToken", address)

    def _contract(self, name: str, address: str | None) -> Any:
        abi = load_artifact(name).abi
        if address is None:
            return self.w3.eth.contract(abi=abi)
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)

    def close(self) -> None:
        self.pool.close()


def open_runtime(settings: Settings, *, pool_size: int = 4, connect_timeout: float = 30.0) -> Runtime:
    return Runtime(
        settings=settings,
        pool=open_pool(settings.database_url, max_size=pool_size, timeout=connect_timeout),
        w3=chain.connect(settings.rpc_url, settings.rpc_timeout_seconds),
    )
