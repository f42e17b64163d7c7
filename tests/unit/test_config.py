"""Settings come from the environment, with the seed's defaults, and refuse malformed values."""

from __future__ import annotations

import pytest

from shared.config import ConfigError, load_settings


def test_defaults_are_the_seeds() -> None:
    s = load_settings({"DATABASE_URL": "postgresql://x/y"})
    assert (s.payment_stage.batch_size, s.payment_stage.poll_interval) == (50, 4.0)
    assert (s.confirm_stage.batch_size, s.confirm_stage.poll_interval) == (20, 2.0)
    assert (s.mint_stage.batch_size, s.mint_stage.poll_interval) == (10, 3.0)
    assert s.max_quantity == 10 and s.chain_id == 31337 and s.confirmations == 1
    assert s.drain_seconds < 30  # below supervisord's stopwaitsecs


def test_values_are_read_and_checked() -> None:
    s = load_settings(
        {"DATABASE_URL": "postgresql://x/y", "MINT_BATCH_SIZE": "25", "CONFIRM_POLL_INTERVAL": "0.5"}
    )
    assert s.mint_stage.batch_size == 25 and s.confirm_stage.poll_interval == 0.5
    with pytest.raises(ConfigError, match="MAX_QUANTITY"):
        load_settings({"DATABASE_URL": "postgresql://x/y", "MAX_QUANTITY": "ten"})
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_settings({})


def test_keys_never_show_in_the_settings_repr() -> None:
    key = "0x" + "ab" * 32
    s = load_settings(
        {"DATABASE_URL": "postgresql://x/y", "PAYMENT_RELAYER_KEY": key, "MINT_RELAYER_KEY": key}
    )
    assert key not in repr(s)
