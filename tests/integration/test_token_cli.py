"""`x402-mint token add/list`: a deployed MintToken's terms are read from its contract and put on sale."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.devnet import anvil, deploy
from cli.main import app
from shared.config import Settings
from tests.integration.conftest import Chain, Deployment

pytestmark = pytest.mark.chain


def test_token_add_reads_terms_from_chain_and_lists_them(
    settings: Settings, devchain: Chain, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployer = anvil.dev_account(anvil.DEPLOYER).address
    second = deploy.deploy_token(
        devchain.w3,
        deployer,
        deployment.usdc.address,
        symbol="TWO",
        price=2_500_000,
        mint_amount=5 * 10**18,
        max_mint_count=7,
        minter=anvil.dev_account(anvil.MINT_RELAYER).address,
    )
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("RPC_URL", settings.rpc_url)
    monkeypatch.setenv("CHAIN_ID", str(settings.chain_id))
    runner = CliRunner()
    added = runner.invoke(app, ["token", "add", second.address, "--description", "the second"])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["token", "list"])
    assert listed.exit_code == 0, listed.output
    line = next(row for row in listed.output.splitlines() if row.startswith(second.address))
    assert (
        "TWO" in line and "price=2500000" in line and f"mint_amount={5 * 10**18}" in line and "max=7" in line
    )
    assert deployment.token.address in listed.output


def test_token_add_refuses_a_chain_mismatch(
    settings: Settings, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("RPC_URL", settings.rpc_url)
    monkeypatch.setenv("CHAIN_ID", "8453")  # not the node's chain
    result = CliRunner().invoke(app, ["token", "add", deployment.token.address])
    assert result.exit_code != 0
    assert "8453" in result.output
