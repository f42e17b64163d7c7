"""The main job: `x402-mint dev up` (twice: it must be safe), `demo`, then `dev down`, run from a
copy of the project so the developer's own `.dev/` is untouched."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cli.devnet import anvil, postgres
from cli.devnet.paths import PROJECT_ROOT, free_port
from tests.integration.conftest import scratch_database
from tests.integration.scrape import Scrape

pytestmark = [pytest.mark.chain, pytest.mark.slow]


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    target = tmp_path / "project"
    for name in files:
        source = PROJECT_ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    for shared_dir in (".venv", "node_modules"):
        (target / shared_dir).symlink_to(PROJECT_ROOT / shared_dir)
    return target


@pytest.fixture
def dev_database(pg_server: str) -> Iterator[str]:
    with scratch_database(pg_server, "x402_dev") as url:
        yield url


def test_dev_up_twice_then_demo_then_down(project_copy: Path, dev_database: str) -> None:
    rpc_port, api_port = free_port(28545), free_port(28402)
    env = {
        **os.environ,
        "DATABASE_URL": dev_database,
        "DEV_RPC_PORT": str(rpc_port),
        "DEV_API_PORT": str(api_port),
        "PYTHONPATH": str(project_copy),
    }
    env.pop("X402_ENV_FILE", None)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(project_copy / "bin" / "x402-mint"), *args],
            cwd=project_copy,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )

    try:
        first = cli("dev", "up")
        assert first.returncode == 0, first.stdout + first.stderr
        assert "deploying" in first.stdout
        state = json.loads((project_copy / ".dev" / "devnet.json").read_text())
        assert set(state) >= {
            "api_url",
            "rpc_url",
            "chain_id",
            "network",
            "database_url",
            "supervisord_conf",
            "usdc",
            "tokens",
            "payers",
        }
        assert state["api_url"] == f"http://127.0.0.1:{api_port}" and state["chain_id"] == 31337
        assert state["usdc"]["name"] == "USD Coin" and state["usdc"]["version"] == "2"
        assert state["tokens"][0]["price"] == 1_000_000 and state["tokens"][0]["max_mint_count"] == 100_000
        assert len(state["payers"]) == 10

        second = cli("dev", "up")
        assert second.returncode == 0, second.stdout + second.stderr
        assert "deploying" not in second.stdout  # reused: same chain, same contracts
        assert json.loads((project_copy / ".dev" / "devnet.json").read_text())["tokens"] == state["tokens"]

        demo = cli("demo")
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert demo.stdout.count(": completed, payment tx 0x") == 3

        # The operators' views of the running service: every process's metrics in one scrape (the
        # API workers' counters, the stages' histograms), the database's figures, the dashboard.
        scrape = Scrape.parse(httpx.get(f"{state['api_url']}/metrics", timeout=10).text)
        assert scrape.value("x402mint_payments_accepted_total") >= 3
        assert scrape.value("x402mint_payment_paid_seconds_count") >= 3  # written by the confirmer
        assert scrape.value("x402mint_queue_depth", queue="payment", status="completed") >= 3
        assert httpx.get(f"{state['api_url']}/dashboard", timeout=10).status_code == 200
        assert any((project_copy / ".dev" / "metrics").iterdir())

        # Operator commands in the project, as the README shows them, with no settings given: they
        # use the running dev environment's (and say so).
        env.pop("DATABASE_URL")
        stats = cli("stats")
        assert stats.returncode == 0, stats.stdout + stats.stderr
        assert "settings: .dev/dev.env" in stats.stderr and "== queue depth" in stats.stdout
        listed = cli("token", "list")
        assert listed.returncode == 0 and state["tokens"][0]["address"] in listed.stdout
        env["DATABASE_URL"] = dev_database
    finally:
        down = cli("dev", "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert anvil.answers(f"http://127.0.0.1:{rpc_port}") is None
    assert not (project_copy / ".dev" / "supervisord.pid").exists()


def test_a_port_another_cluster_took_is_not_taken_for_ours(pg_server: str, tmp_path: Path) -> None:
    """The port recorded for the project's stopped cluster may since answer for another checkout's:
    only a server whose data directory is ours counts as ours (else a fault test restarting "our"
    server would restart nothing, and every test would write to a stranger's)."""
    if os.environ.get("TEST_PG_URL"):
        pytest.skip("the suite runs on a server it was given, not the project's cluster")
    ours = postgres.cluster_dir() / "data"
    assert postgres.serves(pg_server, ours)
    assert not postgres.serves(pg_server, tmp_path / "data")  # another cluster's directory
    assert not postgres.serves(postgres.url(free_port(47000)), ours)  # nothing answers there
