"""`x402-mint token add/list`: a deployed MintToken's terms are read from its contract and put on sale."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner
from web3 import Web3

from cli.devnet import anvil, deploy
from cli.main import app
from shared.chain.contracts import load_artifact
from shared.config import Settings
from tests.integration.conftest import Chain, Deployment
from tests.integration.stages import query

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


def test_a_token_with_mints_on_chain_starts_its_free_supply_from_what_is_left(
    settings: Settings, devchain: Chain, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Units minted before we put a token on sale are not ours to sell: registered, its free supply is
    maxMintCount - mintCount read on chain; registered again, nothing changes."""
    w3, deployer = devchain.w3, anvil.dev_account(anvil.DEPLOYER).address
    third = deploy.deploy_token(
        w3, deployer, deployment.usdc.address, symbol="USED", max_mint_count=10, minter=deployer
    )
    contract = w3.eth.contract(
        address=Web3.to_checksum_address(third.address), abi=load_artifact("MintToken").abi
    )
    for i in range(3):
        tx = contract.functions.mint(deployer, Web3.keccak(text=f"minted elsewhere {i}")).transact(
            {"from": deployer}
        )
        assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("RPC_URL", settings.rpc_url)
    monkeypatch.setenv("CHAIN_ID", str(settings.chain_id))
    for _ in range(2):
        added = CliRunner().invoke(app, ["token", "add", third.address])
        assert added.exit_code == 0, added.output
        (row,) = query(settings, "SELECT * FROM token_reservations WHERE address = %s", third.address)
        assert (row["max_mint_count"], row["available_mints"], row["reserved_mints"]) == (10, 7, 3)
