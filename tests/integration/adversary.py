"""The adversarial test's actors: buyers, strangers, a node that reorganises and stages that get
SIGKILLed, each action chosen by a seeded random generator (tests/integration/test_adversary.py)."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from eth_account import Account
from eth_account.signers.local import LocalAccount
from starlette.testclient import TestClient
from web3 import Web3

from cli.buyer import sign_payment
from cli.devnet import anvil, deploy
from tests.integration.faults import WorkerProcess
from tests.integration.stages import rpc
from tests.integration.strangers import Signed, Stranger


@dataclass
class Order:
    """A buyer's signed authorization: posted to us (or not yet), maybe used on chain by others."""

    buyer: LocalAccount
    quantity: int
    header: str
    answer: int | None = None  # the status of our POST, once posted
    payment_id: str | None = None

    @property
    def signed(self) -> Signed:
        return Signed.from_header(self.header)


@dataclass
class Adversary:
    rng: random.Random
    client: TestClient
    w3: Web3
    token: str
    usdc: str
    chain_id: int
    workers: list[WorkerProcess]
    reorg_max_depth: int
    buyers: list[LocalAccount] = field(default_factory=list)
    poor: list[LocalAccount] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    plain_transfers: list[tuple[str, int]] = field(default_factory=list)  # (tx hash, amount)
    actions: Counter[str] = field(default_factory=Counter)
    offers: dict[int, dict[str, object]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stranger = Stranger(self.w3, self.usdc, self.chain_id)
        deployer = anvil.dev_account(anvil.DEPLOYER).address
        self.buyers = [Account.create() for _ in range(12)]
        self.poor = [Account.create() for _ in range(6)]  # no USDC until `fund_poor`
        deploy.fund(self.w3, deployer, self.usdc, [b.address for b in self.buyers], 1_000 * 10**6)
        for q in range(1, 6):
            reply = self.client.post(f"/api/mint/{self.token}", json={"quantity": q})
            self.offers[q] = reply.json()["accepts"][0]

    # --- the moves ---------------------------------------------------------------------------------

    def moves(self) -> dict[str, tuple[int, Callable[[], None]]]:
        return {
            "honest_purchase": (5, lambda: self._post(self._new_order())),
            "sign_for_later": (2, self._new_order),
            "post_later": (3, self._post_unposted),
            "repost_same_header": (1, self._repost),
            "stranger_submits_alone": (2, self._submit_alone),
            "stranger_batches_via_multicall3": (2, self._batch),
            "same_nonce_zero_value": (1, self._zero_value),
            "cancel_authorization": (1, self._cancel),
            "plain_usdc_transfer_to_token": (1, self._plain_transfer),
            "fund_a_poor_buyer": (1, self._fund_poor),
            "late_payment_of_a_poor_buyer": (2, self._late_payment),
            "reorg": (1, self._reorg),
            "sigkill_a_stage": (1, self._sigkill),
        }

    def step(self) -> None:
        moves = self.moves()
        name = self.rng.choices(list(moves), weights=[w for w, _ in moves.values()])[0]
        moves[name][1]()
        self.actions[name] += 1

    def _new_order(self) -> Order:
        buyer = self.rng.choice(self.buyers + self.poor)
        quantity = self.rng.randint(1, 5)
        header = sign_payment(self.offers[quantity], buyer.key.hex(), chain_id=self.chain_id)
        order = Order(buyer, quantity, header)
        self.orders.append(order)
        return order

    def _post(self, order: Order) -> None:
        reply = self.client.post(
            f"/api/mint/{self.token}", json={"quantity": order.quantity}, headers={"X-PAYMENT": order.header}
        )
        if reply.status_code == 429:  # this payer has too many still settling: it posts again later
            return
        order.answer = reply.status_code
        if reply.status_code == 202:
            order.payment_id = reply.json()["paymentQueueId"]

    def unposted(self) -> list[Order]:
        return [o for o in self.orders if o.answer is None]

    def _post_unposted(self) -> None:
        if waiting := self.unposted():
            self._post(self.rng.choice(waiting))

    def _repost(self) -> None:
        posted = [o for o in self.orders if o.payment_id]
        if not posted:
            return
        order = self.rng.choice(posted)
        reply = self.client.post(
            f"/api/mint/{self.token}", json={"quantity": order.quantity}, headers={"X-PAYMENT": order.header}
        )
        assert reply.status_code in (202, 409, 429), reply.text  # never a second payment
        assert reply.status_code == 429 or reply.json()["paymentQueueId"] == order.payment_id

    def _any_order(self) -> Order | None:
        return self.rng.choice(self.orders) if self.orders else None

    def _submit_alone(self) -> None:
        if order := self._any_order():
            self.stranger.submit(order.signed, tip=self.rng.choice([10**9, 50 * 10**9]))

    def _batch(self) -> None:
        if len(self.orders) < 2:
            return
        picked = self.rng.sample(self.orders, min(len(self.orders), self.rng.randint(2, 4)))
        signed = [o.signed for o in picked]
        if self.rng.random() < 0.5:  # and use another order's nonce up in the same transaction
            other = self.rng.choice(self.orders)
            signed.append(self.stranger.zero_value(other.buyer.key.hex(), other.signed.auth.nonce))
        self.stranger.batch(signed)

    def _zero_value(self) -> None:
        if order := self._any_order():
            self.stranger.submit(self.stranger.zero_value(order.buyer.key.hex(), order.signed.auth.nonce))

    def _cancel(self) -> None:
        if order := self._any_order():
            self.stranger.cancel(order.buyer.key.hex(), order.signed.auth.nonce)

    def _plain_transfer(self) -> None:
        buyer = self.rng.choice(self.buyers)
        amount = self.rng.randint(1, 3) * 10**6
        self.plain_transfers.append((self.stranger.pay_directly(buyer, self.token, amount), amount))

    def _fund_poor(self) -> None:
        poor = self.rng.choice(self.poor)
        deployer = anvil.dev_account(anvil.DEPLOYER).address
        self.stranger.usdc.functions.mint(poor.address, 20 * 10**6).transact({"from": deployer})

    def _late_payment(self) -> None:
        """A poor buyer's posted order (failed: no money) is funded and run by a stranger after all —
        after a sell-out, that money is owed back."""
        posted = [o for o in self.orders if o.payment_id and o.buyer in self.poor]
        if not posted:
            return
        order = self.rng.choice(posted)
        deployer = anvil.dev_account(anvil.DEPLOYER).address
        funding = self.stranger.usdc.functions.mint(order.buyer.address, order.signed.auth.value)
        self.w3.eth.wait_for_transaction_receipt(funding.transact({"from": deployer}), timeout=30)
        self.stranger.submit(order.signed)

    def _reorg(self) -> None:
        """The newest blocks are replaced (their transactions dropped), never as deep as CONFIRMATIONS."""
        rpc(self.w3, "anvil_reorg", self.rng.randint(1, self.reorg_max_depth), [])

    def _sigkill(self) -> None:
        victim = self.rng.choice(self.workers)
        victim.kill()
        time.sleep(self.rng.uniform(0, 0.5))
        victim.start()
