"""GET /api/payment/{id}: where a payment and its mints stand, and its settlement header."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.errors import rejection
from api.settlement import settlement_header
from shared.db.queries import q
from shared.x402 import caip2, v1_network_name


async def payment_status(request: Request) -> Response:
    try:
        payment_id = uuid.UUID(request.path_params["payment_id"])
    except ValueError:
        return rejection(
            400, "invalid_payment_id", "a payment id is a UUID such as the one a 202 answer gave"
        )
    async with request.app.state.pool.connection() as conn:
        row = await (await conn.execute(q("payment_by_id"), {"id": payment_id})).fetchone()
        if row is None:  # finished long ago and archived: still answerable
            row = await (await conn.execute(q("archived_payment_by_id"), {"id": payment_id})).fetchone()
    if row is None:
        return rejection(404, "unknown_payment", "no payment has this id")
    mints = [
        {"id": str(m["id"]), "mintId": m["mintId"], "status": m["status"], "tx_hash": m["tx_hash"]}
        for m in row["mints"]
    ]
    s = request.app.state.settings
    settled = settlement_header(
        row, v1_network=s.network or v1_network_name(s.chain_id), v2_network=caip2(s.chain_id)
    )
    return JSONResponse(
        {
            "paymentQueueId": str(row["id"]),
            "status": row["status"],
            "tx_hash": row["tx_hash"],
            "payer": row["payer"],
            "recipient": row["recipient"],
            "token": row["token_address"],
            "quantity": row["quantity"],
            "amount": str(row["amount"]),
            "error": row["error"],
            "refund": row["refund"],
            "result": {"queueIds": [m["id"] for m in mints], "quantity": row["quantity"], "mints": mints},
        },
        headers=dict([settled]) if settled else None,
    )
