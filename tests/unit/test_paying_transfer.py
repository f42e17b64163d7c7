"""One transfer, one payment: a payment is paid only by the Transfer its own AuthorizationUsed is
followed by in the receipt (FiatToken emits the two back to back), from the asset, moving exactly
its amount to payTo. Pure logic over hand-made receipt logs."""

from __future__ import annotations

from typing import Any

from shared.settlement.authorizations import (
    AUTHORIZATION_CANCELED_TOPIC,
    AUTHORIZATION_USED_TOPIC,
    TRANSFER_TOPIC,
    Terms,
    paying_transfer,
)

ASSET = "0x" + "a5" * 20
TOKEN = "0x" + "70" * 20
PAYER = "0x" + "b1" * 20
OTHER = "0x" + "c2" * 20


def word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


def nonce(n: int) -> bytes:
    return n.to_bytes(32, "big")


def terms(n: int, amount: int = 1_000_000, payer: str = PAYER) -> Terms:
    return Terms(ASSET, payer, TOKEN, amount, nonce(n), 0, 2**40)


def used(n: int, payer: str = PAYER, address: str = ASSET) -> dict[str, Any]:
    return {"address": address, "topics": [AUTHORIZATION_USED_TOPIC, word(payer), nonce(n)], "data": b""}


def transfer(to: str, value: int, frm: str = PAYER, address: str = ASSET) -> dict[str, Any]:
    return {
        "address": address,
        "topics": [TRANSFER_TOPIC, word(frm), word(to)],
        "data": value.to_bytes(32, "big"),
    }


def receipt(*entries: dict[str, Any], first: int = 0) -> list[dict[str, Any]]:
    return [{**e, "logIndex": first + i} for i, e in enumerate(entries)]


def test_its_own_transfer_pays_it() -> None:
    logs = receipt(used(1), transfer(TOKEN, 1_000_000), first=5)
    assert paying_transfer(logs, terms(1)) == 6


def test_one_transfer_cannot_pay_other_nonces_of_the_same_payer() -> None:
    """Defect 1: A0 pays; A1..A3's nonces are used by 0-value authorizations to the payer in the same
    transaction. Only A0 is paid: A0's Transfer is not A1's, however alike."""
    logs = receipt(
        used(0),
        transfer(TOKEN, 1_000_000),
        used(1),
        transfer(PAYER, 0),
        used(2),
        transfer(PAYER, 0),
        used(3),
        transfer(PAYER, 0),
    )
    assert paying_transfer(logs, terms(0)) == 1
    assert [paying_transfer(logs, terms(n)) for n in (1, 2, 3)] == [None, None, None]


def test_each_of_a_batch_is_paid_by_its_own_transfer() -> None:
    logs = receipt(used(1), transfer(TOKEN, 1_000_000), used(2), transfer(TOKEN, 2_000_000))
    assert paying_transfer(logs, terms(1)) == 1
    assert paying_transfer(logs, terms(2, amount=2_000_000)) == 3
    assert paying_transfer(logs, terms(2, amount=1_000_000)) is None  # the amount must be exact


def test_the_transfer_must_follow_at_once_from_the_asset() -> None:
    assert paying_transfer(receipt(used(1), transfer(OTHER, 1), transfer(TOKEN, 1_000_000)), terms(1)) is None
    fake = transfer(TOKEN, 1_000_000, address="0x" + "99" * 20)  # another contract's Transfer event
    assert paying_transfer(receipt(used(1), fake), terms(1)) is None
    assert (
        paying_transfer(receipt(used(1, address="0x" + "99" * 20), transfer(TOKEN, 1_000_000)), terms(1))
        is None
    )
    assert paying_transfer(receipt(used(1)), terms(1)) is None  # nothing after it
    gap = [{**used(1), "logIndex": 3}, {**transfer(TOKEN, 1_000_000), "logIndex": 5}]
    assert paying_transfer(gap, terms(1)) is None


def test_payee_payer_and_nonce_must_match() -> None:
    assert paying_transfer(receipt(used(1), transfer(OTHER, 1_000_000)), terms(1)) is None
    assert paying_transfer(receipt(used(1), transfer(TOKEN, 1_000_000)), terms(2)) is None
    logs = receipt(used(1, payer=OTHER), transfer(TOKEN, 1_000_000, frm=OTHER))
    assert paying_transfer(logs, terms(1)) is None
    assert paying_transfer(logs, terms(1, payer=OTHER)) == 1


def test_a_cancellation_pays_nothing_and_log_order_does_not_depend_on_list_order() -> None:
    cancel = {"address": ASSET, "topics": [AUTHORIZATION_CANCELED_TOPIC, word(PAYER), nonce(1)], "data": b""}
    assert paying_transfer(receipt(cancel, transfer(TOKEN, 1_000_000)), terms(1)) is None
    logs = receipt(used(1), transfer(TOKEN, 1_000_000))
    assert paying_transfer(list(reversed(logs)), terms(1)) == 1
    hexed = [
        {**e, "topics": ["0x" + t.hex() for t in e["topics"]], "data": "0x" + e["data"].hex()} for e in logs
    ]
    assert paying_transfer(hexed, terms(1)) == 1  # as a node's JSON has them
