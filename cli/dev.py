"""`x402-mint dev up|down`: the embedded default — a dev chain, a database, the contracts, supervisord."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import typer
from web3 import Web3

from cli.devnet import anvil, deploy, postgres
from cli.devnet.paths import DEV_DIR, DEVNET_FILE, ENV_FILE, PROJECT_ROOT
from shared import chain
from shared.db.migrations import migrate
from shared.x402 import network_name

app = typer.Typer(help="The local dev environment under .dev/.", no_args_is_help=True)
SUPERVISORD_CONF = PROJECT_ROOT / "supervisord.conf"
ANVIL_PID = DEV_DIR / "anvil.pid"
METRICS_DIR = DEV_DIR / "metrics"  # PROMETHEUS_MULTIPROC_DIR in supervisord.conf
DEFAULT_API_PORT = 8402
DEFAULT_RPC_PORT = 8545
API_WORKERS = max(1, min(4, os.cpu_count() or 1))  # one uvicorn worker per core
# The dev chain carries about 370 purchases a second at 1 s blocks (30,000,000 gas ÷ ~82,000):
# beyond about two seconds of that accepted and not yet on chain, paid POSTs are turned away.
DEV_MAX_BACKLOG = 800
BUYER_FUNDS = 1_000_000 * 10**6  # 1M test USDC each


def _database_url(new_chain: bool) -> str:
    """DATABASE_URL, else the local cluster's x402_mint database — made anew with a new chain, since
    what it holds (payments, nonces, transactions) belonged to the chain that is gone."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    server = postgres.ensure_running()
    if new_chain:
        postgres.drop_database(server, "x402_mint")
    return postgres.ensure_database(server, "x402_mint")


def _ensure_chain(chain_id: int, block_time: float | None, rpc_port: int) -> str:
    rpc_url = f"http://127.0.0.1:{rpc_port}"
    running = anvil.answers(rpc_url)
    if running is not None:
        if running != chain_id:
            raise typer.BadParameter(
                f"a node on {rpc_url} runs chain {running}, not {chain_id}; dev down first"
            )
        return rpc_url
    proc = anvil.start(
        port=rpc_port,
        chain_id=chain_id,
        block_time=block_time,
        log_path=DEV_DIR / "logs" / "anvil.log",
        detach=True,
    )
    ANVIL_PID.write_text(str(proc.pid))
    return rpc_url


def _deployed(w3: Web3, state: dict[str, Any]) -> bool:
    try:
        return all(
            len(w3.eth.get_code(Web3.to_checksum_address(a))) > 0
            for a in [state["usdc"]["address"], *(t["address"] for t in state["tokens"])]
        )
    except (KeyError, TypeError, ValueError):
        return False


def _deploy(w3: Web3, database_url: str) -> dict[str, Any]:
    deployer = anvil.dev_account(anvil.DEPLOYER).address
    usdc = deploy.deploy_usdc(w3, deployer)
    token = deploy.deploy_token(
        w3, deployer, usdc.address, minter=anvil.dev_account(anvil.MINT_RELAYER).address
    )
    deploy.fund(w3, deployer, usdc.address, [anvil.dev_account(i).address for i in anvil.BUYERS], BUYER_FUNDS)
    deploy.register_token(database_url, deploy.read_token(w3, token.address))
    return {"usdc": deploy.as_json(usdc), "tokens": [deploy.as_json(token)]}


def _supervisorctl(*args: str) -> subprocess.CompletedProcess[str]:
    exe = PROJECT_ROOT / ".venv" / "bin" / "supervisorctl"
    return subprocess.run([str(exe), "-c", str(SUPERVISORD_CONF), *args], capture_output=True, text=True)


def _start_supervisord() -> None:
    if _supervisorctl("pid").returncode == 0:
        _supervisorctl("update")
        _supervisorctl("restart", "all")  # pick up a new .dev/dev.env
        return
    env = {**os.environ, "X402_ENV_FILE": str(ENV_FILE)}
    shutil.rmtree(METRICS_DIR, ignore_errors=True)  # a new supervisord: counters start from zero
    METRICS_DIR.mkdir(parents=True)
    exe = PROJECT_ROOT / ".venv" / "bin" / "supervisord"
    subprocess.run([str(exe), "-c", str(SUPERVISORD_CONF)], env=env, check=True)


@app.command("up")
def up(
    chain_id: int = typer.Option(31337, envvar="CHAIN_ID"),
    block_time: float = typer.Option(0, envvar="BLOCK_TIME", help="Seconds per block; 0 = automine."),
    rpc_port: int = typer.Option(DEFAULT_RPC_PORT, envvar="DEV_RPC_PORT", help="anvil's port."),
    api_port: int = typer.Option(DEFAULT_API_PORT, envvar="DEV_API_PORT", help="The API's port."),
) -> None:
    """Start (or reuse) anvil, PostgreSQL, the contracts and all five programs. Safe to run twice."""
    (DEV_DIR / "logs").mkdir(parents=True, exist_ok=True)
    new_chain = anvil.answers(f"http://127.0.0.1:{rpc_port}") is None
    rpc_url = _ensure_chain(chain_id, block_time or None, rpc_port)
    database_url = _database_url(new_chain)
    migrate(database_url)
    w3 = chain.connect(rpc_url)
    deploy.install_multicall3(w3)
    state = json.loads(DEVNET_FILE.read_text()) if DEVNET_FILE.exists() else {}
    if not _deployed(w3, state) or state.get("database_url") != database_url:
        typer.echo("deploying TestUSDC and MintToken ...")
        state = _deploy(w3, database_url)
    payment_relayer, mint_relayer = (
        anvil.dev_account(anvil.PAYMENT_RELAYER),
        anvil.dev_account(anvil.MINT_RELAYER),
    )
    ENV_FILE.write_text(
        "".join(
            f"{k}={v}\n"
            for k, v in {
                "DATABASE_URL": database_url,
                "RPC_URL": rpc_url,
                "CHAIN_ID": chain_id,
                "API_HOST": "127.0.0.1",
                "API_PORT": api_port,
                "API_WORKERS": API_WORKERS,
                "PAYMENT_RELAYER_KEY": payment_relayer.key.hex(),
                "MINT_RELAYER_KEY": mint_relayer.key.hex(),
                "LOG_FORMAT": "json",
                "DASHBOARD": "true",  # on a loopback-bound API: for whoever works on this machine
                # anvil now and then drops a transaction that arrives while it builds a block: with
                # 1 s blocks, re-send stored bytes after 3 s rather than the production 15 s.
                "REBROADCAST_AFTER_SECONDS": 3,
                "ADMISSION_MAX_BACKLOG": DEV_MAX_BACKLOG,
            }.items()
        )
    )
    ENV_FILE.chmod(0o600)
    state.update(
        {
            "api_url": f"http://127.0.0.1:{api_port}",
            "rpc_url": rpc_url,
            "chain_id": chain_id,
            "network": network_name(chain_id),
            "database_url": database_url,
            "supervisord_conf": str(SUPERVISORD_CONF),
            "payers": [
                {"address": anvil.dev_account(i).address, "private_key": anvil.dev_account(i).key.hex()}
                for i in anvil.BUYERS
            ],
        }
    )
    DEVNET_FILE.write_text(json.dumps(state, indent=2) + "\n")
    _start_supervisord()
    wait_for_api(state["api_url"])
    typer.echo(
        f"dev environment up: API {state['api_url']}, RPC {rpc_url}, chain {chain_id}; "
        f"state in {DEVNET_FILE.relative_to(PROJECT_ROOT)}"
    )
    typer.echo(f"  live dashboard {state['api_url']}/dashboard   |   metrics {state['api_url']}/metrics")
    typer.echo(f"  supervisorctl -c {SUPERVISORD_CONF.name} status   |   x402-mint dev down")


def wait_for_api(api_url: str, timeout: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{api_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the API did not answer at {api_url}; see .dev/logs/api.log")


@app.command("down")
def down() -> None:
    """Stop everything `dev up` started (supervisord and its programs, anvil, the local PostgreSQL)."""
    if _supervisorctl("pid").returncode == 0:
        _supervisorctl("shutdown")
        deadline = time.monotonic() + 45  # programs drain within stopwaitsecs (30 s)
        while (DEV_DIR / "supervisord.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        typer.echo("supervisord stopped")
    if ANVIL_PID.exists():
        pid = int(ANVIL_PID.read_text())
        try:
            os.kill(pid, signal.SIGTERM)
            typer.echo("anvil stopped")
        except ProcessLookupError:
            pass
        ANVIL_PID.unlink()
        DEVNET_FILE.unlink(missing_ok=True)  # a new chain next time: its deployments are gone
    postgres.stop()
    typer.echo("dev environment down")


def dev_state() -> dict[str, Any]:
    if not DEVNET_FILE.exists():
        raise typer.BadParameter("no .dev/devnet.json: run `x402-mint dev up` first")
    state: dict[str, Any] = json.loads(Path(DEVNET_FILE).read_text())
    return state
