"""Our hand-made calldata (shared/chain/calldata.py) is byte for byte what web3 encodes from the
compiled ABIs for the same arguments."""

from __future__ import annotations

import os

from web3 import Web3

from shared.chain import calldata
from shared.chain.contracts import load_artifact

W3 = Web3()
USDC = W3.eth.contract(abi=load_artifact("TestUSDC").abi)
TOKEN = W3.eth.contract(abi=load_artifact("MintToken").abi)
PAYER, PAY_TO = "0x" + "11" * 20, "0x" + "ab" * 20


def web3_encoding(contract: object, name: str, args: list[object]) -> bytes:
    return bytes.fromhex(str(contract.encode_abi(name, args=args)).removeprefix("0x"))  # type: ignore[attr-defined]


def test_transfer_with_authorization_in_both_forms() -> None:
    nonce, signature = os.urandom(32), os.urandom(64) + bytes([27])
    head = [Web3.to_checksum_address(PAYER), Web3.to_checksum_address(PAY_TO), 10**6, 0, 2**40, nonce]
    split = calldata.transfer_with_authorization(PAYER, PAY_TO, 10**6, 0, 2**40, nonce, signature, split=True)
    assert split == web3_encoding(
        USDC, "transferWithAuthorization", [*head, 27, signature[:32], signature[32:64]]
    )
    wallet_signature = os.urandom(200)
    whole = calldata.transfer_with_authorization(
        PAYER, PAY_TO, 10**6, 0, 2**40, nonce, wallet_signature, split=False
    )
    assert whole == web3_encoding(USDC, "transferWithAuthorization", [*head, wallet_signature])


def test_batch_mint_and_refund() -> None:
    recipients = ["0x" + os.urandom(20).hex() for _ in range(3)]
    ids = [os.urandom(32) for _ in range(3)]
    assert calldata.batch_mint(recipients, ids) == web3_encoding(
        TOKEN, "batchMint", [[Web3.to_checksum_address(r) for r in recipients], ids]
    )
    key = os.urandom(32)
    assert calldata.refund(key, PAYER, 5 * 10**6) == web3_encoding(
        TOKEN, "refund", [key, Web3.to_checksum_address(PAYER), 5 * 10**6]
    )
