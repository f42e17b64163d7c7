"""The committed contract artifacts must be exactly what the sources compile to."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from shared.chain.contracts import ARTIFACTS_DIR, load_artifact

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPILE_SCRIPT = REPO_ROOT / "contracts" / "compile.mjs"
CONTRACTS = ("TestUSDC", "MintToken", "TestWallet", "TestWalletFactory", "TestGasBurner")
REBUILD_HINT = "contract sources changed without rebuilding: run `node contracts/compile.mjs` and commit"


@pytest.fixture(scope="module")
def fresh_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is required to compile the contracts")
    out_dir = tmp_path_factory.mktemp("contracts-build")
    result = subprocess.run(
        [node, str(COMPILE_SCRIPT), str(out_dir)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"compile.mjs failed:\n{result.stdout}\n{result.stderr}"
    return out_dir


def test_artifacts_dir_location() -> None:
    assert REPO_ROOT / "contracts" / "build" == ARTIFACTS_DIR


def test_build_produces_exactly_the_committed_files(fresh_build: Path) -> None:
    built = sorted(p.name for p in fresh_build.glob("*.json"))
    committed = sorted(p.name for p in ARTIFACTS_DIR.glob("*.json"))
    assert built == sorted(f"{name}.json" for name in CONTRACTS)
    assert committed == built, REBUILD_HINT


@pytest.mark.parametrize("name", CONTRACTS)
def test_committed_artifact_is_up_to_date(fresh_build: Path, name: str) -> None:
    fresh = (fresh_build / f"{name}.json").read_bytes()
    committed = (ARTIFACTS_DIR / f"{name}.json").read_bytes()
    if fresh != committed:
        fresh_data, committed_data = json.loads(fresh), json.loads(committed)
        differing = sorted(
            k for k in fresh_data.keys() | committed_data.keys() if fresh_data.get(k) != committed_data.get(k)
        )
        pytest.fail(f"{name}.json differs in {differing}: {REBUILD_HINT}")


@pytest.mark.parametrize("name", CONTRACTS)
def test_artifact_shape(name: str) -> None:
    data = json.loads((ARTIFACTS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    assert data["contractName"] == name
    assert data["compiler"] == "0.8.30"
    assert data["settings"] == {"evmVersion": "cancun", "optimizer": {"enabled": True, "runs": 200}}
    artifact = load_artifact(name)
    assert artifact.name == name
    assert artifact.abi == data["abi"]
    assert artifact.bytecode == data["bytecode"]
    assert artifact.bytecode.startswith("0x") and len(artifact.bytecode) > 2
    int(artifact.bytecode, 16)
    raw = (ARTIFACTS_DIR / f"{name}.json").read_text(encoding="utf-8")
    assert raw.endswith("}\n")
    assert raw == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
