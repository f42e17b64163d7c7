"""GET /.well-known/x402: the resources on sale here, for x402 discovery — one item per token, in the
shape of the x402 discovery list (spec v2 §8: `x402Version`, `items[]` of `{resource, type,
x402Version, accepts, lastUpdated, metadata}`, `pagination`). Each item's `accepts` are what a
purchase of one unit pays; the purchase body and answer are described by the `bazaar` extension of
every 402."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.offers import EXAMPLE_ANSWER, make_offer


async def well_known_x402(request: Request) -> Response:
    s = request.app.state.settings
    items = []
    for token in await request.app.state.catalog.all():
        offer = make_offer(s, token, 1)
        if offer.v2 is None:
            continue
        items.append(
            {
                "resource": offer.v2["resource"]["url"],
                "type": "http",
                "x402Version": 2,
                "accepts": offer.v2["accepts"],
                "lastUpdated": int(time.time()),
                "metadata": {
                    "description": token.description or f"Mint {token.symbol}",
                    "symbol": token.symbol,
                    "pricePerMint": str(token.price_per_mint),
                    "mintAmount": str(token.mint_amount),
                    "maxQuantity": s.max_quantity,
                    "input": {"method": "POST", "bodyType": "json", "body": {"quantity": 1}},
                    "output": {"example": EXAMPLE_ANSWER},
                },
            }
        )
    return JSONResponse(
        {
            "x402Version": 2,
            "items": items,
            "pagination": {"limit": len(items), "offset": 0, "total": len(items)},
        }
    )
