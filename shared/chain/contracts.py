"""Compiled contract artifacts (ABI + creation bytecode) produced by ``contracts/compile.mjs``.

The JSON files live in ``contracts/build/`` and are committed; rebuild them with
``node contracts/compile.mjs`` after changing any ``contracts/src/*.sol`` file.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ARTIFACTS_DIR", "Artifact", "load_artifact"]

ARTIFACTS_DIR: Path = Path(__file__).resolve().parents[2] / "contracts" / "build"


@dataclass(frozen=True)
class Artifact:
    """A compiled contract: its name, ABI and ``0x``-prefixed creation bytecode."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str


@functools.cache
def load_artifact(name: str) -> Artifact:
    """Load ``contracts/build/<name>.json`` (cached per name).

    Raises ``FileNotFoundError`` if the artifact does not exist and ``ValueError`` if it
    is malformed.
    """
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"invalid contract name: {name!r}")
    path = ARTIFACTS_DIR / f"{name}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    abi = data.get("abi")
    bytecode = data.get("bytecode")
    if not isinstance(abi, list) or not all(isinstance(item, dict) for item in abi):
        raise ValueError(f"{path}: 'abi' must be a list of objects")
    if not isinstance(bytecode, str) or not bytecode.startswith("0x") or len(bytecode) <= 2:
        raise ValueError(f"{path}: 'bytecode' must be a non-empty 0x-prefixed hex string")
    return Artifact(name=name, abi=abi, bytecode=bytecode)
