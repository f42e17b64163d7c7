"""What the watch of a failed payment decides, from the chain's answers."""

from __future__ import annotations

import pytest

from shared.settlement.authorizations import AuthorizationState, Outcome
from shared.settlement.late_payments import Verdict, verdict

PAID = Outcome(AuthorizationState.PAID, "0x" + "ab" * 32, "0x" + "cd" * 20, 7)


@pytest.mark.parametrize(
    ("used", "outcome", "chain_time", "expected"),
    [
        (False, None, 99, Verdict.KEEP),  # unused and still valid: someone may still submit it
        (False, None, 100, Verdict.END),  # validBefore reached unused: it can never pay
        (True, PAID, 500, Verdict.REVIVE),  # the money arrived after all (even after validBefore)
        (True, Outcome(AuthorizationState.CANCELED), 50, Verdict.END),
        (True, Outcome(AuthorizationState.UNKNOWN), 50, Verdict.KEEP),  # used, settlement not found yet
        (True, None, 50, Verdict.KEEP),
    ],
)
def test_verdict(used: bool, outcome: Outcome | None, chain_time: int, expected: Verdict) -> None:
    assert verdict(used, outcome, chain_time=chain_time, valid_before=100) is expected
