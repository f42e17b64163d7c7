"""A pool of relayer keys per stage: claims take the keys in turn, each key keeps its own nonces."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from eth_account import Account
from starlette.testclient import TestClient
from web3 import Web3

from cli.devnet import anvil, deploy
from shared.chain.contracts import load_artifact
from shared.config import Settings, StageSettings
from tests.integration.conftest import Chain, Deployment
from tests.integration.helpers import buy
from tests.integration.stages import Stages, finished, new_relayer_keys, payment, query

pytestmark = pytest.mark.chain


def test_each_stage_spreads_its_transactions_over_its_keys(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment
) -> None:
    w3 = devchain.w3
    payment_keys, mint_keys = new_relayer_keys(w3, 2), new_relayer_keys(w3, 2)
    token = w3.eth.contract(
        address=Web3.to_checksum_address(deployment.token.address), abi=load_artifact("MintToken").abi
    )
    role = token.functions.MINTER_ROLE().call()
    deployer = anvil.dev_account(anvil.DEPLOYER).address
    for key in mint_keys:
        tx = token.functions.grantRole(role, Account.from_key(key).address).transact({"from": deployer})
        assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    buyers = [Account.from_key(os.urandom(32)) for _ in range(6)]
    deploy.fund(w3, deployer, deployment.usdc.address, [b.address for b in buyers], 100 * 10**6)
    ids = [buy(client, deployment.token.address, b.key.hex(), 2) for b in buyers]
    pooled = replace(
        settings,
        payment_relayer_keys=tuple(payment_keys),
        mint_relayer_keys=tuple(mint_keys),
        payment_stage=StageSettings(2, 0.5),  # three claims of two payments
        mint_stage=StageSettings(4, 0.5),  # three claims of four mints
    )
    stages = Stages(pooled)
    try:
        stages.run_until(lambda: all(finished(settings, i) for i in ids))
        assert all(
            (payment(settings, i)["state"], payment(settings, i)["minted"]) == ("completed", 2) for i in ids
        )
        txs = query(
            settings,
            "SELECT purpose, from_address, nonce, state::text AS state FROM chain_txs"
            " WHERE id IN (SELECT chain_tx_id FROM payment_queue WHERE id = ANY(%s::uuid[])"
            "              UNION SELECT chain_tx_id FROM mint_queue WHERE payment_id = ANY(%s::uuid[]))",
            ids,
            ids,
        )
        assert {t["state"] for t in txs} == {"confirmed"}
        used = {(t["purpose"], t["from_address"]) for t in txs}
        assert {a for p, a in used if p == "payment"} == {
            Account.from_key(k).address.lower() for k in payment_keys
        }
        assert {a for p, a in used if p == "mint"} == {Account.from_key(k).address.lower() for k in mint_keys}
        for key in payment_keys + mint_keys:  # each key's own nonces, from 0, without a gap
            address = Account.from_key(key).address.lower()
            mine = sorted(t["nonce"] for t in txs if t["from_address"] == address)
            assert mine == list(range(len(mine)))
            assert w3.eth.get_transaction_count(Web3.to_checksum_address(address)) == len(mine)
    finally:
        stages.close()
