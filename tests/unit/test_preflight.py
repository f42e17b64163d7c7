"""Which pre-flight reverts are worth waiting out, and which fail the payment."""

from __future__ import annotations

from workers.payment_sender import is_transient


def test_not_yet_valid_is_transient() -> None:
    assert is_transient("FiatTokenV2: authorization is not yet valid")


def test_money_problems_are_final() -> None:
    assert not is_transient("ERC20InsufficientBalance")
    assert not is_transient("FiatTokenV2: authorization is expired")
    assert not is_transient("FiatTokenV2: invalid signature")
