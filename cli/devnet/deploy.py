"""Deploy TestUSDC and MintToken to a dev chain, fund buyers, and register tokens for sale."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from web3 import Web3

from shared.chain import multicall
from shared.chain.contracts import load_artifact
from shared.db.queries import q


@dataclass(frozen=True)
class UsdcInfo:
    address: str
    name: str
    version: str
    decimals: int


@dataclass(frozen=True)
class TokenInfo:
    address: str
    price: int
    mint_amount: int
    max_mint_count: int


def _send(w3: Web3, fn: Any, sender: str) -> Any:
    tx_hash = fn.transact({"from": Web3.to_checksum_address(sender)})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    if receipt["status"] != 1:
        raise RuntimeError(f"transaction {tx_hash.hex()} reverted")
    return receipt


def _deploy(w3: Web3, name: str, sender: str, *args: Any) -> str:
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = _send(w3, factory.constructor(*args), sender)
    return str(receipt["contractAddress"]).lower()


def deploy_usdc(w3: Web3, deployer: str, name: str = "USD Coin", version: str = "2") -> UsdcInfo:
    return UsdcInfo(_deploy(w3, "TestUSDC", deployer, name, version), name, version, 6)


def deploy_token(
    w3: Web3,
    deployer: str,
    usdc: str,
    *,
    minter: str,
    name: str = "Mint Token",
    symbol: str = "MINT",
    price: int = 1_000_000,
    mint_amount: int = 1000 * 10**18,
    max_mint_count: int = 100_000,
) -> TokenInfo:
    address = _deploy(
        w3,
        "MintToken",
        deployer,
        name,
        symbol,
        Web3.to_checksum_address(usdc),
        price,
        mint_amount,
        max_mint_count,
        Web3.to_checksum_address(deployer),
    )
    token = w3.eth.contract(address=Web3.to_checksum_address(address), abi=load_artifact("MintToken").abi)
    # The mint relayer also sends refunds (refund-sender's keys default to the mint relayer's).
    for role in (token.functions.MINTER_ROLE().call(), token.functions.REFUNDER_ROLE().call()):
        _send(w3, token.functions.grantRole(role, Web3.to_checksum_address(minter)), deployer)
    return TokenInfo(address, price, mint_amount, max_mint_count)


def install_multicall3(w3: Web3) -> str:
    """Put the canonical Multicall3 at its usual address (a dev node's `anvil_setCode`; on Base and
    other public chains it is already there). Idempotent."""
    address = Web3.to_checksum_address(multicall.CANONICAL_ADDRESS)
    code = multicall.runtime_code()
    if bytes(w3.eth.get_code(address)) != code:
        w3.provider.make_request("anvil_setCode", [address, "0x" + code.hex()])  # type: ignore[arg-type]
        if bytes(w3.eth.get_code(address)) != code:
            raise RuntimeError("the dev chain did not take Multicall3's code")
    return multicall.CANONICAL_ADDRESS


def fund(w3: Web3, deployer: str, usdc: str, wallets: list[str], amount: int) -> None:
    contract = w3.eth.contract(address=Web3.to_checksum_address(usdc), abi=load_artifact("TestUSDC").abi)
    for wallet in wallets:
        _send(w3, contract.functions.mint(Web3.to_checksum_address(wallet), amount), deployer)


def read_token(w3: Web3, address: str) -> dict[str, Any]:
    """A token's sale terms, read from its contract and its payment token's."""
    token = w3.eth.contract(address=Web3.to_checksum_address(address), abi=load_artifact("MintToken").abi)
    asset = str(token.functions.paymentToken().call()).lower()
    usdc = w3.eth.contract(address=Web3.to_checksum_address(asset), abi=load_artifact("TestUSDC").abi)
    return {
        "address": address.lower(),
        "chain_id": w3.eth.chain_id,
        "symbol": token.functions.symbol().call(),
        "asset": asset,
        "asset_name": usdc.functions.name().call(),
        "asset_version": usdc.functions.version().call(),
        "asset_decimals": usdc.functions.decimals().call(),
        "price_per_mint": token.functions.pricePerMint().call(),
        "mint_amount": token.functions.mintAmount().call(),
        "max_mint_count": token.functions.maxMintCount().call(),
        "minted_on_chain": token.functions.mintCount().call(),
        "description": "",
    }


def register_token(database_url: str, terms: dict[str, Any]) -> None:
    """Put a token on sale (or refresh its terms); the first time, its free supply starts from
    maxMintCount minus mintCount read on chain."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(q("upsert_token"), terms).fetchone()
        if row is not None and row[0] and terms.get("minted_on_chain"):
            minted = {"address": terms["address"], "minted": terms["minted_on_chain"]}
            conn.execute(q("take_minted_supply"), minted)


def as_json(info: UsdcInfo | TokenInfo) -> dict[str, Any]:
    return asdict(info)
