"""When a paid POST is turned away with 503 + Retry-After (api/admission.py): the pure decision."""

from __future__ import annotations

import pytest

from api.admission import should_shed


@pytest.mark.parametrize(
    ("in_flight", "per_second", "shed"),
    [
        (0, 0.0, False),  # idle
        (63, 0.0, False),  # below the floor: admitted even with no rate known yet
        (5000, 0.0, False),  # a storm before the first answer: no evidence yet that it will wait
        (500, 1000.0, False),  # 0.5 s of waiting
        (2000, 1000.0, False),  # exactly the deadline
        (2001, 1000.0, True),  # beyond it
        (100, 10.0, True),  # a slow process: 10 s
    ],
)
def test_a_newcomer_is_turned_away_only_when_it_would_wait_past_the_deadline(
    in_flight: int, per_second: float, shed: bool
) -> None:
    assert should_shed(in_flight, per_second, deadline=2.0, floor=64) is shed
