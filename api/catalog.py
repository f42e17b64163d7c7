"""The tokens on sale, read from the database and kept for a few seconds (never the only copy)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from psycopg_pool import AsyncConnectionPool

from shared.db.queries import q
from shared.x402.eip3009 import Eip712Domain

REFRESH_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Token:
    address: str
    chain_id: int
    symbol: str
    asset: str
    asset_name: str
    asset_version: str
    asset_decimals: int
    price_per_mint: int
    mint_amount: int
    max_mint_count: int
    description: str

    @property
    def domain(self) -> Eip712Domain:
        return Eip712Domain(self.asset_name, self.asset_version, self.chain_id, self.asset)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Token:
        return cls(
            address=row["address"],
            chain_id=int(row["chain_id"]),
            symbol=row["symbol"],
            asset=row["asset"],
            asset_name=row["asset_name"],
            asset_version=row["asset_version"],
            asset_decimals=int(row["asset_decimals"]),
            price_per_mint=int(row["price_per_mint"]),
            mint_amount=int(row["mint_amount"]),
            max_mint_count=int(row["max_mint_count"]),
            description=row["description"],
        )


class TokenCatalog:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool
        self._tokens: dict[str, Token] = {}
        self._loaded_at = float("-inf")
        self._reloading = asyncio.Lock()

    async def get(self, address: str) -> Token | None:
        """The token at `address` (any case), or None; reloads when stale or on a miss (at most 1/s).

        One reload at a time: under load, every request that finds the catalog stale would otherwise
        start its own (and take a database connection for it). While one runs, a known token is
        answered from the copy in hand; the others wait for the reload and use its result.
        """
        key = address.lower()
        if not self._needs_reload(key):
            return self._tokens.get(key)
        if self._reloading.locked() and key in self._tokens:
            return self._tokens[key]
        async with self._reloading:
            if self._needs_reload(key):
                await self.reload()
        return self._tokens.get(key)

    async def all(self) -> list[Token]:
        """Every token on sale (reloaded when stale)."""
        if time.monotonic() - self._loaded_at > REFRESH_SECONDS:
            async with self._reloading:
                if time.monotonic() - self._loaded_at > REFRESH_SECONDS:
                    await self.reload()
        return list(self._tokens.values())

    def _needs_reload(self, key: str) -> bool:
        age = time.monotonic() - self._loaded_at
        return age > REFRESH_SECONDS or (key not in self._tokens and age > 1.0)

    async def reload(self) -> None:
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(q("list_tokens"))).fetchall()
        self._tokens = {row["address"]: Token.from_row(row) for row in rows}
        self._loaded_at = time.monotonic()
