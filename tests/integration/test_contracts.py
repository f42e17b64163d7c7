"""Behaviour tests for TestUSDC (EIP-3009) and MintToken against a real anvil node."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError
from web3.logs import DISCARD
from web3.types import TxReceipt

from shared.chain.contracts import load_artifact

pytestmark = pytest.mark.chain

REPO_ROOT = Path(__file__).resolve().parents[2]
ANVIL = REPO_ROOT / "node_modules" / ".bin" / "anvil"

USDC_NAME = "USD Coin"
USDC_VERSION = "2"
ONE_USDC = 10**6
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
FAR_FUTURE = 2**40
EXPLICIT_GAS = 300_000  # lets a reverting tx be mined instead of failing in eth_estimateGas

TWA_FIELDS = [
    {"name": "from", "type": "address"},
    {"name": "to", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "validAfter", "type": "uint256"},
    {"name": "validBefore", "type": "uint256"},
    {"name": "nonce", "type": "bytes32"},
]
CANCEL_FIELDS = [
    {"name": "authorizer", "type": "address"},
    {"name": "nonce", "type": "bytes32"},
]

# Filled by the tests, printed by test_gas_report (run pytest with -s to see it).
GAS: dict[str, int] = {}


# --------------------------------------------------------------------------- chain


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def w3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web3]:
    if not os.access(ANVIL, os.X_OK):
        pytest.fail(f"anvil not found at {ANVIL}; run `npm install`")
    port = _free_port()
    log_path = tmp_path_factory.mktemp("anvil") / "anvil.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(ANVIL), "--port", str(port), "--host", "127.0.0.1", "--silent"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    session = requests.Session()
    try:
        web3 = Web3(HTTPProvider(f"http://127.0.0.1:{port}", session=session))
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"anvil exited with {proc.returncode}: {log_path.read_text(errors='replace')}")
            try:
                if web3.eth.chain_id == 31337:
                    break
            except requests.exceptions.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("anvil did not answer within 30 s")
            time.sleep(0.1)
        yield web3
    finally:
        session.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def accounts(w3: Web3) -> list[str]:
    return list(w3.eth.accounts)


def deploy(w3: Web3, name: str, *args: Any, sender: str) -> Contract:
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor(*args).transact({"from": sender}))
    assert receipt["status"] == 1
    contract = w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi)
    assert isinstance(contract, Contract)
    return contract


def send(w3: Web3, fn: Any, sender: str, **tx: Any) -> TxReceipt:
    receipt = w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender, **tx}))
    return receipt


def events(contract: Contract, event: str, receipt: TxReceipt) -> list[dict[str, Any]]:
    return [dict(e["args"]) for e in contract.events[event]().process_receipt(receipt, errors=DISCARD)]


def error_selector(signature: str) -> str:
    return Web3.to_hex(Web3.keccak(text=signature)[:4])


def custom_error(signature: str, types: list[str], values: list[Any]) -> str:
    return error_selector(signature) + abi_encode(types, values).hex()


def latest_timestamp(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


def set_next_timestamp(w3: Web3, ts: int) -> None:
    w3.provider.make_request("evm_setNextBlockTimestamp", [ts])  # type: ignore[arg-type]


def nonce_bytes(tag: str) -> bytes:
    return Web3.keccak(text=tag)


# --------------------------------------------------------------------------- EIP-3009 signing


def usdc_domain(w3: Web3, usdc: Contract) -> dict[str, Any]:
    return {
        "name": USDC_NAME,
        "version": USDC_VERSION,
        "chainId": w3.eth.chain_id,
        "verifyingContract": usdc.address,
    }


def sign_authorization(
    w3: Web3,
    usdc: Contract,
    signer: LocalAccount,
    *,
    primary_type: str = "TransferWithAuthorization",
    from_: str | None = None,
    to: str,
    value: int,
    valid_after: int = 0,
    valid_before: int = FAR_FUTURE,
    nonce: bytes,
) -> dict[str, Any]:
    """Sign a Transfer/ReceiveWithAuthorization; returns the contract call arguments."""
    message = {
        "from": from_ or signer.address,
        "to": to,
        "value": value,
        "validAfter": valid_after,
        "validBefore": valid_before,
        "nonce": nonce,
    }
    signed = Account.sign_typed_data(signer.key, usdc_domain(w3, usdc), {primary_type: TWA_FIELDS}, message)
    return {
        **message,
        "v": signed.v,
        "r": signed.r.to_bytes(32, "big"),
        "s": signed.s.to_bytes(32, "big"),
    }


def auth_args(auth: dict[str, Any]) -> list[Any]:
    keys = ("from", "to", "value", "validAfter", "validBefore", "nonce", "v", "r", "s")
    return [auth[k] for k in keys]


def sign_cancel(w3: Web3, usdc: Contract, signer: LocalAccount, nonce: bytes) -> list[Any]:
    message = {"authorizer": signer.address, "nonce": nonce}
    signed = Account.sign_typed_data(
        signer.key, usdc_domain(w3, usdc), {"CancelAuthorization": CANCEL_FIELDS}, message
    )
    return [signer.address, nonce, signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")]


@pytest.fixture
def usdc(w3: Web3, accounts: list[str]) -> Contract:
    return deploy(w3, "TestUSDC", USDC_NAME, USDC_VERSION, sender=accounts[0])


@pytest.fixture
def payer(w3: Web3, usdc: Contract, accounts: list[str]) -> LocalAccount:
    """A fresh key (no ETH needed: a relayer submits its authorizations) holding 100 USDC."""
    acct: LocalAccount = Account.create()
    send(w3, usdc.functions.mint(acct.address, 100 * ONE_USDC), accounts[0])
    return acct


# --------------------------------------------------------------------------- TestUSDC


def test_usdc_metadata_and_domain_separator(w3: Web3, usdc: Contract, accounts: list[str]) -> None:
    assert usdc.functions.name().call() == USDC_NAME
    assert usdc.functions.symbol().call() == "USDC"
    assert usdc.functions.decimals().call() == 6
    assert usdc.functions.version().call() == USDC_VERSION
    assert usdc.functions.owner().call() == accounts[0]

    message = {
        "from": accounts[1],
        "to": accounts[2],
        "value": 1,
        "validAfter": 0,
        "validBefore": FAR_FUTURE,
        "nonce": b"\x11" * 32,
    }
    encoded = encode_typed_data(usdc_domain(w3, usdc), {"TransferWithAuthorization": TWA_FIELDS}, message)
    assert bytes(usdc.functions.DOMAIN_SEPARATOR().call()) == encoded.header

    # The contract's typehash constants are the FiatToken ones, and the struct hash
    # eth_account builds matches abi.encode(typehash, fields...).
    twa_typehash = Web3.keccak(
        text="TransferWithAuthorization(address from,address to,uint256 value,"
        "uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    )
    assert usdc.functions.TRANSFER_WITH_AUTHORIZATION_TYPEHASH().call() == twa_typehash
    assert usdc.functions.RECEIVE_WITH_AUTHORIZATION_TYPEHASH().call() == Web3.keccak(
        text="ReceiveWithAuthorization(address from,address to,uint256 value,"
        "uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    )
    assert usdc.functions.CANCEL_AUTHORIZATION_TYPEHASH().call() == Web3.keccak(
        text="CancelAuthorization(address authorizer,bytes32 nonce)"
    )
    struct_hash = Web3.keccak(
        abi_encode(
            ["bytes32", "address", "address", "uint256", "uint256", "uint256", "bytes32"],
            [twa_typehash, *message.values()],
        )
    )
    assert encoded.body == struct_hash

    # ERC-5267 view agrees too.
    fields, name, version, chain_id, verifying_contract, _salt, _ext = usdc.functions.eip712Domain().call()
    assert (name, version, chain_id, verifying_contract) == (
        USDC_NAME,
        USDC_VERSION,
        w3.eth.chain_id,
        usdc.address,
    )
    assert fields == b"\x0f"


def test_usdc_mint_is_owner_only(w3: Web3, usdc: Contract, accounts: list[str]) -> None:
    with pytest.raises(ContractCustomError) as exc:
        send(w3, usdc.functions.mint(accounts[1], 1), accounts[1])
    assert exc.value.data == custom_error("OwnableUnauthorizedAccount(address)", ["address"], [accounts[1]])
    send(w3, usdc.functions.mint(accounts[1], 5 * ONE_USDC), accounts[0])
    assert usdc.functions.balanceOf(accounts[1]).call() == 5 * ONE_USDC


def test_transfer_with_authorization_moves_funds(
    w3: Web3, usdc: Contract, payer: LocalAccount, accounts: list[str]
) -> None:
    payee = Account.create().address
    nonce = nonce_bytes("twa-ok")
    auth = sign_authorization(w3, usdc, payer, to=payee, value=3 * ONE_USDC, nonce=nonce)
    assert usdc.functions.authorizationState(payer.address, nonce).call() is False

    # Any relayer can submit it.
    receipt = send(w3, usdc.functions.transferWithAuthorization(*auth_args(auth)), accounts[5])
    assert receipt["status"] == 1
    GAS["transferWithAuthorization"] = receipt["gasUsed"]

    assert usdc.functions.balanceOf(payer.address).call() == 97 * ONE_USDC
    assert usdc.functions.balanceOf(payee).call() == 3 * ONE_USDC
    assert usdc.functions.authorizationState(payer.address, nonce).call() is True
    assert events(usdc, "AuthorizationUsed", receipt) == [{"authorizer": payer.address, "nonce": nonce}]
    assert events(usdc, "Transfer", receipt) == [{"from": payer.address, "to": payee, "value": 3 * ONE_USDC}]

    # Replay of the very same authorization.
    with pytest.raises(ContractLogicError, match="FiatTokenV2: authorization is used or canceled"):
        send(w3, usdc.functions.transferWithAuthorization(*auth_args(auth)), accounts[5])
    assert usdc.functions.balanceOf(payee).call() == 3 * ONE_USDC


def test_expired_and_not_yet_valid_revert(w3: Web3, usdc: Contract, payer: LocalAccount) -> None:
    now = latest_timestamp(w3)
    payee = Account.create().address

    expired = sign_authorization(
        w3, usdc, payer, to=payee, value=1, valid_before=now, nonce=nonce_bytes("expired")
    )
    with pytest.raises(ContractLogicError, match="FiatTokenV2: authorization is expired"):
        usdc.functions.transferWithAuthorization(*auth_args(expired)).call()

    early = sign_authorization(
        w3, usdc, payer, to=payee, value=1, valid_after=now + 3600, nonce=nonce_bytes("early")
    )
    with pytest.raises(ContractLogicError, match="FiatTokenV2: authorization is not yet valid"):
        usdc.functions.transferWithAuthorization(*auth_args(early)).call()


@pytest.mark.parametrize(
    ("after_offset", "before_offset", "ok"),
    [
        (-1, +1, True),  # validAfter < now < validBefore
        (0, +1, False),  # now == validAfter: strict, not yet valid
        (-1, 0, False),  # now == validBefore: strict, expired
    ],
)
def test_time_window_is_strict(
    w3: Web3,
    usdc: Contract,
    payer: LocalAccount,
    accounts: list[str],
    after_offset: int,
    before_offset: int,
    ok: bool,
) -> None:
    ts = latest_timestamp(w3) + 1000
    nonce = nonce_bytes(f"window{after_offset}{before_offset}")
    auth = sign_authorization(
        w3,
        usdc,
        payer,
        to=accounts[3],
        value=1,
        valid_after=ts + after_offset,
        valid_before=ts + before_offset,
        nonce=nonce,
    )
    set_next_timestamp(w3, ts)
    receipt = send(
        w3, usdc.functions.transferWithAuthorization(*auth_args(auth)), accounts[5], gas=EXPLICIT_GAS
    )
    assert w3.eth.get_block(receipt["blockNumber"])["timestamp"] == ts
    assert receipt["status"] == (1 if ok else 0)
    assert usdc.functions.authorizationState(payer.address, nonce).call() is ok


def test_high_s_signature_reverts(w3: Web3, usdc: Contract, payer: LocalAccount, accounts: list[str]) -> None:
    auth = sign_authorization(w3, usdc, payer, to=accounts[3], value=1, nonce=nonce_bytes("high-s"))
    s = int.from_bytes(auth["s"], "big")
    # The malleable twin (n - s, flipped v) recovers to the same address with plain
    # ecrecover, but must be rejected.
    malleable = {**auth, "s": (SECP256K1_N - s).to_bytes(32, "big"), "v": 55 - auth["v"]}
    with pytest.raises(ContractLogicError, match="FiatTokenV2: invalid signature"):
        send(w3, usdc.functions.transferWithAuthorization(*auth_args(malleable)), accounts[5])
    # A v outside {27, 28} is rejected as well.
    bad_v = {**auth, "v": auth["v"] - 27}
    with pytest.raises(ContractLogicError, match="FiatTokenV2: invalid signature"):
        send(w3, usdc.functions.transferWithAuthorization(*auth_args(bad_v)), accounts[5])
    # The original low-s signature still works.
    assert send(w3, usdc.functions.transferWithAuthorization(*auth_args(auth)), accounts[5])["status"] == 1


def test_wrong_signer_or_tampered_message_reverts(
    w3: Web3, usdc: Contract, payer: LocalAccount, accounts: list[str]
) -> None:
    mallory: LocalAccount = Account.create()
    forged = sign_authorization(
        w3,
        usdc,
        mallory,
        from_=payer.address,
        to=mallory.address,
        value=ONE_USDC,
        nonce=nonce_bytes("forged"),
    )
    with pytest.raises(ContractLogicError, match="FiatTokenV2: invalid signature"):
        send(w3, usdc.functions.transferWithAuthorization(*auth_args(forged)), accounts[5])

    auth = sign_authorization(w3, usdc, payer, to=accounts[3], value=ONE_USDC, nonce=nonce_bytes("tamper"))
    for field, value in (("value", 2 * ONE_USDC), ("to", mallory.address), ("validBefore", FAR_FUTURE + 1)):
        tampered = {**auth, field: value}
        with pytest.raises(ContractLogicError, match="FiatTokenV2: invalid signature"):
            send(w3, usdc.functions.transferWithAuthorization(*auth_args(tampered)), accounts[5])

    # A signature for another token contract (different verifyingContract) is useless here.
    other = deploy(w3, "TestUSDC", USDC_NAME, USDC_VERSION, sender=accounts[0])
    cross = sign_authorization(w3, other, payer, to=accounts[3], value=1, nonce=nonce_bytes("cross"))
    with pytest.raises(ContractLogicError, match="FiatTokenV2: invalid signature"):
        send(w3, usdc.functions.transferWithAuthorization(*auth_args(cross)), accounts[5])
    assert usdc.functions.balanceOf(payer.address).call() == 100 * ONE_USDC


def test_insufficient_balance_reverts(
    w3: Web3, usdc: Contract, payer: LocalAccount, accounts: list[str]
) -> None:
    nonce = nonce_bytes("too-much")
    auth = sign_authorization(w3, usdc, payer, to=accounts[3], value=100 * ONE_USDC + 1, nonce=nonce)
    with pytest.raises(ContractCustomError) as exc:
        send(w3, usdc.functions.transferWithAuthorization(*auth_args(auth)), accounts[5])
    assert exc.value.data == custom_error(
        "ERC20InsufficientBalance(address,uint256,uint256)",
        ["address", "uint256", "uint256"],
        [payer.address, 100 * ONE_USDC, 100 * ONE_USDC + 1],
    )
    # Mined (explicit gas) it fails as a whole: the nonce is not consumed.
    receipt = send(
        w3, usdc.functions.transferWithAuthorization(*auth_args(auth)), accounts[5], gas=EXPLICIT_GAS
    )
    assert receipt["status"] == 0
    assert usdc.functions.authorizationState(payer.address, nonce).call() is False


def test_cancel_authorization(w3: Web3, usdc: Contract, payer: LocalAccount, accounts: list[str]) -> None:
    nonce = nonce_bytes("cancel-me")
    auth = sign_authorization(w3, usdc, payer, to=accounts[3], value=ONE_USDC, nonce=nonce)

    # Only the authorizer's signature can cancel.
    mallory: LocalAccount = Account.create()
    forged = sign_cancel(w3, usdc, mallory, nonce)
    forged[0] = payer.address
    with pytest.raises(ContractLogicError, match="FiatTokenV2: invalid signature"):
        send(w3, usdc.functions.cancelAuthorization(*forged), accounts[5])

    receipt = send(w3, usdc.functions.cancelAuthorization(*sign_cancel(w3, usdc, payer, nonce)), accounts[5])
    assert events(usdc, "AuthorizationCanceled", receipt) == [{"authorizer": payer.address, "nonce": nonce}]
    assert usdc.functions.authorizationState(payer.address, nonce).call() is True

    with pytest.raises(ContractLogicError, match="FiatTokenV2: authorization is used or canceled"):
        send(w3, usdc.functions.transferWithAuthorization(*auth_args(auth)), accounts[5])
    with pytest.raises(ContractLogicError, match="FiatTokenV2: authorization is used or canceled"):
        send(w3, usdc.functions.cancelAuthorization(*sign_cancel(w3, usdc, payer, nonce)), accounts[5])

    # A used authorization cannot be canceled either.
    used_nonce = nonce_bytes("used-then-cancel")
    used = sign_authorization(w3, usdc, payer, to=accounts[3], value=1, nonce=used_nonce)
    send(w3, usdc.functions.transferWithAuthorization(*auth_args(used)), accounts[5])
    with pytest.raises(ContractLogicError, match="FiatTokenV2: authorization is used or canceled"):
        send(w3, usdc.functions.cancelAuthorization(*sign_cancel(w3, usdc, payer, used_nonce)), accounts[5])
    assert usdc.functions.balanceOf(payer.address).call() == 100 * ONE_USDC - 1


def test_receive_with_authorization_requires_payee_caller(
    w3: Web3, usdc: Contract, payer: LocalAccount, accounts: list[str]
) -> None:
    payee = accounts[2]
    nonce = nonce_bytes("receive")
    auth = sign_authorization(
        w3, usdc, payer, primary_type="ReceiveWithAuthorization", to=payee, value=2 * ONE_USDC, nonce=nonce
    )
    with pytest.raises(ContractLogicError, match="FiatTokenV2: caller must be the payee"):
        send(w3, usdc.functions.receiveWithAuthorization(*auth_args(auth)), accounts[5])

    # A TransferWithAuthorization signature is not a ReceiveWithAuthorization one (and vice versa).
    twa = sign_authorization(w3, usdc, payer, to=payee, value=2 * ONE_USDC, nonce=nonce)
    with pytest.raises(ContractLogicError, match="FiatTokenV2: invalid signature"):
        send(w3, usdc.functions.receiveWithAuthorization(*auth_args(twa)), payee)
    with pytest.raises(ContractLogicError, match="FiatTokenV2: invalid signature"):
        send(w3, usdc.functions.transferWithAuthorization(*auth_args(auth)), accounts[5])

    before = usdc.functions.balanceOf(payee).call()
    receipt = send(w3, usdc.functions.receiveWithAuthorization(*auth_args(auth)), payee)
    assert events(usdc, "AuthorizationUsed", receipt) == [{"authorizer": payer.address, "nonce": nonce}]
    assert usdc.functions.balanceOf(payee).call() == before + 2 * ONE_USDC
    with pytest.raises(ContractLogicError, match="FiatTokenV2: authorization is used or canceled"):
        send(w3, usdc.functions.receiveWithAuthorization(*auth_args(auth)), payee)


# --------------------------------------------------------------------------- MintToken

PRICE = ONE_USDC  # 1 USDC per mint unit
MINT_AMOUNT = 1_000 * 10**18
MINTER_ROLE = Web3.keccak(text="MINTER_ROLE")
REFUNDER_ROLE = Web3.keccak(text="REFUNDER_ROLE")
DEFAULT_ADMIN_ROLE = b"\x00" * 32


def deploy_token(w3: Web3, usdc: Contract, admin: str, max_mint_count: int = 5) -> Contract:
    return deploy(
        w3,
        "MintToken",
        "Fresh Token",
        "FRESH",
        usdc.address,
        PRICE,
        MINT_AMOUNT,
        max_mint_count,
        admin,
        sender=admin,
    )


def mint_id(tag: str) -> bytes:
    return Web3.keccak(text=f"mint:{tag}")


def unauthorized(account: str, role: bytes) -> str:
    return custom_error(
        "AccessControlUnauthorizedAccount(address,bytes32)", ["address", "bytes32"], [account, role]
    )


def test_mint_token_configuration(w3: Web3, usdc: Contract, accounts: list[str]) -> None:
    admin = accounts[0]
    token = deploy_token(w3, usdc, admin)
    f = token.functions
    assert (f.name().call(), f.symbol().call(), f.decimals().call()) == ("Fresh Token", "FRESH", 18)
    assert f.paymentToken().call() == usdc.address
    assert f.pricePerMint().call() == PRICE
    assert f.mintAmount().call() == MINT_AMOUNT
    assert f.maxMintCount().call() == 5
    assert f.mintCount().call() == 0
    assert f.remainingSupply().call() == 5
    assert f.totalSupply().call() == 0
    assert f.MINTER_ROLE().call() == MINTER_ROLE
    assert (f.SKIP_ALREADY_MINTED().call(), f.SKIP_SOLD_OUT().call()) == (1, 2)
    assert f.hasRole(DEFAULT_ADMIN_ROLE, admin).call() is True
    assert f.hasRole(MINTER_ROLE, admin).call() is True
    assert f.hasRole(MINTER_ROLE, accounts[1]).call() is False


@pytest.mark.parametrize(
    ("payment_token", "mint_amount", "max_count", "admin_index"),
    [
        ("zero", MINT_AMOUNT, 5, 0),
        ("usdc", 0, 5, 0),
        ("usdc", MINT_AMOUNT, 0, 0),
        ("usdc", MINT_AMOUNT, 5, None),
    ],
)
def test_mint_token_rejects_bad_config(
    w3: Web3,
    usdc: Contract,
    accounts: list[str],
    payment_token: str,
    mint_amount: int,
    max_count: int,
    admin_index: int | None,
) -> None:
    zero = "0x" + "00" * 20
    args = (
        "Bad",
        "BAD",
        usdc.address if payment_token == "usdc" else zero,
        PRICE,
        mint_amount,
        max_count,
        zero if admin_index is None else accounts[admin_index],
    )
    with pytest.raises(ContractCustomError) as exc:
        deploy(w3, "MintToken", *args, sender=accounts[0])
    assert exc.value.data == error_selector("InvalidConfig()")


def test_mint_requires_minter_role_and_is_idempotent(w3: Web3, usdc: Contract, accounts: list[str]) -> None:
    admin, minter, buyer = accounts[0], accounts[1], accounts[2]
    token = deploy_token(w3, usdc, admin)
    mid = mint_id("single")

    with pytest.raises(ContractCustomError) as exc:
        send(w3, token.functions.mint(buyer, mid), minter)
    assert exc.value.data == unauthorized(minter, MINTER_ROLE)
    with pytest.raises(ContractCustomError) as exc:
        send(w3, token.functions.batchMint([buyer], [mid]), minter)
    assert exc.value.data == unauthorized(minter, MINTER_ROLE)

    # Granting the role is admin-only.
    with pytest.raises(ContractCustomError):
        send(w3, token.functions.grantRole(MINTER_ROLE, minter), minter)
    send(w3, token.functions.grantRole(MINTER_ROLE, minter), admin)

    receipt = send(w3, token.functions.mint(buyer, mid), minter)
    GAS["mint"] = receipt["gasUsed"]
    assert events(token, "TokensMinted", receipt) == [{"to": buyer, "amount": MINT_AMOUNT, "mintId": mid}]
    assert token.functions.balanceOf(buyer).call() == MINT_AMOUNT
    assert token.functions.hasMinted(mid).call() is True
    assert token.functions.mintCount().call() == 1
    assert token.functions.remainingSupply().call() == 4

    with pytest.raises(ContractCustomError) as exc:
        send(w3, token.functions.mint(buyer, mid), minter)
    assert exc.value.data == custom_error("AlreadyMinted(bytes32)", ["bytes32"], [mid])
    assert token.functions.balanceOf(buyer).call() == MINT_AMOUNT
    assert token.functions.mintCount().call() == 1

    # A second, different purchase by the same buyer mints again.
    receipt = send(w3, token.functions.mint(buyer, mint_id("single-2")), minter)
    GAS["mint (2nd, warm recipient)"] = receipt["gasUsed"]
    assert token.functions.balanceOf(buyer).call() == 2 * MINT_AMOUNT


def test_mint_sold_out(w3: Web3, usdc: Contract, accounts: list[str]) -> None:
    admin = accounts[0]
    token = deploy_token(w3, usdc, admin, max_mint_count=2)
    send(w3, token.functions.mint(accounts[2], mint_id("a")), admin)
    send(w3, token.functions.mint(accounts[3], mint_id("b")), admin)
    assert token.functions.remainingSupply().call() == 0
    with pytest.raises(ContractCustomError) as exc:
        send(w3, token.functions.mint(accounts[4], mint_id("c")), admin)
    assert exc.value.data == error_selector("SoldOut()")
    assert token.functions.mintCount().call() == 2
    assert token.functions.totalSupply().call() == 2 * MINT_AMOUNT


def test_batch_mint_skips_already_minted(w3: Web3, usdc: Contract, accounts: list[str]) -> None:
    admin = accounts[0]
    token = deploy_token(w3, usdc, admin, max_mint_count=10)
    ids = [mint_id(f"batch-{i}") for i in range(4)]
    recipients = accounts[2:6]
    send(w3, token.functions.mint(recipients[1], ids[1]), admin)

    # ids[1] was minted before; ids[3] appears twice in the batch.
    batch_to = [*recipients, recipients[3]]
    batch_ids = [*ids, ids[3]]
    receipt = send(w3, token.functions.batchMint(batch_to, batch_ids), admin)
    assert receipt["status"] == 1
    assert events(token, "MintSkipped", receipt) == [
        {"mintId": ids[1], "reason": 1},
        {"mintId": ids[3], "reason": 1},
    ]
    assert events(token, "TokensMinted", receipt) == [
        {"to": recipients[i], "amount": MINT_AMOUNT, "mintId": ids[i]} for i in (0, 2, 3)
    ]
    assert [token.functions.balanceOf(r).call() for r in recipients] == [MINT_AMOUNT] * 4
    assert token.functions.mintCount().call() == 4
    assert token.functions.remainingSupply().call() == 6
    assert all(token.functions.hasMinted(i).call() for i in ids)


def test_batch_mint_at_supply_end(w3: Web3, usdc: Contract, accounts: list[str]) -> None:
    admin = accounts[0]
    token = deploy_token(w3, usdc, admin, max_mint_count=5)
    send(w3, token.functions.batchMint(accounts[1:4], [mint_id(f"pre-{i}") for i in range(3)]), admin)
    assert token.functions.remainingSupply().call() == 2

    ids = [mint_id(f"end-{i}") for i in range(4)]
    receipt = send(w3, token.functions.batchMint(accounts[4:8], ids), admin)
    assert events(token, "TokensMinted", receipt) == [
        {"to": accounts[4 + i], "amount": MINT_AMOUNT, "mintId": ids[i]} for i in (0, 1)
    ]
    assert events(token, "MintSkipped", receipt) == [{"mintId": ids[i], "reason": 2} for i in (2, 3)]
    assert token.functions.mintCount().call() == 5
    assert token.functions.remainingSupply().call() == 0
    assert token.functions.totalSupply().call() == 5 * MINT_AMOUNT
    assert [token.functions.hasMinted(i).call() for i in ids] == [True, True, False, False]

    # Fully sold out: everything skipped, nothing reverts; already-minted wins over sold-out.
    receipt = send(
        w3, token.functions.batchMint([accounts[8], accounts[9]], [mint_id("late"), ids[0]]), admin
    )
    assert receipt["status"] == 1
    assert events(token, "MintSkipped", receipt) == [
        {"mintId": mint_id("late"), "reason": 2},
        {"mintId": ids[0], "reason": 1},
    ]
    assert events(token, "TokensMinted", receipt) == []
    assert token.functions.mintCount().call() == 5
    assert token.functions.totalSupply().call() == 5 * MINT_AMOUNT


def test_batch_mint_input_validation(w3: Web3, usdc: Contract, accounts: list[str]) -> None:
    admin = accounts[0]
    token = deploy_token(w3, usdc, admin)
    with pytest.raises(ContractCustomError) as exc:
        send(w3, token.functions.batchMint([accounts[1], accounts[2]], [mint_id("x")]), admin)
    assert exc.value.data == custom_error("LengthMismatch(uint256,uint256)", ["uint256", "uint256"], [2, 1])

    # Empty batch is a no-op.
    assert send(w3, token.functions.batchMint([], []), admin)["status"] == 1

    # A zero recipient is skipped (reason 3) rather than reverting the whole batch.
    zero = "0x" + "00" * 20
    receipt = send(w3, token.functions.batchMint([zero, accounts[1]], [mint_id("z0"), mint_id("z1")]), admin)
    assert events(token, "MintSkipped", receipt) == [{"mintId": mint_id("z0"), "reason": 3}]
    assert token.functions.SKIP_INVALID_RECIPIENT().call() == 3
    assert token.functions.hasMinted(mint_id("z0")).call() is False
    assert token.functions.mintCount().call() == 1


def test_batch_mint_gas(w3: Web3, usdc: Contract, accounts: list[str]) -> None:
    admin = accounts[0]
    token = deploy_token(w3, usdc, admin, max_mint_count=1_000)
    recipients = [Account.create().address for _ in range(10)]
    receipt = send(w3, token.functions.batchMint(recipients, [mint_id(f"gas-{i}") for i in range(10)]), admin)
    assert len(events(token, "TokensMinted", receipt)) == 10
    GAS["batchMint x10 (fresh ids, fresh recipients)"] = receipt["gasUsed"]

    receipt = send(w3, token.functions.mint(Account.create().address, mint_id("gas-single")), admin)
    GAS["mint (after batch, fresh recipient)"] = receipt["gasUsed"]
    # Batching must amortise the per-tx overhead.
    assert GAS["batchMint x10 (fresh ids, fresh recipients)"] < 10 * receipt["gasUsed"]


def test_batch_mint_credits_each_run_of_one_recipient_once(
    w3: Web3, usdc: Contract, accounts: list[str]
) -> None:
    admin = accounts[0]
    token = deploy_token(w3, usdc, admin, max_mint_count=1_000)
    a, b = Account.create().address, Account.create().address
    send(w3, token.functions.batchMint([a], [mint_id("run-done")]), admin)
    to = [a, a, a, b, a, a]
    ids = [mint_id(f"run-{i}") for i in range(5)] + [mint_id("run-done")]  # the last one is minted already
    receipt = send(w3, token.functions.batchMint(to, ids), admin)
    assert [e["mintId"] for e in events(token, "TokensMinted", receipt)] == ids[:5]
    assert events(token, "MintSkipped", receipt) == [{"mintId": mint_id("run-done"), "reason": 1}]
    transfers = [(e["to"], e["value"]) for e in events(token, "Transfer", receipt)]
    assert transfers == [(a, 3 * MINT_AMOUNT), (b, MINT_AMOUNT), (a, MINT_AMOUNT)]  # one per run
    assert token.functions.balanceOf(a).call() == 5 * MINT_AMOUNT
    assert token.functions.balanceOf(b).call() == MINT_AMOUNT
    assert token.functions.totalSupply().call() == 6 * MINT_AMOUNT
    assert token.functions.mintCount().call() == 6

    receipt = send(w3, token.functions.batchMint([b] * 10, [mint_id(f"ten-{i}") for i in range(10)]), admin)
    GAS["batchMint x10 (fresh ids, one recipient)"] = receipt["gasUsed"]


def test_minted_ids_are_a_bitmap_each_id_its_own_bit(w3: Web3, usdc: Contract, accounts: list[str]) -> None:
    admin = accounts[0]
    token = deploy_token(w3, usdc, admin, max_mint_count=1_000)
    buyer = Account.create().address
    purchase = mint_id("purchase")[:31]
    units = [purchase + bytes([i]) for i in range(10)]  # one purchase, as settlement/mint_ids.py numbers it
    receipt = send(w3, token.functions.batchMint([buyer] * 10, units), admin)
    GAS["batchMint x10 (one purchase: one recipient, one id word)"] = receipt["gasUsed"]
    assert [e["mintId"] for e in events(token, "TokensMinted", receipt)] == units
    assert all(token.functions.hasMinted(u).call() for u in units)
    # Neighbours in the same word, and the same low byte in another word, are other ids.
    assert not token.functions.hasMinted(purchase + bytes([10])).call()
    assert not token.functions.hasMinted(purchase + bytes([255])).call()
    assert not token.functions.hasMinted(mint_id("other")[:31] + bytes([0])).call()
    receipt = send(w3, token.functions.batchMint([buyer] * 2, [units[3], purchase + bytes([255])]), admin)
    assert events(token, "MintSkipped", receipt) == [{"mintId": units[3], "reason": 1}]
    assert token.functions.hasMinted(purchase + bytes([255])).call()
    assert token.functions.balanceOf(buyer).call() == 11 * MINT_AMOUNT
    assert token.functions.mintCount().call() == 11
    with pytest.raises(ContractCustomError):
        send(w3, token.functions.mint(buyer, units[0]), admin)  # AlreadyMinted


def test_withdraw_is_admin_only(w3: Web3, usdc: Contract, payer: LocalAccount, accounts: list[str]) -> None:
    admin, treasury = accounts[0], accounts[6]
    token = deploy_token(w3, usdc, admin)

    # The x402 flow: the buyer authorizes a payment to the token contract itself.
    auth = sign_authorization(w3, usdc, payer, to=token.address, value=3 * PRICE, nonce=nonce_bytes("buy"))
    send(w3, usdc.functions.transferWithAuthorization(*auth_args(auth)), accounts[5])
    assert usdc.functions.balanceOf(token.address).call() == 3 * PRICE

    # MINTER_ROLE is not enough; the admin role is required.
    send(w3, token.functions.grantRole(MINTER_ROLE, accounts[1]), admin)
    for caller in (accounts[1], treasury):
        with pytest.raises(ContractCustomError) as exc:
            send(w3, token.functions.withdraw(caller, PRICE), caller)
        assert exc.value.data == unauthorized(caller, DEFAULT_ADMIN_ROLE)

    receipt = send(w3, token.functions.withdraw(treasury, 2 * PRICE), admin)
    assert events(token, "Withdrawn", receipt) == [{"to": treasury, "amount": 2 * PRICE}]
    assert usdc.functions.balanceOf(token.address).call() == PRICE
    assert usdc.functions.balanceOf(treasury).call() == 2 * PRICE

    with pytest.raises(ContractCustomError) as exc:
        send(w3, token.functions.withdraw(treasury, 2 * PRICE), admin)
    assert isinstance(exc.value.data, str)
    assert exc.value.data.startswith(error_selector("ERC20InsufficientBalance(address,uint256,uint256)"))


def test_refund_is_refunder_only_and_once_per_payment(
    w3: Web3, usdc: Contract, payer: LocalAccount, accounts: list[str]
) -> None:
    admin, refunder = accounts[0], accounts[2]
    token = deploy_token(w3, usdc, admin)
    auth = sign_authorization(w3, usdc, payer, to=token.address, value=2 * PRICE, nonce=nonce_bytes("refund"))
    send(w3, usdc.functions.transferWithAuthorization(*auth_args(auth)), accounts[5])
    key = Web3.keccak(text="payment key")

    # Neither the admin nor a minter may refund without REFUNDER_ROLE.
    send(w3, token.functions.grantRole(MINTER_ROLE, accounts[1]), admin)
    for caller in (admin, accounts[1]):
        with pytest.raises(ContractCustomError) as exc:
            send(w3, token.functions.refund(key, payer.address, PRICE), caller)
        assert exc.value.data == unauthorized(caller, REFUNDER_ROLE)

    send(w3, token.functions.grantRole(REFUNDER_ROLE, refunder), admin)
    before = usdc.functions.balanceOf(payer.address).call()
    assert not token.functions.refunded(key).call()
    receipt = send(w3, token.functions.refund(key, payer.address, PRICE), refunder)
    assert events(token, "Refunded", receipt) == [{"paymentKey": key, "to": payer.address, "amount": PRICE}]
    assert token.functions.refunded(key).call()
    assert usdc.functions.balanceOf(payer.address).call() == before + PRICE

    # The same payment key never pays out twice; another key may.
    with pytest.raises(ContractCustomError) as exc:
        send(w3, token.functions.refund(key, payer.address, PRICE), refunder)
    assert exc.value.data == custom_error("AlreadyRefunded(bytes32)", ["bytes32"], [key])
    send(w3, token.functions.refund(Web3.keccak(text="another"), payer.address, PRICE), refunder)
    assert usdc.functions.balanceOf(token.address).call() == 0


def test_gas_report() -> None:
    """Print the gas figures collected above (visible with ``pytest -s``)."""
    for label, gas in sorted(GAS.items()):
        print(f"gas {label}: {gas}")
    if "mint" in GAS:
        assert GAS["mint"] < 150_000
    if "transferWithAuthorization" in GAS:
        assert GAS["transferWithAuthorization"] < 120_000
