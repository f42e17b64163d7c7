"""The dev chain: anvil from npm (@foundry-rs/anvil), with the standard test mnemonic's accounts.

Account roles: 0 deploys and administers, 1 is the payment relayer, 2 the mint relayer,
10-19 are buyers funded with test USDC.
"""

from __future__ import annotations

import subprocess
import time
from functools import cache
from pathlib import Path

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount

from cli.devnet.paths import NODE_BIN

MNEMONIC = "test test test test test test test test test test test junk"
ACCOUNT_COUNT = 20
DEPLOYER, PAYMENT_RELAYER, MINT_RELAYER = 0, 1, 2
BUYERS = range(10, 20)


@cache
def dev_account(index: int) -> LocalAccount:
    Account.enable_unaudited_hdwallet_features()
    account: LocalAccount = Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return account


def anvil_binary() -> str:
    path = NODE_BIN / "anvil"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `npm ci` (make install does)")
    return str(path)


def start(
    *,
    port: int,
    chain_id: int = 31337,
    block_time: float | None = None,
    log_path: Path | None = None,
    detach: bool = False,
) -> subprocess.Popen[bytes]:
    """Start anvil on 127.0.0.1:`port` and wait until it answers JSON-RPC."""
    cmd = [
        anvil_binary(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--chain-id",
        str(chain_id),
        "--accounts",
        str(ACCOUNT_COUNT),
        "--mnemonic",
        MNEMONIC,
        "--silent",
    ]
    if block_time:
        cmd += ["--block-time", str(block_time)]
    if log_path is None:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=detach
        )
    else:
        with open(log_path, "ab") as out:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=detach)
    wait_ready(f"http://127.0.0.1:{port}", proc)
    return proc


def answers(rpc_url: str) -> int | None:
    """The chain id if a node answers at `rpc_url`, else None."""
    try:
        reply = httpx.post(
            rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=1.0
        )
        return int(reply.json()["result"], 16)
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def wait_ready(rpc_url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answers(rpc_url) is not None:
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"anvil exited with code {proc.returncode}")
        time.sleep(0.1)
    raise TimeoutError(f"no JSON-RPC answer at {rpc_url} after {timeout} s")
