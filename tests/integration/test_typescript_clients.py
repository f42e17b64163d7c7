"""The official x402 TypeScript clients buy from us, unmodified, over the real HTTP server: v2
(`@x402/fetch` + `@x402/evm`) and v1 (`x402-fetch`), each by Node, versions pinned in
tests/interop/package.json. Each purchase completes end to end: tokens on chain."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from cli.devnet import anvil, deploy
from cli.devnet.paths import PROJECT_ROOT
from shared.chain.contracts import load_artifact
from tests.integration.conftest import CHAIN_ID, Chain, Deployment, LiveServer, Pipeline
from tests.integration.helpers import TERMINAL
from tests.integration.stages import payment

pytestmark = [pytest.mark.chain, pytest.mark.slow]
INTEROP = PROJECT_ROOT / "tests" / "interop"


def buy_with_node(script: str, **env: str) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None or not (INTEROP / "node_modules").is_dir():
        pytest.fail("node and tests/interop/node_modules are required (make install-test installs them)")
    done = subprocess.run(
        [node, str(INTEROP / script)],
        cwd=INTEROP,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def funded_buyer(devchain: Chain, deployment: Deployment) -> Any:
    buyer = Account.create()
    deploy.fund(
        devchain.w3,
        anvil.dev_account(anvil.DEPLOYER).address,
        deployment.usdc.address,
        [buyer.address],
        10**8,
    )
    return buyer


def tokens_of(devchain: Chain, deployment: Deployment, who: str) -> int:
    token = devchain.w3.eth.contract(
        address=Web3.to_checksum_address(deployment.token.address), abi=load_artifact("MintToken").abi
    )
    return int(token.functions.balanceOf(Web3.to_checksum_address(who)).call())


def wait_minted(settings: Any, payment_id: str, timeout: float = 90.0) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = payment(settings, payment_id)
        if row["state"] in TERMINAL and (row["state"] != "completed" or row["minted"] == row["quantity"]):
            return row
        time.sleep(0.2)
    raise AssertionError(f"payment {payment_id} did not finish")


@pytest.mark.parametrize(
    ("script", "header"), [("buy_v2.mjs", "PAYMENT-SIGNATURE"), ("buy_v1.mjs", "X-PAYMENT")]
)
def test_the_official_typescript_client_buys(
    live_api: LiveServer,
    pipeline: Pipeline,
    devchain: Chain,
    deployment: Deployment,
    script: str,
    header: str,
) -> None:
    buyer = funded_buyer(devchain, deployment)
    answer = buy_with_node(
        script,
        API_URL=live_api.url,
        TOKEN=deployment.token.address,
        PRIVATE_KEY="0x" + buyer.key.hex().removeprefix("0x"),
        ASSET=Web3.to_checksum_address(deployment.usdc.address),
        NETWORK=f"eip155:{CHAIN_ID}",
        RPC_URL=devchain.rpc_url,
        QUANTITY="2",
    )
    assert answer["status"] == 202, answer
    row = wait_minted(pipeline.settings, answer["body"]["paymentQueueId"])
    assert row["state"] == "completed" and row["minted"] == 2
    assert row["payer"] == buyer.address.lower()
    stored = row["payment_header"]
    version = json.loads(__import__("base64").b64decode(stored))["x402Version"]
    assert version == (2 if header == "PAYMENT-SIGNATURE" else 1)  # each paid in its own version
    assert tokens_of(devchain, deployment, buyer.address) == 2 * deployment.token.mint_amount
