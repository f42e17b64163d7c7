"""A person buys in a browser: headless Chromium (Debian's, driven by playwright — never a browser
download) opens the purchase URL, gets the paywall page, connects an injected EIP-1193 wallet that
signs with a funded dev-chain key, pays, and follows the payment until its tokens are on chain. The
screenshot of the finished page is kept in test-artifacts/."""

from __future__ import annotations

import json
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from cli.devnet import anvil, deploy
from cli.devnet.paths import PROJECT_ROOT
from shared.chain.contracts import load_artifact
from tests.integration.conftest import CHAIN_ID, Chain, Deployment, LiveServer, Pipeline

pytestmark = [pytest.mark.chain, pytest.mark.slow]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
# What the test wallet (an EIP-1193 provider) answers; eth_signTypedData_v4 is signed by the test.
PROVIDER = """
window.ethereum = {
  isTestWallet: true,
  async request({ method, params }) {
    if (method === "eth_requestAccounts" || method === "eth_accounts") return [%(address)s];
    if (method === "eth_chainId") return %(chain)s;
    if (method === "wallet_switchEthereumChain") return null;
    if (method === "eth_signTypedData_v4") return await window.testWalletSign(params[0], params[1]);
    throw Object.assign(new Error("unsupported method " + method), { code: 4200 });
  },
};
"""
UINT = {"uint256", "uint8"}


def sign_typed_data(key: str, address: str, signer: str, typed_json: str) -> str:
    """What a wallet does for eth_signTypedData_v4 (numbers may arrive as decimal strings)."""
    assert signer.lower() == address.lower(), "asked to sign for another account"
    typed: dict[str, Any] = json.loads(typed_json)
    for struct, fields in typed["types"].items():
        values = typed["domain"] if struct == "EIP712Domain" else typed["message"]
        for f in fields:
            if f["type"] in UINT and f["name"] in values:
                values[f["name"]] = int(values[f["name"]])
    signed = Account.sign_typed_data(key, full_message=typed)
    return "0x" + bytes(signed.signature).hex()


def test_a_person_buys_through_the_paywall_in_chromium(
    browser: Any, live_api: LiveServer, pipeline: Pipeline, devchain: Chain, deployment: Deployment
) -> None:
    """... of a token whose symbol is beyond Latin-1 (it is in the signed payment's resource
    description: the page must base64 the JSON's UTF-8, not hand btoa characters it cannot take)."""
    w3 = devchain.w3
    deployer = anvil.dev_account(anvil.DEPLOYER).address
    minter = anvil.dev_account(anvil.MINT_RELAYER).address
    made = deploy.deploy_token(w3, deployer, deployment.usdc.address, minter=minter, symbol="MÏNT✓")
    deploy.register_token(pipeline.settings.database_url, deploy.read_token(w3, made.address))
    token = made.address
    buyer = Account.create()
    deploy.fund(
        w3, anvil.dev_account(anvil.DEPLOYER).address, deployment.usdc.address, [buyer.address], 10**8
    )
    contract = w3.eth.contract(address=Web3.to_checksum_address(token), abi=load_artifact("MintToken").abi)
    before = contract.functions.balanceOf(buyer.address).call()

    page = browser.new_page(viewport={"width": 900, "height": 800})
    page.expose_function(
        "testWalletSign", lambda signer, typed: sign_typed_data(buyer.key.hex(), buyer.address, signer, typed)
    )
    page.add_init_script(
        PROVIDER % {"address": json.dumps(buyer.address), "chain": json.dumps(hex(CHAIN_ID))}
    )
    offered = page.goto(f"{live_api.url}/api/mint/{token}?quantity=2")
    assert offered is not None and offered.status == 402  # the paywall, as a page
    assert "payment-required" in offered.headers
    assert page.text_content("#symbol") == "MÏNT✓" and page.input_value("#quantity") == "2"
    assert page.text_content("#total") == "2 USDC"

    page.click("#connect")
    page.wait_for_function("document.getElementById('account').textContent.startsWith('0x')")
    page.click("#pay")
    page.wait_for_function(
        "document.getElementById('status').textContent.startsWith('Tokens on chain')", timeout=90_000
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "paywall-tokens-on-chain.png"), full_page=True)
    assert "2 mint(s) of MÏNT✓" in (page.text_content("#status") or "")
    assert contract.functions.balanceOf(buyer.address).call() == before + 2 * made.mint_amount


def test_a_browser_gets_the_paywall_and_a_program_the_json_402(
    live_api: LiveServer, deployment: Deployment
) -> None:
    import httpx

    url = f"{live_api.url}/api/mint/{deployment.token.address}"
    browser_like = {
        "Accept": "text/html,application/xhtml+xml",
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64)",
    }
    page = httpx.post(url, json={"quantity": 1}, headers=browser_like)
    assert page.status_code == 402 and page.headers["content-type"].startswith("text/html")
    assert "payment-required" in page.headers and "x402-config" in page.text
    program = httpx.post(url, json={"quantity": 1})
    assert program.status_code == 402 and program.json()["accepts"]  # the x402 JSON body, as before
    offered = httpx.get(url, params={"quantity": 3})
    assert offered.status_code == 402 and offered.json()["accepts"][0]["maxAmountRequired"] == "3000000"
    assert httpx.get(url, params={"quantity": "lots"}).json()["reason"] == "invalid_quantity"
    paying_get = httpx.get(url, headers={"X-PAYMENT": "x"})
    assert paying_get.status_code == 405 and paying_get.json()["reason"] == "method_not_allowed"


def test_where_only_v1_is_offered_a_browser_gets_the_json_402(settings: Any, deployment: Deployment) -> None:
    """The paywall pays with x402 v2: a server offering only v1 answers browsers as everyone else."""
    from starlette.testclient import TestClient

    from api.app import create_app
    from tests.integration.conftest import with_settings

    with TestClient(create_app(with_settings(settings, x402_versions=(1,)))) as client:
        reply = client.get(
            f"/api/mint/{deployment.token.address}",
            headers={"Accept": "text/html", "User-Agent": "Mozilla/5.0"},
        )
    assert reply.status_code == 402 and reply.json()["x402Version"] == 1
