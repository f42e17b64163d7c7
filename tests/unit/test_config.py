"""Settings come from the environment, with the seed's defaults, and refuse malformed values."""

from __future__ import annotations

import pytest

from shared.config import QUANTITY_LIMIT, ConfigError, load_settings
from shared.settlement.mint_ids import MAX_MINT_INDEX, mint_id


def test_defaults_are_the_seeds() -> None:
    s = load_settings({"DATABASE_URL": "postgresql://x/y"})
    assert (s.payment_stage.batch_size, s.payment_stage.poll_interval) == (50, 4.0)
    assert (s.confirm_stage.batch_size, s.confirm_stage.poll_interval) == (20, 2.0)
    # The seed minted 10 per claim; one batchMint carries 100 here (throughput at 1 s blocks).
    assert (s.mint_stage.batch_size, s.mint_stage.poll_interval) == (100, 3.0)
    assert s.payment_aggregator == "0xca11bde05977b3631167028862be2a173976ca11"  # canonical Multicall3
    assert s.max_quantity == 10 and s.chain_id == 31337 and s.confirmations == 1
    assert s.drain_seconds < 30  # below supervisord's stopwaitsecs


def test_values_are_read_and_checked() -> None:
    s = load_settings(
        {"DATABASE_URL": "postgresql://x/y", "MINT_BATCH_SIZE": "25", "CONFIRM_POLL_INTERVAL": "0.5"}
    )
    assert s.mint_stage.batch_size == 25 and s.confirm_stage.poll_interval == 0.5
    with pytest.raises(ConfigError, match="MAX_QUANTITY"):
        load_settings({"DATABASE_URL": "postgresql://x/y", "MAX_QUANTITY": "ten"})
    with pytest.raises(ConfigError, match="MAX_QUANTITY must be between 1 and 256"):
        load_settings({"DATABASE_URL": "postgresql://x/y", "MAX_QUANTITY": "257"})
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_settings({})


def test_the_quantity_limit_is_what_a_mint_id_can_number() -> None:
    """config keeps its own copy of the limit (it imports no room of shared); the two must agree."""
    assert QUANTITY_LIMIT == MAX_MINT_INDEX + 1
    address, nonce = "0x" + "11" * 20, bytes(32)
    assert mint_id(address, address, address, nonce, QUANTITY_LIMIT - 1)[-1] == QUANTITY_LIMIT - 1
    with pytest.raises(ValueError):
        mint_id(address, address, address, nonce, QUANTITY_LIMIT)


def test_keys_never_show_in_the_settings_repr() -> None:
    key = "0x" + "ab" * 32
    s = load_settings(
        {"DATABASE_URL": "postgresql://x/y", "PAYMENT_RELAYER_KEY": key, "MINT_RELAYER_KEY": key}
    )
    assert key not in repr(s)


def test_relayer_pools_from_a_list_or_a_single_key() -> None:
    a, b = "0x" + "ab" * 32, "0x" + "cd" * 32
    base = {"DATABASE_URL": "postgresql://x/y"}
    assert load_settings({**base, "PAYMENT_RELAYER_KEY": a}).payment_relayer_keys == (a,)
    assert load_settings({**base, "MINT_RELAYER_KEYS": f"{a}, {b}"}).mint_relayer_keys == (a, b)
    assert load_settings(base).payment_relayer_keys == ()
    with pytest.raises(ConfigError, match="not both"):
        load_settings({**base, "PAYMENT_RELAYER_KEY": a, "PAYMENT_RELAYER_KEYS": b})
    with pytest.raises(ConfigError, match="twice"):
        load_settings({**base, "MINT_RELAYER_KEYS": f"{a},{a}"})
    s = load_settings({**base, "PAYMENT_RELAYER_KEYS": f"{a},{b}"})
    assert a not in repr(s) and b not in repr(s)


def test_multicall_can_be_moved_or_turned_off() -> None:
    base = {"DATABASE_URL": "postgresql://x/y"}
    assert load_settings({**base, "MULTICALL3_ADDRESS": "none"}).payment_aggregator == ""
    other = "0x" + "12" * 20
    assert (
        load_settings({**base, "MULTICALL3_ADDRESS": other.upper().replace("X", "x")}).payment_aggregator
        == other
    )
    with pytest.raises(ConfigError, match="MULTICALL3_ADDRESS"):
        load_settings({**base, "MULTICALL3_ADDRESS": "0x1234"})
