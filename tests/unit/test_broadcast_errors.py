"""Broadcast errors are classified from the node's words alone."""

from __future__ import annotations

import pytest

from shared.chain.broadcast_errors import BroadcastOutcome, classify_broadcast_error


@pytest.mark.parametrize(
    ("message", "outcome"),
    [
        ("already known", BroadcastOutcome.ALREADY_KNOWN),
        ("transaction already imported", BroadcastOutcome.ALREADY_KNOWN),
        ("nonce too low: next nonce 26527, tx nonce 26485", BroadcastOutcome.NONCE_TOO_LOW),
        ("replacement transaction underpriced", BroadcastOutcome.UNDERPRICED),
        ("max fee per gas less than block base fee", BroadcastOutcome.UNDERPRICED),
        ("insufficient funds for gas * price + value", BroadcastOutcome.INSUFFICIENT_FUNDS),
        ("execution reverted: FiatTokenV2: authorization is used or canceled", BroadcastOutcome.REVERTED),
        ("connection reset by peer", BroadcastOutcome.UNKNOWN),
        ("", BroadcastOutcome.UNKNOWN),
    ],
)
def test_classification(message: str, outcome: BroadcastOutcome) -> None:
    assert classify_broadcast_error(message) is outcome


def test_only_accepted_and_already_known_count_as_delivered() -> None:
    assert {o for o in BroadcastOutcome if o.delivered} == {
        BroadcastOutcome.ACCEPTED,
        BroadcastOutcome.ALREADY_KNOWN,
    }
