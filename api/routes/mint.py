"""POST /api/mint/{tokenAddress}: verify an x402 payment without touching the chain, queue it, 202."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.catalog import Token
from api.errors import PAYMENT_FAILED, rejection
from api.verification import verify_exact_payment
from shared.queries import q
from shared.x402 import PaymentRejected, decode_payment_header, network_name, payment_requirements

MAX_BODY_BYTES = 4096


class BadRequest(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


async def read_quantity(request: Request, max_quantity: int) -> int:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise BadRequest("invalid_body", f"the request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("invalid_body", "the request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise BadRequest("invalid_body", 'the request body must be a JSON object such as {"quantity": 1}')
    quantity = data.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise BadRequest("invalid_quantity", "quantity must be a whole number")
    if not 1 <= quantity <= max_quantity:
        raise BadRequest("invalid_quantity", f"quantity must be between 1 and {max_quantity}")
    return quantity


def requirements(request: Request, token: Token, quantity: int) -> dict[str, Any]:
    s = request.app.state.settings
    return payment_requirements(
        network=s.network or network_name(s.chain_id),
        max_amount=token.price_per_mint * quantity,
        resource=f"{s.resource_base}/api/mint/{token.address}",
        description=f"Mint {quantity} x {token.symbol} ({token.mint_amount} base units each)",
        pay_to=token.address,
        asset=token.asset,
        max_timeout_seconds=s.max_timeout_seconds,
        asset_name=token.asset_name,
        asset_version=token.asset_version,
    )


async def mint(request: Request) -> Response:
    s = request.app.state.settings
    token = await request.app.state.catalog.get(request.path_params["token_address"])
    if token is None:
        return rejection(404, "unknown_token", "no token with this address is on sale here")
    try:
        quantity = await read_quantity(request, s.max_quantity)
    except BadRequest as exc:
        return rejection(400, exc.reason, exc.message)
    accepts = requirements(request, token, quantity)
    header = request.headers.get("x-payment")
    if not header:
        return JSONResponse(
            {"x402Version": 1, "error": "X-PAYMENT header is required", "accepts": [accepts]}, status_code=402
        )
    try:
        payment = decode_payment_header(header)
        verify_exact_payment(
            payment,
            network=accepts["network"],
            domain=token.domain,
            pay_to=token.address,
            amount=token.price_per_mint * quantity,
            now=int(time.time()),
            settle_margin=s.settle_margin_seconds,
        )
    except PaymentRejected as exc:
        return rejection(exc.status, exc.reason, exc.message, error=PAYMENT_FAILED)
    auth = payment.authorization
    params = {
        "token_address": token.address,
        "asset": token.asset,
        "payer": auth.from_address,
        "recipient": auth.from_address,
        "quantity": quantity,
        "amount": auth.value,
        "nonce": "0x" + auth.nonce.hex(),
        "valid_after": auth.valid_after,
        "valid_before": auth.valid_before,
        "signature": "0x" + payment.signature.hex(),
        "payment_header": header,
    }
    async with request.app.state.pool.connection() as conn:
        row = await (await conn.execute(q("insert_payment"), params)).fetchone()
        if row is None:
            existing = await (await conn.execute(q("payment_id_for_authorization"), params)).fetchone()
            existing_id = str(existing["id"]) if existing else None
            return rejection(
                409,
                "nonce_already_used",
                "this authorization nonce was already submitted",
                error=PAYMENT_FAILED,
                paymentQueueId=existing_id,
            )
    payment_id = str(row["id"])
    return JSONResponse(
        {
            "paymentQueueId": payment_id,
            "quantity": quantity,
            "status": "payment_pending",
            "note": f"Poll /api/payment/{payment_id}",
        },
        status_code=202,
        headers={"Location": f"/api/payment/{payment_id}"},
    )
