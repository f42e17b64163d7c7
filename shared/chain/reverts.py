"""Plain words for why a call reverts, from web3's exception (string reasons and known custom errors)."""

from __future__ import annotations

from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError
from eth_hash.auto import keccak
from web3.exceptions import ContractCustomError, ContractLogicError

_CUSTOM_ERRORS = (
    "ERC20InsufficientBalance(address,uint256,uint256)",
    "ERC20InvalidSender(address)",
    "ERC20InvalidReceiver(address)",
    "AccessControlUnauthorizedAccount(address,bytes32)",
    "AlreadyMinted(bytes32)",
    "SoldOut()",
    "AlreadyRefunded(bytes32)",
)
_SELECTORS = {"0x" + keccak(sig.encode())[:4].hex(): sig.split("(")[0] for sig in _CUSTOM_ERRORS}

# Reasons that mean the authorization itself can never move the money (as opposed to a passing fault).
AUTHORIZATION_USED = "authorization is used or canceled"
EXPIRED = "authorization is expired"  # it can never move the money any more
_ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)


def revert_reason(exc: ContractLogicError) -> str:
    """`insufficient_balance`-style words for a revert: the Solidity reason or the custom error's name."""
    data = exc.data if isinstance(exc.data, str) else ""
    if isinstance(exc, ContractCustomError) or (data.startswith("0x") and len(data) >= 10):
        name = _SELECTORS.get(data[:10])
        if name:
            return name
    message = str(exc.message or exc)
    return message.removeprefix("execution reverted: ").strip() or "reverted"


def reason_from_return_data(data: bytes) -> str:
    """The same words for a failed call inside a multicall, from the call's raw return data."""
    if data[:4] == _ERROR_STRING:
        try:
            (message,) = decode(["string"], data[4:])
        except (DecodingError, UnicodeDecodeError, ValueError):
            return "reverted"
        return str(message).strip() or "reverted"
    return _SELECTORS.get("0x" + data[:4].hex(), "reverted") if len(data) >= 4 else "reverted"
