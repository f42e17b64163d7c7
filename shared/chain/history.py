"""Reading the chain as of a block deep enough to trust, and searching its logs backwards in bounded
chunks.

A verdict that releases supply, fails a payment or completes one must not be undone by a reorg, so
such reads are pinned to one block at least CONFIRMATIONS deep (CONFIRMATIONS=1: the head itself).
Log searches go back from that block a chunk at a time (nodes refuse wide ranges) and stop at a
block old enough, or when the search budget is spent: the answer says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests
from web3 import Web3


@dataclass(frozen=True, slots=True)
class Pinned:
    """A block at least CONFIRMATIONS deep: its number and timestamp."""

    number: int
    timestamp: int


def pin(w3: Web3, confirmations: int) -> Pinned:
    """The newest block that has at least `confirmations` confirmations (itself included)."""
    number = max(0, int(w3.eth.block_number) - max(1, confirmations) + 1)
    return Pinned(number, timestamp_of(w3, number))


def timestamp_of(w3: Web3, number: int) -> int:
    return int(w3.eth.get_block(number)["timestamp"])


@dataclass(frozen=True, slots=True)
class SearchLimits:
    """How far back a log search may go (LOG_SEARCH_MAX_BLOCKS), how many blocks one eth_getLogs
    covers when the node will not search the whole range at once (LOG_SEARCH_CHUNK_BLOCKS; halved
    down to MIN_CHUNK_BLOCKS while the node refuses a chunk), and the longest validity an accepted
    authorization can have (MAX_TIMEOUT_SECONDS + CLOCK_SKEW_SECONDS): x402 clients sign
    validBefore = now + maxTimeoutSeconds, so an authorization is not searched for before
    validBefore minus that."""

    chunk_blocks: int = 2_000
    max_blocks: int = 1_000_000
    longest_validity: int = 360


@dataclass(frozen=True, slots=True)
class LogSearch:
    """What a backwards search found, newest first; `complete` when it reached a block at or before
    `since_time` (so no older block can hold what it looked for), false when the budget ran out."""

    logs: list[Any]
    complete: bool
    searched_blocks: int


MIN_CHUNK_BLOCKS = 16


def search_back(
    w3: Web3,
    *,
    address: str,
    topics: Sequence[Any],
    high: int,
    since_time: int,
    chunk: int,
    budget: int,
    stop_at_first: bool = True,
) -> LogSearch:
    """Logs of `address` matching `topics` in blocks `high`, `high - 1`, … back to the first block
    whose timestamp is at or before `since_time` (timestamps never decrease along the chain), at most
    `budget` blocks, `chunk` blocks per eth_getLogs (halved while the node refuses it). Other node
    errors propagate to the caller."""
    found: list[Any] = []
    searched = 0
    hi = high
    checksummed = Web3.to_checksum_address(address)
    while hi >= 0 and searched < budget:
        lo = max(0, hi - min(chunk, budget - searched) + 1)
        try:
            logs = w3.eth.get_logs(
                {"address": checksummed, "fromBlock": lo, "toBlock": hi, "topics": list(topics)}
            )
        except (requests.exceptions.RequestException, OSError):
            raise  # no answer: a smaller range would not get one either
        except Exception:
            if chunk <= MIN_CHUNK_BLOCKS:
                raise
            chunk = max(MIN_CHUNK_BLOCKS, chunk // 2)  # a node that caps ranges below the chunk
            continue
        found.extend(sorted(logs, key=lambda e: (e["blockNumber"], e["logIndex"]), reverse=True))
        searched += hi - lo + 1
        if (found and stop_at_first) or lo == 0 or timestamp_of(w3, lo) <= since_time:
            return LogSearch(found, complete=True, searched_blocks=searched)
        hi = lo - 1
    return LogSearch(found, complete=False, searched_blocks=searched)
