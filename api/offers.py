"""What a 402 answer offers: the x402 v1 JSON body and the v2 PAYMENT-REQUIRED header, together."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from starlette.responses import JSONResponse

from api.catalog import Token
from shared.config import Settings
from shared.x402 import (
    caip2,
    encode_payment_required,
    extensions,
    payment_required_v2,
    payment_requirements,
    requirement_v2,
    v1_network_name,
)

PAYMENT_REQUIRED = "X-PAYMENT header is required"
#: What a purchase answers (its 202), for discovery (the bazaar extension's output example).
EXAMPLE_ANSWER = {
    "paymentQueueId": "7d5d747b-e160-4e28-8050-4c099d984bcf",
    "quantity": 1,
    "status": "payment_pending",
    "note": "Poll /api/payment/7d5d747b-e160-4e28-8050-4c099d984bcf",
}


@dataclass(frozen=True, slots=True)
class Offer:
    v1: dict[str, Any] | None  # the v1 `accepts` entry; None when v1 is off or the chain has no v1 name
    v2: dict[str, Any] | None  # the v2 PaymentRequired object; None when v2 is off
    v1_network: str | None
    v2_network: str


@lru_cache(maxsize=4096)
def make_offer(settings: Settings, token: Token, quantity: int) -> Offer:
    """What buying `quantity` of `token` costs, in both x402 versions. Made once per (settings, token,
    quantity) — every paid POST needs it — so its dicts are shared: never change them."""
    amount = token.price_per_mint * quantity
    resource = f"{settings.resource_base}/api/mint/{token.address}"
    description = f"Mint {quantity} x {token.symbol} ({token.mint_amount} base units each)"
    v1_network = settings.network or v1_network_name(settings.chain_id)
    bazaar = extensions.bazaar_declaration(max_quantity=settings.max_quantity, example_output=EXAMPLE_ANSWER)
    v1 = None
    if 1 in settings.x402_versions and v1_network:
        v1 = payment_requirements(
            network=v1_network,
            max_amount=amount,
            resource=resource,
            description=description,
            pay_to=token.address,
            asset=token.asset,
            max_timeout_seconds=settings.max_timeout_seconds,
            asset_name=token.asset_name,
            asset_version=token.asset_version,
            output_schema=bazaar["info"],  # v1's place for what the bazaar extension says in v2
        )
    v2 = None
    if 2 in settings.x402_versions:
        accepts = [
            requirement_v2(
                network=caip2(settings.chain_id),
                amount=amount,
                asset=token.asset,
                pay_to=token.address,
                max_timeout_seconds=settings.max_timeout_seconds,
                asset_name=token.asset_name,
                asset_version=token.asset_version,
            )
        ]
        v2 = payment_required_v2(
            accepts=accepts,
            resource_url=resource,
            description=description,
            error="PAYMENT-SIGNATURE header is required",
            extensions={
                extensions.PAYMENT_IDENTIFIER: extensions.payment_identifier_declaration(
                    required=settings.payment_identifier_required
                ),
                extensions.BAZAAR: bazaar,
            },
        )
    return Offer(v1, v2, v1_network, caip2(settings.chain_id))


def payment_required(offer: Offer) -> JSONResponse:
    """402 with both forms: the v1 body (when v1 is offered) and the v2 header."""
    headers = {"PAYMENT-REQUIRED": encode_payment_required(offer.v2)} if offer.v2 else None
    if offer.v1 is not None:
        body: dict[str, Any] = {"x402Version": 1, "error": PAYMENT_REQUIRED, "accepts": [offer.v1]}
    else:
        body = dict(offer.v2 or {})
    return JSONResponse(body, status_code=402, headers=headers)
