"""GET /api/tokens/{address}: price, asset and supply of a token on sale."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.errors import rejection
from shared.db.queries import q


async def token_info(request: Request) -> Response:
    token = await request.app.state.catalog.get(request.path_params["token_address"])
    if token is None:
        return rejection(404, "unknown_token", "no token with this address is on sale here")
    async with request.app.state.pool.connection() as conn:
        supply = await (await conn.execute(q("token_supply"), {"address": token.address})).fetchone()
    minted = int(supply["minted"])
    return JSONResponse(
        {
            "address": token.address,
            "symbol": token.symbol,
            "chainId": token.chain_id,
            "asset": {
                "address": token.asset,
                "name": token.asset_name,
                "version": token.asset_version,
                "decimals": token.asset_decimals,
            },
            "price": str(token.price_per_mint),
            "mintAmount": str(token.mint_amount),
            "maxMintCount": token.max_mint_count,
            "minted": minted,
            "remaining": token.max_mint_count - minted,
            "reserved": int(supply["reserved"]),
            "available": token.max_mint_count - int(supply["reserved"]),
        }
    )
