"""JSON-RPC batch reads against a real node: found, missing and refused entries each come back right."""

from __future__ import annotations

import os
from typing import Any

import pytest
from eth_hash.auto import keccak
from web3 import Web3

from cli.devnet import anvil
from shared.chain import rpc_batch
from shared.chain.contracts import load_artifact
from tests.integration.conftest import Chain, Deployment
from tests.integration.stages import rpc

pytestmark = pytest.mark.chain


def own_sender(w3: Web3) -> str:
    """An account no other test sends from (a stage that another test left with a transaction stuck
    in the mempool would hold up ours behind it), with gas money, that the node signs for."""
    sender = Web3.to_checksum_address(os.urandom(20))
    rpc(w3, "anvil_setBalance", sender, hex(10**18))
    rpc(w3, "anvil_impersonateAccount", sender)
    return sender


def until_mined(w3: Web3, tx_hashes: list[str]) -> None:
    """Mines blocks until every one of them is in one: the pool may hold better-paying transactions
    that other tests' stages left, enough to fill the block our sending mined."""
    for _ in range(20):
        if all(rpc(w3, "eth_getTransactionReceipt", h) for h in tx_hashes):
            return
        rpc(w3, "evm_mine")
    raise AssertionError(f"not mined after 20 blocks: {tx_hashes}")


def test_receipts_in_one_batch_found_and_missing(devchain: Chain) -> None:
    w3 = devchain.w3
    rpc(w3, "evm_mine")
    sender = own_sender(w3)
    mined = [
        "0x" + bytes(w3.eth.send_transaction({"from": sender, "to": sender, "value": 1})).hex()
        for _ in range(2)
    ]
    until_mined(w3, mined)
    missing = "0x" + "ab" * 32
    found = rpc_batch.receipts(w3, [*mined, missing, mined[0]])
    assert set(found) == {*mined, missing}
    assert found[missing] is None
    for tx_hash in mined:
        receipt = found[tx_hash]
        assert receipt is not None
        assert_same_as_web3s(receipt, w3.eth.get_transaction_receipt(tx_hash))  # type: ignore[arg-type]
        assert rpc_batch.receipt(w3, tx_hash) == receipt
    assert rpc_batch.receipt(w3, missing) is None


def assert_same_as_web3s(light: Any, formatted: Any) -> None:
    """The light decoding says what web3's formatter says, for every field the settlement reads."""
    for field in ("transactionHash", "blockHash", "blockNumber", "status", "gasUsed"):
        assert light[field] == formatted[field], field
    assert len(light["logs"]) == len(formatted["logs"])
    for mine, theirs in zip(light["logs"], formatted["logs"], strict=True):
        assert mine["address"] == theirs["address"].lower()
        assert mine["topics"] == [bytes(t) for t in theirs["topics"]]
        assert mine["data"] == bytes(theirs["data"])
        for field in ("logIndex", "blockNumber", "transactionHash"):
            assert mine[field] == theirs[field], field


def test_a_receipt_with_logs_decodes_as_web3_decodes_it(devchain: Chain, deployment: Deployment) -> None:
    w3 = devchain.w3
    usdc = w3.eth.contract(
        address=Web3.to_checksum_address(deployment.usdc.address), abi=load_artifact("TestUSDC").abi
    )
    owner = anvil.dev_account(anvil.DEPLOYER).address
    sent = usdc.functions.mint(w3.eth.accounts[4], 5).transact({"from": owner})  # a Transfer log
    formatted = w3.eth.wait_for_transaction_receipt(sent)
    light = rpc_batch.receipts(w3, ["0x" + bytes(sent).hex()])["0x" + bytes(sent).hex()]
    assert light is not None and light["logs"]
    assert_same_as_web3s(light, formatted)


def test_block_hashes_in_one_batch(devchain: Chain) -> None:
    w3 = devchain.w3
    head = w3.eth.block_number
    hashes = rpc_batch.block_hashes(w3, [head, head - 1, head + 1000])
    assert set(hashes) == {head, head - 1}  # a block not there yet is left out
    assert hashes[head] == bytes(w3.eth.get_block(head)["hash"])


def test_mined_nonces_in_one_batch(devchain: Chain) -> None:
    w3 = devchain.w3
    busy, fresh = own_sender(w3), "0x" + "7e" * 20
    until_mined(w3, ["0x" + bytes(w3.eth.send_transaction({"from": busy, "to": busy, "value": 1})).hex()])
    nonces = rpc_batch.mined_nonces(w3, [busy, busy.lower(), fresh])
    assert nonces == {busy.lower(): w3.eth.get_transaction_count(busy, "latest"), fresh: 0}
    assert nonces[busy.lower()] >= 1
    assert rpc_batch.mined_nonces(w3, ["0x12"]) == {}  # not an address: refused, left out


def test_a_refused_entry_is_left_out_for_the_one_at_a_time_path(devchain: Chain) -> None:
    w3 = devchain.w3
    found = rpc_batch.receipts(w3, ["0x1234"])  # not a hash: the node answers this entry with an error
    assert found == {}


def test_calls_in_one_batch(devchain: Chain, deployment: Deployment) -> None:
    w3 = devchain.w3
    usdc = deployment.usdc.address
    decimals = keccak(b"decimals()")[:4]
    nothing_there = "0x" + "00" * 19 + "01"  # a precompile: answers, but not with decimals
    answers = rpc_batch.calls(w3, [(usdc, decimals), (usdc, b"\xde\xad\xbe\xef"), (nothing_there, decimals)])
    assert answers[0] is not None and int.from_bytes(answers[0], "big") == 6
    assert answers[1] is None  # reverted (no such function): left for the one-at-a-time path
    assert answers[2] is not None
