"""JSON-RPC batch reads: many receipts or block hashes in one HTTP round trip.

Anything a batch could not read (the node erred for that entry, or the whole batch failed) is left
out of the answer: the caller reads it the one-at-a-time way, or treats it as not known yet.

Receipts are decoded here, lightly (`light_receipt`): only the fields the settlement reads, as ints
and bytes. web3's own receipt formatter checksums every address of every log — for a transaction
that paid fifty payments, that was most of the confirmer's CPU.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import structlog
from web3 import Web3
from web3.types import RPCEndpoint, TxReceipt

log = structlog.get_logger()


_ERROR = object()  # an entry of a batch the node answered with an error


def _batch(w3: Web3, requests: list[tuple[str, list[Any]]]) -> list[Any] | None:
    """Results in request order (web3 sorts the replies by id); None if the batch as a whole failed."""
    if not requests:
        return []
    try:
        provider: Any = w3.provider  # HTTP and IPC providers batch; the base class does not declare it
        replies = provider.make_batch_request([(RPCEndpoint(m), p) for m, p in requests])
    except Exception as exc:  # the one-at-a-time path will ask again
        log.warning("rpc_batch_failed", requests=len(requests), error=str(exc)[:200])
        return None
    if not isinstance(replies, list) or len(replies) != len(requests):
        return None
    return [
        r["result"] if isinstance(r, dict) and "result" in r and "error" not in r else _ERROR for r in replies
    ]


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def _hex_bytes(value: Any) -> bytes:
    return bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)


def light_receipt(raw: dict[str, Any]) -> TxReceipt:
    """A JSON-RPC receipt with what the settlement reads: status, blockNumber, gasUsed, logIndex as
    ints; hashes, topics and data as bytes; log addresses lower-case."""
    logs = [
        {
            "address": str(entry["address"]).lower(),
            "topics": [_hex_bytes(t) for t in entry["topics"]],
            "data": _hex_bytes(entry["data"]),
            "logIndex": _int(entry["logIndex"]),
            "blockNumber": _int(entry["blockNumber"]),
            "transactionHash": _hex_bytes(entry["transactionHash"]),
        }
        for entry in raw.get("logs") or []
    ]
    light = {
        "transactionHash": _hex_bytes(raw["transactionHash"]),
        "blockHash": _hex_bytes(raw["blockHash"]),
        "blockNumber": _int(raw["blockNumber"]),
        "status": _int(raw["status"]),
        "gasUsed": _int(raw["gasUsed"]),
        "logs": logs,
    }
    return light  # type: ignore[return-value]  # the fields of TxReceipt the settlement reads


def receipt(w3: Web3, tx_hash: str) -> TxReceipt | None:
    """One receipt, lightly decoded; None when the node has none (a node error raises)."""
    reply = w3.provider.make_request(RPCEndpoint("eth_getTransactionReceipt"), [tx_hash])
    if "error" in reply:
        raise RuntimeError(f"eth_getTransactionReceipt: {reply['error']}")
    result = reply.get("result")
    return None if result is None else light_receipt(result)


def receipts(w3: Web3, tx_hashes: Iterable[str]) -> dict[str, TxReceipt | None]:
    """{hash: receipt, or None when the node has none}; hashes it could not ask about are left out."""
    hashes = list(dict.fromkeys(tx_hashes))
    results = _batch(w3, [("eth_getTransactionReceipt", [h]) for h in hashes])
    if results is None:
        return {}
    found: dict[str, TxReceipt | None] = {}
    for tx_hash, result in zip(hashes, results, strict=True):
        if result is _ERROR:
            continue
        found[tx_hash] = None if result is None else light_receipt(result)
    return found


def block_hashes(w3: Web3, numbers: Iterable[int]) -> dict[int, bytes]:
    """{block number: hash of the canonical block at that height now}; missing ones are left out."""
    wanted = sorted(set(numbers))
    results = _batch(w3, [("eth_getBlockByNumber", [hex(n), False]) for n in wanted])
    if results is None:
        return {}
    return {
        n: bytes(Web3.to_bytes(hexstr=r["hash"]))
        for n, r in zip(wanted, results, strict=True)
        if r is not _ERROR and r is not None and r.get("hash")
    }


def mined_nonces(w3: Web3, addresses: Iterable[str]) -> dict[str, int]:
    """{address (lower-case): its transaction count at `latest`, i.e. the next nonce a mined
    transaction of it would take}; addresses the batch could not ask about are left out."""
    wanted = list(dict.fromkeys(a.lower() for a in addresses))
    results = _batch(w3, [("eth_getTransactionCount", [a, "latest"]) for a in wanted])
    if results is None:
        return {}
    return {a: _int(r) for a, r in zip(wanted, results, strict=True) if r is not _ERROR and r is not None}


def have_code(w3: Web3, addresses: Iterable[str]) -> dict[str, bool]:
    """{address: whether it holds code now (a contract, or an EOA delegated with EIP-7702)}; addresses
    the batch could not ask about are left out."""
    wanted = list(dict.fromkeys(a.lower() for a in addresses))
    results = _batch(w3, [("eth_getCode", [a, "latest"]) for a in wanted])
    if results is None:
        return {}
    return {
        a: r not in ("0x", "")
        for a, r in zip(wanted, results, strict=True)
        if r is not _ERROR and isinstance(r, str)
    }


def calls(w3: Web3, requests: list[tuple[str, bytes]], block: int | None = None) -> list[bytes | None]:
    """eth_call each (to, data) at `block` (default `latest`): the return data, or None where the batch
    got no answer."""
    at = "latest" if block is None else hex(block)
    results = _batch(w3, [("eth_call", [{"to": to, "data": "0x" + data.hex()}, at]) for to, data in requests])
    if results is None:
        return [None] * len(requests)
    return [
        None if r is _ERROR or not isinstance(r, str) else bytes.fromhex(r.removeprefix("0x"))
        for r in results
    ]
