"""Retries are harmless: a client that does not know whether its payment arrived posts it again and
gets the same answer — the 202 of the same payment — never a second payment.

- The same authorization again (a byte-identical header, or the same (asset, payer, nonce) with the
  same signed terms and signature, token, quantity and recipient): the payment that holds it. Anything
  else that reuses the nonce stays 409 nonce_already_used.
- x402 v2 `payment-identifier`, the payer's own name for its payment (0013): the same id with the same
  payload → that payment's answer; the same id with another payload (a new signature is another
  payload: a retry re-sends the signed payment, as x402's reference servers expect) → 409
  payment_identifier_reused, naming the payer's payment that holds the id, so a client whose 202 was
  lost still finds what it paid.
  The id is claimed before the payment is written and given back if it is refused, so two posts racing
  with one id never make two payments. Kept in PostgreSQL: any API process answers alike.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any

from psycopg_pool import AsyncConnectionPool

from shared.db.queries import q
from shared.x402 import ExactEvmPayment


def fingerprint(token: str, quantity: int, recipient: str, payment: ExactEvmPayment) -> bytes:
    """What was paid, and for what: equal for a retry of the same payment, different otherwise."""
    a = payment.authorization
    fields = (
        a.from_address,
        a.to,
        a.value,
        a.valid_after,
        a.valid_before,
        a.nonce.hex(),
        payment.signature.hex(),
    )
    return hashlib.sha256("|".join(map(str, (token, quantity, recipient, *fields))).encode()).digest()


class Claim(StrEnum):
    OURS = "ours"  # claimed for this payload: write the payment, then name it (or release the id)
    SAME = "same"  # this payload's payment exists already: its answer
    IN_FLIGHT = "in_flight"  # this payload's payment is being written by another request: retry soon
    OTHER = "other"  # the id names another payload of this payer


async def claim(
    pool: AsyncConnectionPool[Any], payer: str, identifier: str, fp: bytes
) -> tuple[Claim, str | None]:
    """Claim `identifier` for this payload; (what it is, the payment it names if SAME or OTHER)."""
    key = {"payer": payer, "id": identifier, "fingerprint": fp}
    async with pool.connection() as conn:
        if await (await conn.execute(q("claim_identifier"), key)).fetchone():
            return Claim.OURS, None
        row = await (await conn.execute(q("identifier"), key)).fetchone()
    if row is None:  # released between the two statements: the other request was refused
        return Claim.IN_FLIGHT, None
    if bytes(row["fingerprint"]) != fp:  # the payer's own payment, under its own name: say which
        return Claim.OTHER, None if row["payment_id"] is None else str(row["payment_id"])
    if row["payment_id"] is None:
        return Claim.IN_FLIGHT, None
    return Claim.SAME, str(row["payment_id"])


async def settle(
    pool: AsyncConnectionPool[Any], payer: str, identifier: str, fp: bytes, payment_id: str | None
) -> None:
    """After the write: the id names the payment, or — refused, nothing stored — is free again."""
    key = {"payer": payer, "id": identifier, "fingerprint": fp, "payment_id": payment_id}
    async with pool.connection() as conn:
        await conn.execute(q("name_payment" if payment_id is not None else "release_identifier"), key)


async def same_terms(
    pool: AsyncConnectionPool[Any],
    payment_id: str,
    *,
    token: str,
    quantity: int,
    recipient: str,
    payment: ExactEvmPayment,
) -> bool:
    """Does the payment that holds this authorization hold it for these very terms and signature?"""
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
        and row["signature"] == "0x" + payment.signature.hex()
    )
