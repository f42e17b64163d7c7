"""Talking to the EVM node: a web3 client, local signing, fee quotes and classified broadcasts."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import Web3RPCError

from shared.chain.broadcast_errors import BroadcastOutcome, classify_broadcast_error
from shared.chain.endpoints import FailoverProvider

# web3's validation asks the node's eth_chainId before every eth_call (a second round trip for each
# pre-flight and authorization lookup), and its ENS step walks every request's parameters for names:
# we send no ENS names, sign with CHAIN_ID, and never use an endpoint on another chain.
UNUSED_MIDDLEWARE = ("validation", "ens_name_to_address")


def connect(
    rpc_urls: str | Sequence[str],
    timeout: float = 10.0,
    *,
    max_lag_blocks: int = 5,
    quarantine_seconds: float = 30.0,
    chain_id: int | None = None,
) -> Web3:
    """A web3 client over HTTP, on one endpoint or several (failover, broadcast to all, lagging ones
    taken out, and with `chain_id` one on another chain never used: shared/chain/endpoints.py); retries
    are ours to decide, so the provider does not retry."""
    urls = [rpc_urls] if isinstance(rpc_urls, str) else list(rpc_urls)
    w3 = Web3(
        FailoverProvider(
            urls,
            timeout=timeout,
            max_lag_blocks=max_lag_blocks,
            quarantine_seconds=quarantine_seconds,
            chain_id=chain_id,
        )
    )
    for step in UNUSED_MIDDLEWARE:
        w3.middleware_onion.remove(step)
    return w3


def relayer(private_key: str) -> LocalAccount:
    if not private_key:
        raise ValueError("a relayer private key is required (PAYMENT_RELAYER_KEY / MINT_RELAYER_KEY)")
    account: LocalAccount = Account.from_key(private_key)
    return account


@dataclass(frozen=True, slots=True)
class Fees:
    max_fee_per_gas: int
    max_priority_fee: int

    def ahead(self) -> Fees:
        """The same with twice the tip (the cap raised by as much): a transaction that should be
        included before others of ours quoted at the same time."""
        return Fees(self.max_fee_per_gas + self.max_priority_fee, 2 * self.max_priority_fee)


@dataclass(frozen=True, slots=True)
class SignedTx:
    raw: bytes
    tx_hash: str  # 0x-prefixed lowercase
    nonce: int
    gas_limit: int
    fees: Fees
    to: str
    data: bytes


FEE_QUOTE_SECONDS = 1.0
# The fee cap covers this many times the base fee: under a burst of full blocks the base fee rises up to
# 12.5 % a block, and a transaction capped at 2x (the usual) could not be included after about six
# such blocks until bumped; 4x lasts about twelve. Only base fee + tip is ever paid.
BASE_FEE_HEADROOM = 4
_quotes: dict[int, tuple[float, Fees]] = {}  # id(w3) → (when, fees): a busy stage asks once a second


def quote_fees(w3: Web3, *, max_age: float = FEE_QUOTE_SECONDS) -> Fees:
    """EIP-1559 fees for the next block: BASE_FEE_HEADROOM times the base fee plus the node's
    suggested tip. A quote younger than `max_age` seconds is reused (fees move once a block at most,
    and a stuck transaction is bumped); a replacement asks afresh (`max_age=0`), since it exists
    because the market moved."""
    cached = _quotes.get(id(w3))
    if cached is not None and time.monotonic() - cached[0] < max_age:
        return cached[1]
    block = w3.eth.get_block("latest")
    base_fee = int(block.get("baseFeePerGas", 0) or 0)
    tip = int(w3.eth.max_priority_fee)
    fees = Fees(max_fee_per_gas=BASE_FEE_HEADROOM * base_fee + tip, max_priority_fee=tip)
    _quotes[id(w3)] = (time.monotonic(), fees)
    return fees


def sign(
    account: LocalAccount, *, chain_id: int, nonce: int, to: str, data: str | bytes, gas: int, fees: Fees
) -> SignedTx:
    tx: dict[str, Any] = {
        "type": 2,
        "chainId": chain_id,
        "nonce": nonce,
        "to": Web3.to_checksum_address(to),
        "value": 0,
        "data": Web3.to_hex(data) if isinstance(data, bytes) else data,
        "gas": gas,
        "maxFeePerGas": fees.max_fee_per_gas,
        "maxPriorityFeePerGas": fees.max_priority_fee,
    }
    signed = account.sign_transaction(tx)
    return SignedTx(
        raw=bytes(signed.raw_transaction),
        tx_hash="0x" + bytes(signed.hash).hex(),
        nonce=nonce,
        gas_limit=gas,
        fees=fees,
        to=to.lower(),
        data=data if isinstance(data, bytes) else bytes.fromhex(data.removeprefix("0x")),
    )


def broadcast(w3: Web3, raw: bytes) -> tuple[BroadcastOutcome, str]:
    """Send stored signed bytes; return how it went and the node's words (empty on success)."""
    try:
        w3.eth.send_raw_transaction(raw)
    except Web3RPCError as exc:
        message = str(exc.message if getattr(exc, "message", None) else exc)
        return classify_broadcast_error(message), message
    except Exception as exc:  # transport errors: the node may or may not have it
        return BroadcastOutcome.UNKNOWN, f"{type(exc).__name__}: {exc}"
    return BroadcastOutcome.ACCEPTED, ""


def pending_nonce(w3: Web3, address: str) -> int:
    return int(w3.eth.get_transaction_count(Web3.to_checksum_address(address), "pending"))
