"""Named SQL blocks and numbered migrations are found and parsed as the code expects."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.db.migrations import discover
from shared.db.queries import SQL_DIR, all_queries, parse_blocks


def test_parse_blocks_splits_on_name_lines() -> None:
    text = "-- name: one\nSELECT 1;\n\n-- name: two\n-- a comment\nSELECT 2;\n"
    assert parse_blocks(text) == {"one": "SELECT 1;", "two": "-- a comment\nSELECT 2;"}


def test_a_block_defined_twice_is_an_error() -> None:
    with pytest.raises(ValueError, match="twice"):
        parse_blocks("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n")


def test_every_query_the_code_names_exists() -> None:
    names = set(all_queries())
    used = set()
    for path in [
        *Path(SQL_DIR.parent / "workers").glob("*.py"),
        *Path(SQL_DIR.parent / "api").rglob("*.py"),
        *Path(SQL_DIR.parent / "shared").glob("*.py"),
        *Path(SQL_DIR.parent / "cli").rglob("*.py"),
    ]:
        text = path.read_text()
        for part in text.split('q("')[1:]:
            used.add(part.split('"')[0])
    assert used, "no q(...) calls found"
    assert used <= names, f"missing SQL blocks: {used - names}"


def test_migrations_are_numbered_in_order(tmp_path: Path) -> None:
    found = discover()
    assert [m.version for m in found] == sorted(m.version for m in found)
    assert found[0].version == 1
    (tmp_path / "0001_a.sql").write_text("")
    (tmp_path / "0001_b.sql").write_text("")
    with pytest.raises(ValueError, match="share a number"):
        discover(tmp_path)
    (tmp_path / "0001_b.sql").unlink()
    (tmp_path / "oops.sql").write_text("")
    with pytest.raises(ValueError, match="NNNN_name"):
        discover(tmp_path)
