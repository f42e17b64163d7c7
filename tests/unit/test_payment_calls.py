"""How payments go out: many EOA transfers share one Multicall3 transaction and one pre-flight; a
contract wallet's payment — its code runs inside our transaction — never does. A node that refuses the
shared pre-flight as a whole gets each payment asked alone; a node that does not answer, none."""

from __future__ import annotations

from typing import Any

import requests
from web3.exceptions import ContractLogicError

from shared.chain import multicall
from shared.settlement.payment_calls import Call, PaymentCalls, Unavailable, preflight, transactions

AGGREGATOR = multicall.CANONICAL_ADDRESS
SENDER = "0x" + "5e" * 20
USDC = "0x" + "a5" * 20


def eoa(tag: int) -> PaymentCalls:
    return PaymentCalls([Call(USDC, bytes([tag]), 100_000)], alone=False)


def wallet(tag: int) -> PaymentCalls:
    return PaymentCalls([Call(USDC, bytes([tag]), 100_000)], alone=True)


def test_contract_wallets_go_alone_and_eoa_transfers_share() -> None:
    payments = {1: eoa(1), 2: wallet(2), 3: eoa(3), 4: eoa(4), 5: wallet(5)}
    assert transactions(payments, [1, 2, 3, 4, 5], size=2) == [[1, 3], [4], [2], [5]]


class FakeNode:
    """eth_call answers: the aggregate as scripted, single calls by their data's first byte."""

    def __init__(self, aggregate: Exception | None, refuse: set[int]) -> None:
        self.aggregate, self.refuse, self.calls = aggregate, refuse, []

    @property
    def eth(self) -> Any:
        return self

    def call(self, tx: dict[str, Any]) -> bytes:
        self.calls.append(tx["to"].lower())
        if tx["to"].lower() == AGGREGATOR:
            if self.aggregate is not None:
                raise self.aggregate
            raise AssertionError("the test scripts every aggregate")
        tag = bytes.fromhex(tx["data"][2:])[0]
        if tag in self.refuse:
            raise ContractLogicError("execution reverted: ERC20InsufficientBalance", data="0x")
        return b""


def test_a_shared_preflight_the_node_refuses_whole_is_asked_one_by_one() -> None:
    node = FakeNode(ContractLogicError("execution reverted"), refuse={3})
    verdicts = preflight(node, SENDER, {1: eoa(1), 3: eoa(3)}, AGGREGATOR)  # type: ignore[arg-type]
    assert verdicts[1] is None and isinstance(verdicts[3], str)
    assert node.calls == [AGGREGATOR, USDC, USDC]


def test_a_node_that_does_not_answer_leaves_every_payment_waiting() -> None:
    node = FakeNode(requests.exceptions.ConnectionError("refused"), refuse=set())
    verdicts = preflight(node, SENDER, {1: eoa(1), 3: eoa(3)}, AGGREGATOR)  # type: ignore[arg-type]
    assert all(isinstance(v, Unavailable) for v in verdicts.values())
    assert node.calls == [AGGREGATOR]  # not once more per payment


def test_a_wallets_payment_is_asked_alone_never_in_the_shared_aggregate() -> None:
    node = FakeNode(None, refuse=set())
    assert preflight(node, SENDER, {2: wallet(2)}, AGGREGATOR) == {2: None}  # type: ignore[arg-type]
    assert node.calls == [USDC]
