"""supervisord with the project's real supervisord.conf, for tests: started on a test's settings,
its programs' states and pids read with supervisorctl."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

from cli.devnet.paths import PROJECT_ROOT, free_port
from shared.config import Settings

VENV_BIN = PROJECT_ROOT / ".venv" / "bin"
STAGES = ("payment-sender", "confirmer", "mint-sender", "refund-sender")


class Supervisor:
    def __init__(self, conf: Path, api_url: str, metrics_url: str) -> None:
        self.conf = conf
        self.api_url = api_url
        self.metrics_url = metrics_url  # the stand-alone exporter (program `metrics`)

    def ctl(self, *args: str) -> str:
        result = subprocess.run(
            [str(VENV_BIN / "supervisorctl"), "-c", str(self.conf), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result.stdout + result.stderr

    def states(self) -> dict[str, str]:
        """{program (or group:process): state}."""
        lines = self.ctl("status").splitlines()
        return {line.split()[0]: line.split()[1] for line in lines if line.strip()}

    def pids(self) -> dict[str, int]:
        """{process: pid} of the processes running now."""
        found: dict[str, int] = {}
        for line in self.ctl("status").splitlines():
            words = line.replace(",", " ").split()
            if len(words) > 3 and words[1] == "RUNNING" and words[2] == "pid":
                found[words[0]] = int(words[3])
        return found


def launch(tmp_path: Path, settings: Settings, *, copies: int = 1, **overrides: str) -> Supervisor:
    """supervisord with the real supervisord.conf, its programs on `settings` (plus `overrides`);
    `copies` processes of each stage (numprocs, as an operator scales a stage on one host)."""
    run_dir = tmp_path / "run"
    (run_dir / "logs").mkdir(parents=True)
    api_port = free_port(18402)
    metrics_port = free_port(19502)
    env = {
        "DATABASE_URL": settings.database_url,
        "RPC_URL": settings.rpc_url,
        "CHAIN_ID": str(settings.chain_id),
        "API_PORT": str(api_port),
        "PAYMENT_RELAYER_KEYS": ",".join(settings.payment_relayer_keys),
        "MINT_RELAYER_KEYS": ",".join(settings.mint_relayer_keys),
        "PAYMENT_POLL_INTERVAL": "0.5",
        "CONFIRM_POLL_INTERVAL": "0.5",
        "MINT_POLL_INTERVAL": "0.5",
        **overrides,
    }
    env_file = tmp_path / "test.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    conf = (PROJECT_ROOT / "supervisord.conf").read_text()
    conf = conf.replace("%(here)s/.dev", str(run_dir)).replace("%(here)s", str(PROJECT_ROOT))
    # The exporter runs too (it is off by default: the API serves /metrics), on a port of its own.
    conf = conf.replace("--port 9402\nautostart=false", f"--port {metrics_port}\nautostart=true")
    if copies > 1:
        for stage in STAGES:
            conf = conf.replace(
                f"[program:{stage}]\n",
                f"[program:{stage}]\nnumprocs={copies}\nprocess_name=%(program_name)s-%(process_num)d\n",
            )
    conf_path = tmp_path / "supervisord.conf"
    conf_path.write_text(conf)
    subprocess.run(
        [str(VENV_BIN / "supervisord"), "-c", str(conf_path)],
        check=True,
        env={"PATH": "/usr/bin:/bin", "X402_ENV_FILE": str(env_file)},
    )
    return Supervisor(conf_path, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{metrics_port}/metrics")


def wait_running(sup: Supervisor, timeout: float = 30.0) -> None:
    """Until the API answers and every program is RUNNING (a program is RUNNING once it has stayed up
    for startsecs; until then it reads STARTING)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{sup.api_url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    while time.monotonic() < deadline and set(sup.states().values()) != {"RUNNING"}:
        time.sleep(0.2)
