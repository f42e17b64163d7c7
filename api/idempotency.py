"""Retries are harmless: a client that does not know whether its payment arrived posts it again and
gets the same answer — the 202 of the same payment — never a second payment.

- The same authorization again (a byte-identical header, or the same (asset, payer, nonce) with the
  same signed terms, token, quantity and recipient): the payment that holds it. Anything else that
  reuses the nonce stays 409 nonce_already_used.
- x402 v2 `payment-identifier`: the same id with the same payload → that payment's answer; the same id
  with another payload → 409 payment_identifier_reused. Stored in PostgreSQL (0013), so any API process
  answers alike.
"""

from __future__ import annotations

import hashlib
from typing import Any

from psycopg_pool import AsyncConnectionPool

from shared.db.queries import q
from shared.x402 import ExactEvmPayment


def fingerprint(token: str, quantity: int, recipient: str, payment: ExactEvmPayment) -> bytes:
    """What was paid, and for what: equal for a retry of the same payment, different otherwise."""
    a = payment.authorization
    text = "|".join(
        (
            token,
            str(quantity),
            recipient,
            a.from_address,
            a.to,
            str(a.value),
            str(a.valid_after),
            str(a.valid_before),
            a.nonce.hex(),
            payment.signature.hex(),
        )
    )
    return hashlib.sha256(text.encode()).digest()


async def named(pool: AsyncConnectionPool[Any], identifier: str) -> tuple[str, bytes] | None:
    """(payment id, fingerprint) of the payment `identifier` names, if any."""
    async with pool.connection() as conn:
        row = await (await conn.execute(q("payment_by_identifier"), {"id": identifier})).fetchone()
    return None if row is None else (str(row["payment_id"]), bytes(row["fingerprint"]))


async def remember(pool: AsyncConnectionPool[Any], identifier: str, payment_id: str, fp: bytes) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            q("remember_identifier"), {"id": identifier, "payment_id": payment_id, "fingerprint": fp}
        )


async def same_terms(
    pool: AsyncConnectionPool[Any],
    payment_id: str,
    *,
    token: str,
    quantity: int,
    recipient: str,
    payment: ExactEvmPayment,
) -> bool:
    """Does the payment that holds this authorization hold it for these very terms?"""
    async with pool.connection() as conn:
        row = await (await conn.execute(q("payment_terms_by_id"), {"id": payment_id})).fetchone()
    a = payment.authorization
    return row is not None and (
        row["token_address"] == token
        and row["quantity"] == quantity
        and row["recipient"] == recipient
        and int(row["amount"]) == a.value
        and int(row["valid_after"]) == a.valid_after
        and int(row["valid_before"]) == a.valid_before
    )
