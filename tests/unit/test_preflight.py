"""Which pre-flight reverts are worth waiting out, and what a refused payment becomes."""

from __future__ import annotations

import pytest

from shared.chain.history import Pinned
from shared.settlement.authorizations import Fate, Outcome, PaidBy
from shared.settlement.payment_calls import Next, after_refusal
from workers.payment_sender import is_transient


def test_not_yet_valid_is_transient() -> None:
    assert is_transient("FiatTokenV2: authorization is not yet valid")


def test_money_problems_are_final() -> None:
    assert not is_transient("ERC20InsufficientBalance")
    assert not is_transient("FiatTokenV2: authorization is expired")
    assert not is_transient("FiatTokenV2: invalid signature")


# A refusal at the head is never a verdict alone: the authorization's state at a block CONFIRMATIONS
# deep decides (after_refusal). validBefore is 100 here; the pinned block's time varies.
PAID_BY = PaidBy("0x" + "ab" * 32, 7, 3)
USED = "FiatTokenV2: authorization is used or canceled"
EXPIRED = "FiatTokenV2: authorization is expired"
POOR = "ERC20InsufficientBalance"


def at(fate: Fate, time: int = 50, detail: str = "") -> Outcome:
    return Outcome(fate, Pinned(9, time), PAID_BY if fate is Fate.PAID else None, detail)


@pytest.mark.parametrize(
    ("reason", "outcome", "expected"),
    [
        # Expired at the head, but paid before it expired (a stranger ran it): its transfer decides.
        (EXPIRED, at(Fate.PAID, 150), Next.FINAL),
        (EXPIRED, at(Fate.USED_ELSEWHERE, 150), Next.FINAL),
        (EXPIRED, at(Fate.UNUSED, 150), Next.FAIL),  # unused at a block past validBefore: for good
        (EXPIRED, at(Fate.UNUSED, 99), Next.WAIT),  # expired at the head, not yet at depth
        (USED, at(Fate.UNUSED, 50), Next.WAIT),  # used at the head only: wait for depth
        (USED, at(Fate.PAID), Next.FINAL),
        (USED, at(Fate.CANCELED), Next.FINAL),
        (POOR, at(Fate.UNUSED, 50), Next.FAIL_WATCHED),  # the money may still come: watched
        (POOR, at(Fate.UNUSED, 100), Next.FAIL),
        (POOR, at(Fate.PAID), Next.FINAL),  # a stranger paid it between the two reads
    ],
)
def test_a_refusal_is_decided_at_depth(reason: str, outcome: Outcome, expected: Next) -> None:
    step, _ = after_refusal(reason, outcome, valid_before=100, undetermined_looks=0, review_after=3)
    assert step is expected


def test_what_cannot_be_determined_waits_a_bounded_number_of_looks() -> None:
    outcome = at(Fate.UNDETERMINED, detail="no log of it in 10 blocks")
    step, why = after_refusal(USED, outcome, valid_before=100, undetermined_looks=1, review_after=3)
    assert step is Next.WAIT_UNDETERMINED and why == "no log of it in 10 blocks"  # counted
    step, why = after_refusal(USED, outcome, valid_before=100, undetermined_looks=2, review_after=3)
    assert step is Next.REVIEW and why


def test_a_lookup_the_node_did_not_answer_waits_uncounted() -> None:
    """A node that drops requests (an outage) must not send payments to review, however long."""
    step, _ = after_refusal(POOR, None, valid_before=100, undetermined_looks=99, review_after=3)
    assert step is Next.WAIT


def test_a_payment_whose_preflight_never_answers_is_decided_once_it_expired() -> None:
    """Nothing waits for a pre-flight for ever: past validBefore, the chain at depth decides."""
    silent = "pre-flight unavailable: the node errs for this one"
    assert (
        after_refusal(
            silent,
            at(Fate.UNUSED, 150),
            valid_before=100,
            undetermined_looks=0,
            review_after=3,
            answered=False,
        )[0]
        is Next.FAIL
    )
    assert (
        after_refusal(
            silent,
            at(Fate.UNUSED, 99),
            valid_before=100,
            undetermined_looks=0,
            review_after=3,
            answered=False,
        )[0]
        is Next.WAIT
    )  # not expired at depth yet: no verdict from silence
    assert (
        after_refusal(
            silent, at(Fate.PAID), valid_before=100, undetermined_looks=0, review_after=3, answered=False
        )[0]
        is Next.FINAL
    )
