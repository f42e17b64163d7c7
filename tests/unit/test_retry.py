"""Backoff and fee bumps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shared.chain import Fees
from shared.txs.retry import bumped_fees, retry_delay


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [retry_delay(n, base=0.5, cap=5) for n in range(1, 7)] == [0.5, 1, 2, 4, 5, 5]
    assert retry_delay(0) == 0.5
    assert retry_delay(10_000, cap=30) == 30


def test_bump_raises_both_fees_by_at_least_ten_percent() -> None:
    bumped = bumped_fees(Fees(2_000, 1_000), Fees(100, 10), max_fee_cap=10**18)
    assert bumped is not None
    assert bumped.max_fee_per_gas >= 2_200 and bumped.max_priority_fee >= 1_100


def test_bump_follows_the_market_when_it_moved_more() -> None:
    bumped = bumped_fees(Fees(2_000, 1_000), Fees(50_000, 3_000), max_fee_cap=10**18)
    assert bumped == Fees(50_000, 3_000)


def test_no_bump_past_the_cap() -> None:
    assert bumped_fees(Fees(2_000, 1_000), Fees(0, 0), max_fee_cap=2_100) is None
    capped = bumped_fees(Fees(2_000, 1_000), Fees(90_000, 1_000), max_fee_cap=10_000)
    assert capped == Fees(10_000, 1_101)


@given(st.integers(1, 10**15), st.integers(0, 10**15), st.integers(0, 10**15), st.integers(0, 10**15))
def test_a_bump_is_always_a_valid_replacement_or_none(
    fee: int, tip: int, market_fee: int, market_tip: int
) -> None:
    previous = Fees(max(fee, tip), tip)
    bumped = bumped_fees(previous, Fees(max(market_fee, market_tip), market_tip), max_fee_cap=10**16)
    if bumped is not None:
        assert bumped.max_fee_per_gas * 100 >= previous.max_fee_per_gas * 110
        assert bumped.max_priority_fee * 100 >= previous.max_priority_fee * 110
        assert bumped.max_priority_fee <= bumped.max_fee_per_gas <= 10**16
