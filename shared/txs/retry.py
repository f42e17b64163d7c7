"""Retry decisions as pure functions (after procrastinate's retry.py): how long to wait before the
next attempt, and what fees a replacement transaction must offer."""

from __future__ import annotations

import math

from shared.chain import Fees

BUMP_PERCENT = 10  # geth and anvil refuse a replacement that does not raise both fees by >= 10 %


def retry_delay(attempts: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Exponential backoff: base, 2·base, 4·base, … seconds, never more than `cap`."""
    if attempts <= 1:
        return base
    return float(min(cap, base * 2.0 ** min(attempts - 1, 32)))


def _raised(value: int) -> int:
    return math.ceil(value * (100 + BUMP_PERCENT) / 100) + 1


def bumped_fees(previous: Fees, market: Fees, *, max_fee_cap: int) -> Fees | None:
    """Fees for a replacement: >= +10 % on tip and fee cap, at least what the market asks now, and
    never above `max_fee_cap`. None when the cap leaves no room for a valid replacement."""
    tip = max(_raised(previous.max_priority_fee), market.max_priority_fee)
    fee_cap = max(_raised(previous.max_fee_per_gas), market.max_fee_per_gas, tip)
    if fee_cap > max_fee_cap:
        fee_cap = max_fee_cap
        tip = min(tip, fee_cap)
    if fee_cap < _raised(previous.max_fee_per_gas) or tip < _raised(previous.max_priority_fee):
        return None
    return Fees(max_fee_per_gas=fee_cap, max_priority_fee=tip)
