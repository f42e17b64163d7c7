"""The paywall: a person's browser asking for a purchase gets a page instead of the JSON 402 (the x402
ecosystem's convention). The page shows the token, price and quantity, connects the visitor's
injected EIP-1193 wallet, has it sign the EIP-3009 authorization (eth_signTypedData_v4), posts the
x402 v2 payment, and follows the payment until its tokens are on chain (api/paywall.html)."""

from __future__ import annotations

import html
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from starlette.responses import HTMLResponse

from api.catalog import Token
from api.offers import Offer
from shared.x402 import encode_payment_required

TEMPLATE = Path(__file__).with_name("paywall.html")


_PLACEHOLDER = re.compile(r"__(SYMBOL|CONFIG)__")


def _script_json(value: object) -> str:
    """JSON safe inside a <script> element: no '<', '>' or '&' can end it or open a comment."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@cache
def _template() -> str:
    return TEMPLATE.read_text(encoding="utf-8")


def paywall(token: Token, offer: Offer, quantity: int, max_quantity: int) -> HTMLResponse:
    """402 with the page (and the PAYMENT-REQUIRED header, as for any client)."""
    assert offer.v2 is not None, "the paywall pays with x402 version 2"
    accepts: list[dict[str, Any]] = offer.v2["accepts"]
    config = {
        "symbol": token.symbol,
        "token": token.address,
        "payTo": token.address,
        "asset": token.asset,
        "assetName": token.asset_name,
        "assetVersion": token.asset_version,
        "assetDecimals": token.asset_decimals,
        "chainId": token.chain_id,
        "pricePerMint": str(token.price_per_mint),
        "mintAmountDisplay": f"{token.mint_amount / 10**18:g}",
        "quantity": quantity,
        "maxQuantity": max_quantity,
        "maxTimeoutSeconds": accepts[0]["maxTimeoutSeconds"],
        "requirement": accepts[0],
        "resource": offer.v2["resource"],
        "mintUrl": f"/api/mint/{token.address}",
        "statusUrl": "/api/payment/",
    }
    values = {"SYMBOL": html.escape(token.symbol), "CONFIG": _script_json(config)}
    page = _PLACEHOLDER.sub(lambda m: values[m.group(1)], _template())  # one pass: no value is read twice
    headers = {"PAYMENT-REQUIRED": encode_payment_required(offer.v2), "Cache-Control": "no-store"}
    return HTMLResponse(page, status_code=402, headers=headers)
