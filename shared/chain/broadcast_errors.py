"""What a broadcast error means, as a pure function of the node's message."""

from __future__ import annotations

from enum import StrEnum


class BroadcastOutcome(StrEnum):
    ACCEPTED = "accepted"
    ALREADY_KNOWN = "already_known"  # the node has it: as good as accepted
    NONCE_TOO_LOW = "nonce_too_low"  # an attempt of ours may be mined; the confirmer finds out
    UNDERPRICED = "underpriced"  # replacement or base fee too low: bump fees
    INSUFFICIENT_FUNDS = "insufficient_funds"  # the relayer cannot pay gas: alert, keep the work
    REVERTED = "reverted"  # the node simulated it and it reverts
    UNKNOWN = "unknown"  # transport or unrecognised: check the chain before anything else

    @property
    def delivered(self) -> bool:
        return self in (BroadcastOutcome.ACCEPTED, BroadcastOutcome.ALREADY_KNOWN)


_PATTERNS: tuple[tuple[tuple[str, ...], BroadcastOutcome], ...] = (
    (
        ("already known", "known transaction", "already imported", "alreadyknown"),
        BroadcastOutcome.ALREADY_KNOWN,
    ),
    (("nonce too low", "nonce is too low", "oldnonce"), BroadcastOutcome.NONCE_TOO_LOW),
    (
        (
            "replacement transaction underpriced",
            "underpriced",
            "fee cap less than block base fee",
            "max fee per gas less than block base fee",
            "feecap",
        ),
        BroadcastOutcome.UNDERPRICED,
    ),
    (("insufficient funds",), BroadcastOutcome.INSUFFICIENT_FUNDS),
    (("execution reverted", "revert"), BroadcastOutcome.REVERTED),
)


def classify_broadcast_error(message: str) -> BroadcastOutcome:
    text = message.lower()
    for needles, outcome in _PATTERNS:
        if any(needle in text for needle in needles):
            return outcome
    return BroadcastOutcome.UNKNOWN
