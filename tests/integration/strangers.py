"""What a stranger with a wallet can put on chain against us, as the tests' attackers do it: submit a
buyer's signed authorization, batch several (through the public Multicall3), use a payer's nonce up
with a 0-value authorization, cancel it, or send USDC to the token directly."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from web3 import Web3

from shared.chain import multicall
from shared.chain.contracts import load_artifact
from shared.settlement.payment_calls import transfer_args
from shared.x402 import decode_payment_header
from shared.x402.eip3009 import Authorization, Eip712Domain, sign_transfer

GWEI = 10**9


@dataclass(frozen=True)
class Signed:
    """An EIP-3009 authorization and its signature, as anyone who saw it can submit it."""

    auth: Authorization
    signature: bytes

    @classmethod
    def from_header(cls, header: str) -> Signed:
        """From a v1 X-PAYMENT header (what a buyer posts, and anyone on the path can read)."""
        payment = decode_payment_header(header)
        return cls(payment.authorization, payment.signature)


class Stranger:
    """A funded account with no role of ours, acting on the dev chain."""

    def __init__(self, w3: Web3, usdc: str, chain_id: int, account: LocalAccount | None = None) -> None:
        self.w3 = w3
        self.chain_id = chain_id
        self.account = account or Account.create()
        self.usdc = w3.eth.contract(address=Web3.to_checksum_address(usdc), abi=load_artifact("TestUSDC").abi)
        self.domain = Eip712Domain("USD Coin", "2", chain_id, usdc.lower())
        w3.provider.make_request("anvil_setBalance", [self.account.address, hex(10**20)])  # type: ignore[arg-type]

    @property
    def address(self) -> str:
        return str(self.account.address)

    # --- what a payer can sign (a stranger asks the payer, or is the payer) -------------------------

    def sign(
        self, payer_key: str, *, to: str, value: int, nonce: bytes, valid_before: int | None = None
    ) -> Signed:
        auth = Authorization(
            from_address=Account.from_key(payer_key).address.lower(),
            to=to.lower(),
            value=value,
            valid_after=0,
            valid_before=valid_before or int(time.time()) + 3600,
            nonce=nonce,
        )
        return Signed(auth, sign_transfer(self.domain, auth, payer_key))

    def zero_value(self, payer_key: str, nonce: bytes) -> Signed:
        """A 0-value authorization from the payer to itself: it uses `nonce` up and moves nothing."""
        payer = Account.from_key(payer_key).address
        return self.sign(payer_key, to=payer, value=0, nonce=nonce)

    # --- what anyone can send --------------------------------------------------------------------------

    def _send(self, to: str, data: bytes | str, *, tip: int = GWEI, gas: int = 1_500_000) -> str:
        tx = {
            "from": self.account.address,
            "to": Web3.to_checksum_address(to),
            "data": data if isinstance(data, str) else Web3.to_hex(data),
            "nonce": self.w3.eth.get_transaction_count(self.account.address, "pending"),
            "gas": gas,
            "maxPriorityFeePerGas": tip,
            "maxFeePerGas": 1000 * GWEI,
            "chainId": self.chain_id,
            "type": 2,
            "value": 0,
        }
        signed = self.account.sign_transaction(tx)
        return "0x" + bytes(self.w3.eth.send_raw_transaction(signed.raw_transaction)).hex()

    def _calldata(self, s: Signed) -> bytes:
        a = s.auth
        args = transfer_args(
            a.from_address, a.to, a.value, a.valid_after, a.valid_before, a.nonce, s.signature
        )
        return bytes.fromhex(str(self.usdc.encode_abi("transferWithAuthorization", args=args))[2:])

    def submit(self, s: Signed, *, tip: int = GWEI) -> str:
        """Execute one authorization, alone."""
        return self._send(self.usdc.address, self._calldata(s), tip=tip)

    def batch(self, signed: list[Signed], *, tip: int = GWEI) -> str:
        """Execute several in one transaction through the public Multicall3 (each may fail alone)."""
        data = multicall.encode_aggregate3([(self.usdc.address, self._calldata(s)) for s in signed])
        return self._send(multicall.CANONICAL_ADDRESS, data, tip=tip)

    def cancel(self, payer_key: str, nonce: bytes) -> str:
        """The payer's signed cancelAuthorization, submitted."""
        payer = Account.from_key(payer_key)
        typed = encode_typed_data(
            full_message={
                "types": {
                    "EIP712Domain": [
                        {"name": "name", "type": "string"},
                        {"name": "version", "type": "string"},
                        {"name": "chainId", "type": "uint256"},
                        {"name": "verifyingContract", "type": "address"},
                    ],
                    "CancelAuthorization": [
                        {"name": "authorizer", "type": "address"},
                        {"name": "nonce", "type": "bytes32"},
                    ],
                },
                "primaryType": "CancelAuthorization",
                "domain": {
                    "name": "USD Coin",
                    "version": "2",
                    "chainId": self.chain_id,
                    "verifyingContract": self.usdc.address,
                },
                "message": {"authorizer": payer.address, "nonce": nonce},
            }
        )
        sig = payer.sign_message(typed)
        data = self.usdc.encode_abi(
            "cancelAuthorization",
            args=[payer.address, nonce, sig.v, sig.r.to_bytes(32, "big"), sig.s.to_bytes(32, "big")],
        )
        return self._send(self.usdc.address, data)

    def pay_directly(self, owner: LocalAccount, to: str, amount: int) -> str:
        """A plain USDC transfer to `to` (e.g. the token) from `owner`: money without a payment."""
        self.w3.provider.make_request("anvil_setBalance", [owner.address, hex(10**20)])  # type: ignore[arg-type]
        tx = self.usdc.functions.transfer(Web3.to_checksum_address(to), amount).build_transaction(
            {
                "from": owner.address,
                "nonce": self.w3.eth.get_transaction_count(owner.address, "pending"),
                "gas": 100_000,
                "maxPriorityFeePerGas": GWEI,
                "maxFeePerGas": 1000 * GWEI,
                "chainId": self.chain_id,
            }
        )
        return (
            "0x" + bytes(self.w3.eth.send_raw_transaction(owner.sign_transaction(tx).raw_transaction)).hex()
        )

    def receipt(self, tx_hash: str) -> Any:
        return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)  # type: ignore[arg-type]
