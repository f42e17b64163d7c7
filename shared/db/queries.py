"""Named SQL blocks from `sql/queries/*.sql` (procrastinate style).

A block starts with a line `-- name: <block_name>` and runs until the next such line.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def parse_blocks(text: str) -> dict[str, str]:
    """Split a file's text into its named blocks."""
    blocks: dict[str, str] = {}
    matches = list(_NAME.finditer(text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        name = match.group(1)
        if name in blocks:
            raise ValueError(f"SQL block {name!r} is defined twice")
        blocks[name] = text[match.end() : end].strip()
    return blocks


@cache
def all_queries() -> dict[str, str]:
    queries: dict[str, str] = {}
    for path in sorted((SQL_DIR / "queries").glob("*.sql")):
        for name, sql in parse_blocks(path.read_text()).items():
            if name in queries:
                raise ValueError(f"SQL block {name!r} is defined in two files")
            queries[name] = sql
    return queries


def q(name: str) -> str:
    """The SQL of the block called `name`."""
    return all_queries()[name]
