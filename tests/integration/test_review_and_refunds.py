"""When the chain cannot be read far enough back, a payment goes to needs_review (keeping its supply)
and an operator decides with `x402-mint resolve`, checked against the chain; money that arrived for a
payment that can never be minted is sent back, once, with `x402-mint refund`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from starlette.testclient import TestClient
from typer.testing import CliRunner
from web3 import Web3

from cli.buyer import sign_payment
from cli.devnet import anvil, deploy
from cli.devnet.paths import free_port
from cli.main import app
from shared.chain.contracts import load_artifact
from shared.chain.history import SearchLimits
from shared.config import Settings
from shared.settlement.mint_ids import purchase_key
from shared.x402 import decode_payment_header
from tests.integration.conftest import CHAIN_ID, Chain, Deployment
from tests.integration.faults import RangeLimitedRpc
from tests.integration.helpers import ask_price
from tests.integration.stages import Stages, finished, payment, query, rpc
from tests.integration.strangers import Signed, Stranger

pytestmark = pytest.mark.chain
PRICE = 1_000_000


@pytest.fixture
def short_sighted(settings: Settings) -> Iterator[Settings]:
    """Stages whose node refuses eth_getLogs over more than 5 blocks, searching at most 10 back."""
    with RangeLimitedRpc(free_port(28545), settings.rpc_url, max_range=5) as proxy:
        yield replace(
            settings,
            rpc_url=proxy.url,
            log_search=SearchLimits(chunk_blocks=5, max_blocks=10),
            payment_review_attempts=2,
            retry_base_seconds=0.05,
            retry_cap_seconds=0.2,
        )


@pytest.fixture
def operator(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The CLI, on a node that searches the whole chain (the operator's)."""
    for name, value in (
        ("DATABASE_URL", settings.database_url),
        ("RPC_URL", settings.rpc_url),
        ("CHAIN_ID", str(settings.chain_id)),
        ("X402_ENV_FILE", "/dev/null"),
    ):
        monkeypatch.setenv(name, value)
    return CliRunner()


def funded(devchain: Chain, deployment: Deployment, usdc: int) -> LocalAccount:
    buyer = Account.from_key(os.urandom(32))
    deployer = anvil.dev_account(anvil.DEPLOYER).address
    deploy.fund(devchain.w3, deployer, deployment.usdc.address, [buyer.address], usdc)
    return buyer


def usdc_of(devchain: Chain, deployment: Deployment, who: str) -> int:
    usdc = devchain.w3.eth.contract(
        address=Web3.to_checksum_address(deployment.usdc.address), abi=load_artifact("TestUSDC").abi
    )
    return int(usdc.functions.balanceOf(Web3.to_checksum_address(who)).call())


def post(client: TestClient, token: str, header: str, quantity: int) -> str:
    reply = client.post(f"/api/mint/{token}", json={"quantity": quantity}, headers={"X-PAYMENT": header})
    assert reply.status_code == 202, reply.text
    return str(reply.json()["paymentQueueId"])


def until(settings: Settings, payment_id: str, status: str, timeout: float = 40.0) -> dict[str, object]:
    stages = Stages(settings)
    try:
        stages.run_until(lambda: payment(settings, payment_id)["state"] == status, timeout=timeout)
    finally:
        stages.close()
    return payment(settings, payment_id)


def settle(settings: Settings, payment_id: str) -> dict[str, object]:
    stages = Stages(settings)
    try:
        stages.run_until(lambda: finished(settings, payment_id) or _refund_done(settings, payment_id))
    finally:
        stages.close()
    return payment(settings, payment_id)


def _refund_done(settings: Settings, payment_id: str) -> bool:
    return payment(settings, payment_id)["state"] == "refunded"


def out_of_reach(devchain: Chain) -> None:
    for _ in range(30):
        rpc(devchain.w3, "evm_mine")


@pytest.mark.parametrize("decision", ["resolve", "refund", "refund_paid_by"])
def test_paid_beyond_the_search_needs_review_then_the_operator_decides(
    client: TestClient,
    settings: Settings,
    short_sighted: Settings,
    operator: CliRunner,
    devchain: Chain,
    deployment: Deployment,
    decision: str,
) -> None:
    token = deployment.token.address
    buyer = funded(devchain, deployment, 10 * PRICE)
    header = sign_payment(ask_price(client, token, 2), buyer.key.hex(), chain_id=CHAIN_ID, valid_after=0)
    them = Stranger(devchain.w3, deployment.usdc.address, CHAIN_ID)
    paid = them.submit(Signed.from_header(header))
    assert them.receipt(paid)["status"] == 1
    out_of_reach(devchain)  # 30 blocks back; the stages' node searches 10
    payment_id = post(client, token, header, 2)

    row = until(short_sighted, payment_id, "needs_review")
    assert row["supply_reserved"] and "no log of it" in str(row["error"])
    stats = operator.invoke(app, ["stats"])
    assert stats.exit_code == 0 and payment_id in stats.output.split("== needs review")[1]

    refused = operator.invoke(app, ["resolve", payment_id, "--not-paid"])
    assert refused.exit_code == 1 and f"the chain shows it paid by {paid}" in refused.output
    wrong = them.submit(them.zero_value(buyer.key.hex(), os.urandom(32)))
    refused = operator.invoke(app, ["resolve", payment_id, "--paid-by", wrong])
    assert refused.exit_code == 1 and "does not carry this payment's own transfer" in refused.output
    assert payment(settings, payment_id)["state"] == "needs_review"  # nothing changed

    if decision == "resolve":
        done = operator.invoke(app, ["resolve", payment_id, "--paid-by", paid])
        assert done.exit_code == 0 and "is now completed" in done.output, done.output
        row = settle(settings, payment_id)
        assert row["state"] == "completed" and row["minted"] == 2 and row["tx_hash"] == paid
        return
    before = usdc_of(devchain, deployment, buyer.address)
    refund = ["refund", payment_id, "--reason", "customer asked"]
    if decision == "refund_paid_by":  # the operator's node cannot search that far either: name the tx
        short = {
            "RPC_URL": short_sighted.rpc_url,
            "LOG_SEARCH_MAX_BLOCKS": "10",
            "LOG_SEARCH_CHUNK_BLOCKS": "5",
        }
        refused = operator.invoke(app, refund, env=short)
        assert refused.exit_code == 1 and "--paid-by" in refused.output, refused.output
        refused = operator.invoke(app, [*refund, "--paid-by", wrong], env=short)
        assert refused.exit_code == 1 and "does not carry this payment's own transfer" in refused.output
        assert payment(settings, payment_id)["state"] == "needs_review"  # nothing changed
        refund += ["--paid-by", paid]
    ordered = operator.invoke(app, refund, env=short if decision == "refund_paid_by" else None)
    assert ordered.exit_code == 0 and "refund ordered" in ordered.output, ordered.output
    assert not payment(settings, payment_id)["supply_reserved"]  # never minted: its supply goes back
    row = settle(settings, payment_id)
    assert row["state"] == "refunded" and row["mints"] == 0
    assert usdc_of(devchain, deployment, buyer.address) == before + 2 * PRICE


def test_a_nonce_burned_beyond_the_search_is_resolved_not_paid(
    client: TestClient,
    settings: Settings,
    short_sighted: Settings,
    operator: CliRunner,
    devchain: Chain,
    deployment: Deployment,
) -> None:
    token = deployment.token.address
    buyer = funded(devchain, deployment, 10 * PRICE)
    them = Stranger(devchain.w3, deployment.usdc.address, CHAIN_ID)
    nonce = os.urandom(32)
    burned = them.submit(them.zero_value(buyer.key.hex(), nonce))
    out_of_reach(devchain)
    header = sign_payment(
        ask_price(client, token, 3), buyer.key.hex(), chain_id=CHAIN_ID, nonce=nonce, valid_after=0
    )
    payment_id = post(client, token, header, 3)
    until(short_sighted, payment_id, "needs_review")

    refused = operator.invoke(app, ["resolve", payment_id, "--paid-by", burned])
    assert refused.exit_code == 1 and "does not carry this payment's own transfer" in refused.output
    # On a node that cannot search far enough either, "not paid" is the operator's word only with --force.
    short = {"RPC_URL": short_sighted.rpc_url, "LOG_SEARCH_MAX_BLOCKS": "10", "LOG_SEARCH_CHUNK_BLOCKS": "5"}
    refused = operator.invoke(app, ["resolve", payment_id, "--not-paid"], env=short)
    assert refused.exit_code == 1 and "add --force" in refused.output
    assert payment(settings, payment_id)["state"] == "needs_review"
    done = operator.invoke(app, ["resolve", payment_id, "--not-paid"])
    assert done.exit_code == 0 and "is now failed" in done.output, done.output
    row = payment(settings, payment_id)
    assert row["state"] == "failed" and str(row["error"]).startswith("authorization_used_elsewhere")
    assert not row["supply_reserved"] and row["mints"] == 0


def test_money_that_arrives_after_a_sell_out_is_refunded_exactly_once(
    client: TestClient, settings: Settings, operator: CliRunner, devchain: Chain, deployment: Deployment
) -> None:
    w3, deployer = devchain.w3, anvil.dev_account(anvil.DEPLOYER).address
    small = deploy.deploy_token(
        w3,
        deployer,
        deployment.usdc.address,
        symbol="TWO",
        max_mint_count=2,
        minter=anvil.dev_account(anvil.MINT_RELAYER).address,
    )
    deploy.register_token(settings.database_url, deploy.read_token(w3, small.address))
    late = Account.from_key(os.urandom(32))  # no USDC yet: its payment fails, and is watched
    late_header = sign_payment(ask_price(client, small.address, 2), late.key.hex(), chain_id=CHAIN_ID)
    late_id = post(client, small.address, late_header, 2)
    assert until(settings, late_id, "failed")["watch_until"] is not None
    rich = funded(devchain, deployment, 10 * PRICE)  # buys the whole supply meanwhile
    sold = post(
        client,
        small.address,
        sign_payment(ask_price(client, small.address, 2), rich.key.hex(), chain_id=CHAIN_ID),
        2,
    )
    assert settle(settings, sold)["state"] == "completed"

    deploy.fund(w3, deployer, deployment.usdc.address, [late.address], 2 * PRICE)
    them = Stranger(w3, deployment.usdc.address, CHAIN_ID)
    paid = them.submit(Signed.from_header(late_header))  # the late buyer's money arrives after all
    query(settings, "UPDATE payment_queue SET watch_next_at = now() WHERE id = %s RETURNING id", late_id)
    row = until(settings, late_id, "refund_owed")
    assert row["tx_hash"] == paid and row["mints"] == 0
    owed = operator.invoke(app, ["stats"]).output.split("== paid after failure refund needed")[1]
    assert late_id in owed.split("==")[0]

    assert usdc_of(devchain, deployment, late.address) == 0
    ordered = operator.invoke(app, ["refund", late_id])
    assert ordered.exit_code == 0 and "refund ordered" in ordered.output, ordered.output
    row = settle(settings, late_id)
    assert row["state"] == "refunded"
    assert usdc_of(devchain, deployment, late.address) == 2 * PRICE  # its money, back
    status = client.get(f"/api/payment/{late_id}").json()
    assert status["status"] == "refunded" and status["refund"]["status"] == "completed"
    refund_tx = status["refund"]["tx_hash"]
    assert w3.eth.get_transaction_receipt(refund_tx)["status"] == 1  # type: ignore[arg-type]
    owed = operator.invoke(app, ["stats"]).output.split("== paid after failure refund needed")[1]
    assert late_id not in owed.split("==")[0]  # lists only what is still owed

    again = operator.invoke(app, ["refund", late_id])
    assert again.exit_code == 1 and "refunded" in again.output
    token = w3.eth.contract(
        address=Web3.to_checksum_address(small.address), abi=load_artifact("MintToken").abi
    )
    auth = decode_payment_header(late_header).authorization
    key = purchase_key(small.address, deployment.usdc.address, auth.from_address, auth.nonce)
    assert token.functions.refunded(key).call()  # recorded on chain: never twice, whoever asks
