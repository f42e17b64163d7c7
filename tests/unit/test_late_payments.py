"""What the watch of a failed payment decides, from the chain's answer at a pinned block."""

from __future__ import annotations

import pytest

from shared.chain.history import Pinned
from shared.settlement.authorizations import Fate, Outcome, PaidBy
from shared.settlement.late_payments import Verdict, verdict

PAID_BY = PaidBy("0x" + "ab" * 32, 7, 3)


def at(timestamp: int, fate: Fate) -> Outcome:
    return Outcome(fate, Pinned(42, timestamp), PAID_BY if fate is Fate.PAID else None)


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (at(99, Fate.UNUSED), Verdict.KEEP),  # unused and still valid: someone may still submit it
        (at(100, Fate.UNUSED), Verdict.END),  # validBefore reached unused: it can never pay
        (at(500, Fate.PAID), Verdict.PAID),  # its own transfer paid after all (seen after validBefore too)
        (at(50, Fate.PAID), Verdict.PAID),
        (at(50, Fate.CANCELED), Verdict.END),
        (at(50, Fate.USED_ELSEWHERE), Verdict.END),  # its nonce went to another authorization
        (at(50, Fate.UNDETERMINED), Verdict.KEEP),  # used, how not known yet, and it could still run
        (at(100, Fate.UNDETERMINED), Verdict.REVIEW),  # its window closed, still not known: an operator
    ],
)
def test_verdict(outcome: Outcome, expected: Verdict) -> None:
    assert verdict(outcome, valid_before=100) is expected
