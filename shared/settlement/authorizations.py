"""On-chain truth about a payment, whoever sent the transaction.

Anyone may submit a buyer's EIP-3009 authorization. So whether a payment was paid is decided by the
chain: `authorizationState`, the `AuthorizationUsed` / `AuthorizationCanceled` logs, and a USDC
`Transfer(payer → payTo, amount)` in the same receipt — never by which of our transactions ran.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from eth_hash.auto import keccak
from web3 import Web3

TRANSFER_TOPIC = keccak(b"Transfer(address,address,uint256)")
AUTHORIZATION_USED_TOPIC = keccak(b"AuthorizationUsed(address,bytes32)")
AUTHORIZATION_CANCELED_TOPIC = keccak(b"AuthorizationCanceled(address,bytes32)")


class AuthorizationState(StrEnum):
    UNUSED = "unused"  # the money has not moved; the authorization may still be submitted
    PAID = "paid"  # a transaction moved exactly the amount from the payer to payTo
    CANCELED = "canceled"  # the payer cancelled it: the money can never move with it
    UNKNOWN = "unknown"  # used, but the logs that say how are out of reach (older than the look-back)


@dataclass(frozen=True, slots=True)
class Outcome:
    state: AuthorizationState
    tx_hash: str | None = None
    sender: str | None = None
    sender_nonce: int | None = None


def _word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address.lower().removeprefix("0x"))


def _bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)


def paid_in_logs(logs: list[Any], *, asset: str, payer: str, pay_to: str, amount: int, nonce: bytes) -> bool:
    """Does this receipt's log list show the authorization used *and* the amount arriving at payTo?"""
    used = moved = False
    for entry in logs:
        if str(entry["address"]).lower() != asset.lower():
            continue
        topics = [_bytes(t) for t in entry["topics"]]
        if len(topics) == 3 and topics[0] == AUTHORIZATION_USED_TOPIC:
            used = used or (topics[1] == _word(payer) and topics[2] == nonce)
        elif len(topics) == 3 and topics[0] == TRANSFER_TOPIC:
            moved = moved or (
                topics[1] == _word(payer)
                and topics[2] == _word(pay_to)
                and int.from_bytes(_bytes(entry["data"]), "big") == amount
            )
    return used and moved


def authorization_outcome(
    w3: Web3, *, asset: str, payer: str, pay_to: str, amount: int, nonce: bytes, lookback_blocks: int
) -> Outcome:
    """Where the buyer's authorization stands on chain now (at `latest`)."""
    usdc = Web3.to_checksum_address(asset)
    state_call = w3.eth.call(
        {
            "to": usdc,
            "data": Web3.to_hex(keccak(b"authorizationState(address,bytes32)")[:4] + _word(payer) + nonce),
        }
    )
    if int.from_bytes(state_call, "big") == 0:
        return Outcome(AuthorizationState.UNUSED)
    head = w3.eth.block_number

    def logs(topic: bytes) -> list[Any]:
        return list(
            w3.eth.get_logs(
                {
                    "address": usdc,
                    "fromBlock": max(0, head - lookback_blocks),
                    "toBlock": head,
                    "topics": [Web3.to_hex(topic), Web3.to_hex(_word(payer)), Web3.to_hex(nonce)],
                }
            )
        )

    for event in logs(AUTHORIZATION_USED_TOPIC):
        receipt = w3.eth.get_transaction_receipt(event["transactionHash"])
        if receipt["status"] == 1 and paid_in_logs(
            list(receipt["logs"]), asset=asset, payer=payer, pay_to=pay_to, amount=amount, nonce=nonce
        ):
            tx = w3.eth.get_transaction(event["transactionHash"])
            return Outcome(
                AuthorizationState.PAID,
                "0x" + bytes(event["transactionHash"]).hex(),
                str(tx["from"]).lower(),
                int(tx["nonce"]),
            )
    if logs(AUTHORIZATION_CANCELED_TOPIC):
        return Outcome(AuthorizationState.CANCELED)
    return Outcome(AuthorizationState.UNKNOWN)


def payment_terms(payment: Mapping[str, Any]) -> dict[str, Any]:
    """What the chain is asked about a payment_queue row (asset, payer, token_address, amount, nonce)."""
    return {
        "asset": payment["asset"],
        "payer": payment["payer"],
        "pay_to": payment["token_address"],
        "amount": int(payment["amount"]),
        "nonce": bytes.fromhex(payment["nonce"][2:]),
    }


def payment_outcome(w3: Web3, payment: Mapping[str, Any], *, lookback_blocks: int) -> Outcome:
    """`authorization_outcome` for a payment_queue row."""
    return authorization_outcome(w3, lookback_blocks=lookback_blocks, **payment_terms(payment))
