"""Smart-contract wallets buy too: an ERC-1271 wallet's signature is accepted by its shape and checked
on chain (the pre-flight decides, and says why when the wallet refuses); a wallet not deployed yet
signs with ERC-6492, and the transaction that pays deploys it first (through Multicall3)."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_account import Account
from starlette.testclient import TestClient
from web3 import Web3

from api.app import create_app
from cli.devnet import anvil, deploy
from shared.chain.contracts import load_artifact
from shared.config import Settings
from shared.x402 import ExactEvmPayment, decode_payment_response, encode_payment_header
from shared.x402.eip3009 import Authorization, Eip712Domain, sign_transfer
from shared.x402.wallets import ERC6492_MAGIC
from tests.integration.conftest import CHAIN_ID, Chain, Deployment, with_settings
from tests.integration.helpers import ask_price
from tests.integration.stages import Stages, finished, payment, query, rpc

pytestmark = pytest.mark.chain
DEPLOYER = anvil.dev_account(anvil.DEPLOYER).address


def _deploy(w3: Web3, name: str, *args: Any) -> Any:
    artifact = load_artifact(name)
    tx = (
        w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        .constructor(*args)
        .transact({"from": DEPLOYER})
    )
    address = w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
    return w3.eth.contract(address=address, abi=artifact.abi)


def wallet_signature(
    accept: dict[str, Any], wallet: str, owner_key: str, quantity_price: int
) -> tuple[Authorization, bytes]:
    """The wallet's authorization, signed the TestWallet way: its owner's ECDSA signature over the
    EIP-712 digest, behind the scheme byte 0x01 (so 66 bytes: not an EOA's)."""
    now = int(time.time())
    auth = Authorization(
        from_address=wallet.lower(),
        to=accept["payTo"].lower(),
        value=quantity_price,
        valid_after=now - 600,
        valid_before=now + int(accept["maxTimeoutSeconds"]),
        nonce=os.urandom(32),
    )
    domain = Eip712Domain(accept["extra"]["name"], accept["extra"]["version"], CHAIN_ID, accept["asset"])
    return auth, b"\x01" + sign_transfer(domain, auth, owner_key)


def post(
    client: TestClient, token: str, accept: dict[str, Any], auth: Authorization, signature: bytes
) -> str:
    header = encode_payment_header(ExactEvmPayment(1, "exact", accept["network"], signature, auth))
    reply = client.post(f"/api/mint/{token}", json={"quantity": 2}, headers={"X-PAYMENT": header})
    assert reply.status_code == 202, reply.text
    return str(reply.json()["paymentQueueId"])


def settle(settings: Settings, payment_id: str) -> dict[str, Any]:
    stages = Stages(settings)
    try:
        stages.run_until(lambda: finished(settings, payment_id))
    finally:
        stages.close()
    return payment(settings, payment_id)


def fund(devchain: Chain, deployment: Deployment, who: str, amount: int) -> None:
    deploy.fund(devchain.w3, DEPLOYER, deployment.usdc.address, [Web3.to_checksum_address(who)], amount)


def tokens_of(devchain: Chain, deployment: Deployment, who: str) -> int:
    token = devchain.w3.eth.contract(
        address=Web3.to_checksum_address(deployment.token.address), abi=load_artifact("MintToken").abi
    )
    return int(token.functions.balanceOf(Web3.to_checksum_address(who)).call())


@pytest.mark.parametrize("signer", ["owner", "stranger"])
def test_an_erc1271_wallet_buys_and_one_it_refuses_fails_clearly(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment, signer: str
) -> None:
    owner = Account.create()
    wallet = _deploy(devchain.w3, "TestWallet", owner.address)
    fund(devchain, deployment, wallet.address, 10 * deployment.token.price)
    accept = ask_price(client, deployment.token.address, 2)
    key = owner.key.hex() if signer == "owner" else Account.create().key.hex()
    auth, signature = wallet_signature(accept, wallet.address, key, 2 * deployment.token.price)
    payment_id = post(client, deployment.token.address, accept, auth, signature)
    row = settle(settings, payment_id)
    if signer == "owner":
        assert row["state"] == "completed" and row["minted"] == 2
        assert tokens_of(devchain, deployment, wallet.address) == 2 * deployment.token.mint_amount
    else:
        assert row["state"] == "failed" and row["mints"] == 0
        assert "the contract wallet refused the signature (ERC-1271)" in str(row["error"]), row["error"]


def test_an_undeployed_wallet_signs_with_erc6492_and_is_deployed_by_the_paying_transaction(
    settings: Settings, devchain: Chain, deployment: Deployment
) -> None:
    w3 = devchain.w3
    factory = _deploy(w3, "TestWalletFactory")
    with TestClient(
        create_app(with_settings(settings, wallet_factories=frozenset({factory.address.lower()})))
    ) as client:
        _buy_with_an_undeployed_wallet(client, settings, devchain, deployment, factory)


def test_an_undeployed_wallet_whose_factory_call_fails_says_so(
    settings: Settings, devchain: Chain, deployment: Deployment
) -> None:
    """The factory call in an ERC-6492 signature reverts: no wallet exists to check the signature, and
    the payment fails saying that (x402's smart_wallet_deployment_failed), not that a wallet refused."""
    factory = _deploy(devchain.w3, "TestWalletFactory")
    allowed = with_settings(settings, wallet_factories=frozenset({factory.address.lower()}))
    with TestClient(create_app(allowed)) as client:
        owner = Account.create()
        predicted = factory.functions.walletAddress(owner.address, os.urandom(32)).call()
        fund(devchain, deployment, predicted, 10 * deployment.token.price)
        accept = ask_price(client, deployment.token.address, 2)
        auth, inner = wallet_signature(accept, predicted, owner.key.hex(), 2 * deployment.token.price)
        no_such_function = bytes.fromhex("deadbeef")
        signature = (
            encode(["address", "bytes", "bytes"], [factory.address, no_such_function, inner]) + ERC6492_MAGIC
        )
        payment_id = post(client, deployment.token.address, accept, auth, signature)
        row = settle(allowed, payment_id)
        assert row["state"] == "failed" and row["mints"] == 0
        assert str(row["error"]).startswith("smart_wallet_deployment_failed: "), row["error"]
        answer = client.get(f"/api/payment/{payment_id}").headers["x-payment-response"]
        assert decode_payment_response(answer)["errorReason"] == "smart_wallet_deployment_failed"


def test_a_wallet_from_a_factory_we_do_not_deploy_with_is_refused(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment
) -> None:
    """The factory's code would run inside our transaction (it could take all the gas, or return
    megabytes): an undeployed wallet is accepted only from the factories configured."""
    factory = _deploy(devchain.w3, "TestWalletFactory")
    owner, salt = Account.create(), os.urandom(32)
    predicted = factory.functions.walletAddress(owner.address, salt).call()
    accept = ask_price(client, deployment.token.address, 2)
    auth, inner = wallet_signature(accept, predicted, owner.key.hex(), 2 * deployment.token.price)
    deployment_call = bytes.fromhex(factory.encode_abi("createWallet", args=[owner.address, salt])[2:])
    signature = (
        encode(["address", "bytes", "bytes"], [factory.address, deployment_call, inner]) + ERC6492_MAGIC
    )
    header = encode_payment_header(ExactEvmPayment(1, "exact", accept["network"], signature, auth))
    reply = client.post(
        f"/api/mint/{deployment.token.address}", json={"quantity": 2}, headers={"X-PAYMENT": header}
    )
    assert (
        reply.status_code == 400
        and reply.json()["reason"] == "invalid_exact_evm_payload_undeployed_smart_wallet"
    )


def _buy_with_an_undeployed_wallet(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment, factory: Any
) -> None:
    w3 = devchain.w3
    owner, salt = Account.create(), os.urandom(32)
    predicted = factory.functions.walletAddress(owner.address, salt).call()
    assert w3.eth.get_code(predicted) == b""  # it does not exist yet, but it can be paid already
    fund(devchain, deployment, predicted, 10 * deployment.token.price)
    accept = ask_price(client, deployment.token.address, 2)
    auth, inner = wallet_signature(accept, predicted, owner.key.hex(), 2 * deployment.token.price)
    deployment_call = bytes.fromhex(factory.encode_abi("createWallet", args=[owner.address, salt])[2:])
    signature = (
        encode(["address", "bytes", "bytes"], [factory.address, deployment_call, inner]) + ERC6492_MAGIC
    )
    payment_id = post(client, deployment.token.address, accept, auth, signature)

    row = settle(settings, payment_id)
    assert row["state"] == "completed" and row["minted"] == 2
    assert w3.eth.get_code(predicted) != b""  # deployed by the transaction that paid
    paid = rpc(w3, "eth_getTransactionByHash", row["tx_hash"])
    assert paid["to"] == "0xca11bde05977b3631167028862be2a173976ca11"  # deployment + transfer: Multicall3
    assert tokens_of(devchain, deployment, predicted) == 2 * deployment.token.mint_amount


def test_contract_shaped_payments_naming_an_eoa_do_not_lock_it_out(
    client: TestClient, settings: Settings, devchain: Chain, deployment: Deployment
) -> None:
    """A contract wallet's signature is only checked on chain, so anyone can post such payments naming
    any payer. Counted with the payer's own, they could fill its open-payments cap: they are counted
    apart, and the payer's own (EOA-signed) payment still goes through."""
    from cli.buyer import sign_payment

    victim = Account.create()
    token = deployment.token.address
    accept = ask_price(client, token, 1)
    ids = []
    for _ in range(settings.max_pending_per_payer):  # unsigned junk, shaped like a wallet's signature
        auth, _sig = wallet_signature(
            accept, victim.address, Account.create().key.hex(), deployment.token.price
        )
        header = encode_payment_header(ExactEvmPayment(1, "exact", accept["network"], b"\x01" * 66, auth))
        reply = client.post(f"/api/mint/{token}", json={"quantity": 1}, headers={"X-PAYMENT": header})
        assert reply.status_code == 202, reply.text
        ids.append(reply.json()["paymentQueueId"])
    own = sign_payment(accept, victim.key.hex(), chain_id=CHAIN_ID)
    reply = client.post(f"/api/mint/{token}", json={"quantity": 1}, headers={"X-PAYMENT": own})
    assert reply.status_code == 202, reply.text  # not 429: the junk did not take the victim's slots
    ids.append(reply.json()["paymentQueueId"])
    query(
        settings,
        "UPDATE payment_queue SET status = 'failed', error = 'test cleanup' WHERE id = ANY(%s) RETURNING id",
        ids,
    )


def test_contract_signed_payments_open_at_once_are_capped_over_all_payers(
    settings: Settings, devchain: Chain, deployment: Deployment
) -> None:
    """Anyone can post contract-signed junk naming fresh payers (each under its own payer cap), and
    each reserves supply until its pre-flight fails it: at most MAX_PENDING_WALLET_PAYMENTS are open at
    once, over all payers — beyond, 429 and nothing stored — while an EOA buyer is not held up."""
    from cli.buyer import sign_payment

    token = deployment.token.address
    open_now = query(
        settings,
        "SELECT count(*) AS n FROM payment_queue"
        " WHERE length(signature) <> 132 AND status IN ('pending', 'processing', 'sent')",
    )[0]["n"]
    capped = with_settings(settings, max_pending_wallet_payments=int(open_now) + 3)
    ids = []
    with TestClient(create_app(capped)) as client:
        accept = ask_price(client, token, 1)

        def junk() -> Any:
            auth, _ = wallet_signature(
                accept, Account.create().address, Account.create().key.hex(), deployment.token.price
            )
            header = encode_payment_header(ExactEvmPayment(1, "exact", accept["network"], b"\x01" * 66, auth))
            return client.post(f"/api/mint/{token}", json={"quantity": 1}, headers={"X-PAYMENT": header})

        for _ in range(3):
            reply = junk()
            assert reply.status_code == 202, reply.text
            ids.append(reply.json()["paymentQueueId"])
        refused = junk()
        assert refused.status_code == 429 and refused.json()["reason"] == "too_many_pending_payments"
        assert refused.headers["retry-after"]
        buyer = Account.create()
        own = sign_payment(accept, buyer.key.hex(), chain_id=CHAIN_ID)
        reply = client.post(f"/api/mint/{token}", json={"quantity": 1}, headers={"X-PAYMENT": own})
        assert reply.status_code == 202, reply.text  # an EOA's payment never counts against the cap
        ids.append(reply.json()["paymentQueueId"])
    query(
        settings,
        "UPDATE payment_queue SET status = 'failed', error = 'test cleanup' WHERE id = ANY(%s) RETURNING id",
        ids,
    )
