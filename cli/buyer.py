"""A minimal x402 buyer: turn a 402 answer into a signed payment header, v1 or v2.

Used by `x402-mint demo`, the benchmarks and the tests; real buyers use their own wallets or SDKs.
"""

from __future__ import annotations

import os
import time
from typing import Any

from eth_account import Account

from shared.x402 import (
    V1_NETWORKS,
    ExactEvmPayment,
    decode_payment_required,
    encode_payment_header,
    encode_payment_signature_header,
)
from shared.x402.eip3009 import Authorization, Eip712Domain, sign_transfer
from shared.x402.recipients import bound_nonce


def _chain_id(network: str) -> int:
    if network.startswith("eip155:"):
        return int(network.split(":", 1)[1])
    return next(chain_id for chain_id, name in V1_NETWORKS.items() if name == network)


def _sign(
    accept: dict[str, Any],
    amount: int,
    private_key: str,
    chain_id: int,
    *,
    nonce: bytes | None = None,
    valid_after: int | None = None,
    valid_before: int | None = None,
    value: int | None = None,
    recipient: str | None = None,
    salt: bytes | None = None,
) -> tuple[Authorization, bytes]:
    now = int(time.time())
    if recipient is not None:
        nonce = bound_nonce(recipient, salt or os.urandom(32))
    auth = Authorization(
        from_address=Account.from_key(private_key).address.lower(),
        to=accept["payTo"].lower(),
        value=amount if value is None else value,
        valid_after=now - 600 if valid_after is None else valid_after,
        valid_before=now + int(accept["maxTimeoutSeconds"]) if valid_before is None else valid_before,
        nonce=os.urandom(32) if nonce is None else nonce,
    )
    domain = Eip712Domain(accept["extra"]["name"], accept["extra"]["version"], chain_id, accept["asset"])
    return auth, sign_transfer(domain, auth, private_key)


def sign_payment(
    accept: dict[str, Any],
    private_key: str,
    *,
    chain_id: int | None = None,
    network: str | None = None,
    **options: Any,
) -> str:
    """v1: sign what the `accepts` entry asks; return the X-PAYMENT header value. `options` override
    what is signed (nonce, valid_after, valid_before, value) or bind a recipient (recipient, salt)."""
    chain = chain_id if chain_id is not None else _chain_id(accept["network"])
    auth, signature = _sign(accept, int(accept["maxAmountRequired"]), private_key, chain, **options)
    return encode_payment_header(ExactEvmPayment(1, "exact", network or accept["network"], signature, auth))


def sign_payment_v2(
    payment_required: str | dict[str, Any],
    private_key: str,
    *,
    index: int = 0,
    chain_id: int | None = None,
    accepted: dict[str, Any] | None = None,
    **options: Any,
) -> str:
    """v2: sign the `accepts[index]` of a PAYMENT-REQUIRED header (or its decoded object); return the
    PAYMENT-SIGNATURE header value. `accepted` overrides what is echoed back (for hostile tests);
    `options` as for sign_payment."""
    required = (
        decode_payment_required(payment_required) if isinstance(payment_required, str) else payment_required
    )
    accept = required["accepts"][index]
    chain = chain_id if chain_id is not None else _chain_id(accept["network"])
    auth, signature = _sign(accept, int(accept["amount"]), private_key, chain, **options)
    echoed = accepted if accepted is not None else accept
    payment = ExactEvmPayment(
        2,
        echoed.get("scheme", "exact"),
        echoed.get("network", ""),
        signature,
        auth,
        accepted=echoed,
        resource=required.get("resource"),
    )
    return encode_payment_signature_header(payment)


def answer_402(headers: Any, body: dict[str, Any], private_key: str) -> tuple[str, str, dict[str, Any]]:
    """Answer a 402 as an x402 wallet would: v2 when it carries PAYMENT-REQUIRED, else v1.
    Returns (header name, header value, the accepted requirement)."""
    required = headers.get("payment-required")
    if required:
        decoded = decode_payment_required(required)
        return "PAYMENT-SIGNATURE", sign_payment_v2(decoded, private_key), decoded["accepts"][0]
    accept = body["accepts"][0]
    return "X-PAYMENT", sign_payment(accept, private_key), accept
