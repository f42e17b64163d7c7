"""A minimal x402 v1 buyer: turn a 402 `accepts` entry into a signed X-PAYMENT header.

Used by `x402-mint demo`, the benchmarks and the tests; real buyers use their own wallets or SDKs.
"""

from __future__ import annotations

import os
import time
from typing import Any

from eth_account import Account

from shared.eip3009 import Authorization, Eip712Domain, sign_transfer
from shared.x402 import ExactEvmPayment, encode_payment_header


def sign_payment(
    accept: dict[str, Any],
    private_key: str,
    *,
    chain_id: int,
    nonce: bytes | None = None,
    valid_after: int | None = None,
    valid_before: int | None = None,
    value: int | None = None,
    network: str | None = None,
) -> str:
    """Sign an EIP-3009 authorization paying exactly what `accept` asks; return the header value."""
    now = int(time.time())
    payer = Account.from_key(private_key).address.lower()
    auth = Authorization(
        from_address=payer,
        to=accept["payTo"].lower(),
        value=int(accept["maxAmountRequired"]) if value is None else value,
        valid_after=now - 600 if valid_after is None else valid_after,
        valid_before=now + int(accept["maxTimeoutSeconds"]) if valid_before is None else valid_before,
        nonce=os.urandom(32) if nonce is None else nonce,
    )
    domain = Eip712Domain(accept["extra"]["name"], accept["extra"]["version"], chain_id, accept["asset"])
    signature = sign_transfer(domain, auth, private_key)
    payment = ExactEvmPayment(1, "exact", network or accept["network"], signature, auth)
    return encode_payment_header(payment)
