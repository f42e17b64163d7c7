"""The default gas limits hold the worst case on the real contracts, and stay near what is used.

A block takes a transaction only while its whole gas limit fits in the gas left, so a limit far above
the use leaves full blocks part empty; a limit below the worst case fails honest work. Each test sends
the worst case its stage can meet, with the limit the stage would give it, from an impersonated
account of its own (no relayer's nonce is touched)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from cli.devnet import anvil, deploy
from shared.chain import calldata, multicall
from shared.chain.contracts import load_artifact
from shared.config import Settings
from shared.settlement import payment_calls
from shared.x402.eip3009 import Authorization, Eip712Domain, sign_transfer
from tests.integration.conftest import Chain, Deployment

pytestmark = pytest.mark.chain


def stranger(devchain: Chain) -> str:
    """A fresh account the node sends for (impersonated), with gas money."""
    address = Account.create().address
    devchain.w3.provider.make_request("anvil_impersonateAccount", [address])  # type: ignore[arg-type]
    devchain.w3.provider.make_request("anvil_setBalance", [address, hex(10**20)])  # type: ignore[arg-type]
    return address


def send(devchain: Chain, sender: str, to: str, data: bytes, gas: int) -> Any:
    tx_hash = devchain.w3.eth.send_transaction(
        {"from": sender, "to": Web3.to_checksum_address(to), "data": data, "gas": gas}
    )
    return devchain.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)


def test_a_full_batch_mint_of_new_ids_to_new_holders_fits_the_default_limit(
    settings: Settings, devchain: Chain, deployment: Deployment
) -> None:
    minter = stranger(devchain)
    token = deploy.deploy_token(
        devchain.w3, anvil.dev_account(anvil.DEPLOYER).address, deployment.usdc.address, minter=minter
    )
    minted = devchain.w3.eth.contract(
        address=Web3.to_checksum_address(token.address), abi=load_artifact("MintToken").abi
    )
    for n in (1, settings.mint_stage.batch_size):
        # Worst case: the token's first batch (its counters start at zero), every id alone in its
        # bitmap word (random ids), every recipient a new holder.
        holders = [Account.create().address for _ in range(n)]
        ids = [os.urandom(32) for _ in range(n)]
        limit = settings.mint_gas_base + settings.mint_gas_per_item * n
        receipt = send(devchain, minter, token.address, calldata.batch_mint(holders, ids), limit)
        assert receipt["status"] == 1, f"a batchMint of {n} ran out of its {limit} gas"
        assert minted.functions.mintCount().call() >= n
        if n > 1:  # near the use, not a multiple of it
            assert receipt["gasUsed"] > 0.85 * limit, (receipt["gasUsed"], limit)


def test_a_full_shared_payment_transaction_fits_the_default_limit(
    settings: Settings, devchain: Chain, deployment: Deployment
) -> None:
    w3 = devchain.w3
    size = settings.payment_aggregate_size
    payers = [Account.create() for _ in range(size)]
    deploy.fund(
        w3,
        anvil.dev_account(anvil.DEPLOYER).address,
        deployment.usdc.address,
        [p.address for p in payers],
        2 * 10**6,
    )
    pay_to = Account.create().address.lower()  # holds nothing yet: its first credit costs the most
    domain = Eip712Domain("USD Coin", "2", devchain.chain_id, deployment.usdc.address)
    valid_before = int(w3.eth.get_block("latest")["timestamp"]) + 3600
    calls = []
    for payer in payers:
        # Each keeps a balance (no storage refund lowers the gas reported) and uses a fresh nonce (a new
        # slot).
        auth = Authorization(payer.address.lower(), pay_to, 10**6, 0, valid_before, os.urandom(32))
        signature = sign_transfer(domain, auth, payer.key)
        data = calldata.transfer_with_authorization(
            auth.from_address, pay_to, auth.value, 0, valid_before, auth.nonce, signature, split=True
        )
        calls.append(payment_calls.Call(deployment.usdc.address, data, settings.payment_gas_limit))
    planned = payment_calls.plan(
        calls, aggregator=multicall.CANONICAL_ADDRESS, gas_each=settings.payment_shared_gas
    )
    assert planned.gas == payment_calls.AGGREGATE_GAS_BASE + size * settings.payment_shared_gas
    receipt = send(devchain, stranger(devchain), planned.to, planned.data, planned.gas)
    assert receipt["status"] == 1
    usdc = w3.eth.contract(
        address=Web3.to_checksum_address(deployment.usdc.address), abi=load_artifact("TestUSDC").abi
    )
    assert (
        usdc.functions.balanceOf(Web3.to_checksum_address(pay_to)).call() == size * 10**6
    )  # every call paid
    assert receipt["gasUsed"] > 0.6 * planned.gas, (receipt["gasUsed"], planned.gas)
