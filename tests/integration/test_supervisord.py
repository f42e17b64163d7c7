"""The real supervisord.conf: all four programs run; stopping and starting one stage while the
others keep running loses nothing, and a stopped stage exits cleanly on SIGTERM."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cli.buyer import sign_payment
from cli.devnet import anvil
from cli.devnet.paths import PROJECT_ROOT, free_port
from shared.config import Settings
from tests.integration.conftest import CHAIN_ID, Deployment

pytestmark = [pytest.mark.chain, pytest.mark.slow]
VENV_BIN = PROJECT_ROOT / ".venv" / "bin"


class Supervisor:
    def __init__(self, conf: Path, api_url: str) -> None:
        self.conf = conf
        self.api_url = api_url

    def ctl(self, *args: str) -> str:
        result = subprocess.run(
            [str(VENV_BIN / "supervisorctl"), "-c", str(self.conf), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result.stdout + result.stderr

    def states(self) -> dict[str, str]:
        lines = self.ctl("status").splitlines()
        return {line.split()[0]: line.split()[1] for line in lines if line.strip()}


@pytest.fixture
def supervisor(tmp_path: Path, settings: Settings) -> Iterator[Supervisor]:
    run_dir = tmp_path / "run"
    (run_dir / "logs").mkdir(parents=True)
    api_port = free_port(18402)
    env_file = tmp_path / "test.env"
    env_file.write_text(
        "\n".join(
            [
                f"DATABASE_URL={settings.database_url}",
                f"RPC_URL={settings.rpc_url}",
                f"CHAIN_ID={settings.chain_id}",
                f"API_PORT={api_port}",
                f"PAYMENT_RELAYER_KEYS={','.join(settings.payment_relayer_keys)}",
                f"MINT_RELAYER_KEYS={','.join(settings.mint_relayer_keys)}",
                "PAYMENT_POLL_INTERVAL=0.5",
                "CONFIRM_POLL_INTERVAL=0.5",
                "MINT_POLL_INTERVAL=0.5",
                "",
            ]
        )
    )
    conf = (PROJECT_ROOT / "supervisord.conf").read_text()
    conf = conf.replace("%(here)s/.dev", str(run_dir)).replace("%(here)s", str(PROJECT_ROOT))
    conf_path = tmp_path / "supervisord.conf"
    conf_path.write_text(conf)
    subprocess.run(
        [str(VENV_BIN / "supervisord"), "-c", str(conf_path)],
        check=True,
        env={"PATH": "/usr/bin:/bin", "X402_ENV_FILE": str(env_file)},
    )
    sup = Supervisor(conf_path, f"http://127.0.0.1:{api_port}")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{sup.api_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        # A program is RUNNING once it has stayed up for startsecs; until then it reads STARTING.
        while time.monotonic() < deadline and set(sup.states().values()) != {"RUNNING"}:
            time.sleep(0.2)
        yield sup
    finally:
        sup.ctl("shutdown")
        time.sleep(1)


def purchase(api_url: str, token: str, key: str, quantity: int) -> str:
    offer = httpx.post(f"{api_url}/api/mint/{token}", json={"quantity": quantity}, timeout=10)
    header = sign_payment(offer.json()["accepts"][0], key, chain_id=CHAIN_ID)
    reply = httpx.post(
        f"{api_url}/api/mint/{token}", json={"quantity": quantity}, headers={"X-PAYMENT": header}, timeout=10
    )
    assert reply.status_code == 202, reply.text
    return str(reply.json()["paymentQueueId"])


def status(api_url: str, payment_id: str) -> dict[str, object]:
    body: dict[str, object] = httpx.get(f"{api_url}/api/payment/{payment_id}", timeout=10).json()
    return body


def wait_all_minted(api_url: str, ids: list[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        bodies = [status(api_url, pid) for pid in ids]
        if all(
            b["status"] == "completed"
            and all(
                m["status"] == "completed"  # type: ignore[index, union-attr]
                for m in b["result"]["mints"]
            )
            for b in bodies
        ):
            return
        time.sleep(0.3)
    raise AssertionError(f"not all minted: {[status(api_url, pid) for pid in ids]}")


def test_each_stage_stops_and_starts_while_the_others_run(
    supervisor: Supervisor, deployment: Deployment
) -> None:
    token = deployment.token.address
    buyer = anvil.dev_account(16).key.hex()
    assert supervisor.states() == {
        "api": "RUNNING",
        "confirmer": "RUNNING",
        "mint-sender": "RUNNING",
        "payment-sender": "RUNNING",
    }
    for stage in ("payment-sender", "confirmer", "mint-sender"):
        assert "stopped" in supervisor.ctl("stop", stage)
        assert supervisor.states()[stage] == "STOPPED"
        assert supervisor.states()["api"] == "RUNNING"
        ids = [purchase(supervisor.api_url, token, buyer, q) for q in (1, 3)]
        time.sleep(1.5)
        # The stopped stage holds up its part of the work, and only that.
        first = status(supervisor.api_url, ids[0])
        if stage == "payment-sender":
            assert first["status"] == "pending"
        elif stage == "confirmer":
            assert first["status"] == "sent"
        else:
            assert first["status"] == "completed"
            assert all(m["status"] == "pending" for m in first["result"]["mints"])  # type: ignore[index]
        assert "started" in supervisor.ctl("start", stage)
        wait_all_minted(supervisor.api_url, ids)
    log = (
        Path(str(supervisor.conf).replace("supervisord.conf", "run")) / "logs" / "supervisord.log"
    ).read_text()
    for stage in ("payment-sender", "confirmer", "mint-sender"):
        assert f"stopped: {stage} (exit status 0)" in log, log
