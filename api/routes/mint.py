"""POST /api/mint/{tokenAddress}: verify an x402 payment without touching the chain, queue it, 202."""

from __future__ import annotations

import time

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api import idempotency
from api.catalog import Token
from api.errors import PAYMENT_FAILED, Rejection, rejection
from api.offers import Offer, make_offer, payment_required
from api.payment_writer import NewPayment, PaymentWriter
from api.paywall import paywall
from api.purchase import BadRequest, PurchaseRequest, parse_purchase, parse_quantity, recipient_of
from api.verification import verify_exact_payment
from shared import metrics
from shared.x402 import (
    ExactEvmPayment,
    PaymentRejected,
    decode_payment_header,
    decode_payment_signature_header,
    extensions,
)

log = structlog.get_logger()
RETRY_AFTER_SECONDS = 10


def decode(request: Request, offer: Offer) -> ExactEvmPayment | None:
    """The payment in whichever header the client used (v1 X-PAYMENT, v2 PAYMENT-SIGNATURE)."""
    v1, v2 = request.headers.get("x-payment"), request.headers.get("payment-signature")
    if v1 and v2:
        raise PaymentRejected(
            "invalid_payload", "send one payment header: X-PAYMENT (v1) or PAYMENT-SIGNATURE (v2)"
        )
    if v2:
        if offer.v2 is None:
            raise PaymentRejected("invalid_x402_version", "this server does not accept x402 version 2")
        return decode_payment_signature_header(v2)
    if v1:
        if offer.v1 is None:
            raise PaymentRejected(
                "invalid_x402_version",
                f"x402 version 1 is not available here (chain {offer.v2_network} has no v1 network name, "
                "or v1 is switched off); pay with version 2 in the PAYMENT-SIGNATURE header",
            )
        return decode_payment_header(v1)
    return None


def wants_html(request: Request) -> bool:
    """A person's browser, by the ecosystem's convention: it accepts HTML and calls itself Mozilla."""
    return "text/html" in request.headers.get("accept", "") and "Mozilla" in request.headers.get(
        "user-agent", ""
    )


def unpaid(request: Request, token: Token, offer: Offer, quantity: int, max_quantity: int) -> Response:
    """The 402: the paywall page for a browser (it pays with x402 v2, so only where v2 is offered),
    the v1 body and v2 header for anyone else."""
    if wants_html(request) and offer.v2 is not None:
        return paywall(token, offer, quantity, max_quantity)
    return payment_required(offer)


async def offer_page(request: Request) -> Response:
    """GET /api/mint/{tokenAddress}?quantity=n: what a purchase costs — the paywall page for a browser,
    the 402 (v1 body, v2 PAYMENT-REQUIRED header) for anyone else. A GET never pays."""
    s = request.app.state.settings
    token = await request.app.state.catalog.get(request.path_params["token_address"])
    if token is None:
        return rejection(404, "unknown_token", "no token with this address is on sale here")
    if request.headers.get("x-payment") or request.headers.get("payment-signature"):
        return rejection(405, "method_not_allowed", "a payment is sent with POST, not GET")
    try:
        quantity = parse_quantity(request.query_params.get("quantity", "1"), s.max_quantity)
    except BadRequest as exc:
        return rejection(400, exc.reason, exc.message)
    offer = make_offer(s, token, quantity)
    return unpaid(request, token, offer, quantity, s.max_quantity)


async def mint(request: Request) -> Response:
    """A POST, timed for the metrics, and a refusal counted by reason (a 402 — asking the price — is
    not one; a payment is counted accepted where it is queued, so a retry is not counted twice)."""
    started = time.perf_counter()
    answer = await buy(request)
    if answer.status_code != 402:
        outcome = "accepted" if answer.status_code == 202 else "refused"
        metrics.accept_seconds.labels(outcome).observe(time.perf_counter() - started)
    if isinstance(answer, Rejection):
        metrics.payments_refused.labels(answer.reason).inc()
    return answer


async def buy(request: Request) -> Response:
    s = request.app.state.settings
    token = await request.app.state.catalog.get(request.path_params["token_address"])
    if token is None:
        return rejection(404, "unknown_token", "no token with this address is on sale here")
    try:
        purchase = parse_purchase(request.state.body, s.max_quantity)
    except BadRequest as exc:
        return rejection(400, exc.reason, exc.message)
    offer = make_offer(s, token, purchase.quantity)
    try:
        payment = decode(request, offer)
        if payment is None:
            return unpaid(request, token, offer, purchase.quantity, s.max_quantity)
        identifier = (
            extensions.payment_identifier(payment.extensions, required=s.payment_identifier_required)
            if payment.x402_version == 2
            else None
        )
        recipient = recipient_of(purchase, payment.authorization.from_address, payment.authorization.nonce)
        network = offer.v1_network if payment.x402_version == 1 else offer.v2_network
        verify_exact_payment(
            payment,
            network=network or "",
            domain=token.domain,
            pay_to=token.address,
            asset=token.asset,
            amount=token.price_per_mint * purchase.quantity,
            now=int(time.time()),
            settle_margin=s.settle_margin_seconds,
            max_valid_for=s.max_timeout_seconds + s.clock_skew_seconds,
            wallet_factories=s.wallet_factories,
        )
    except PaymentRejected as exc:
        return rejection(400, exc.reason, exc.message, error=PAYMENT_FAILED)
    except BadRequest as exc:
        return rejection(400, exc.reason, exc.message, error=PAYMENT_FAILED)
    if identifier is None:
        return (await queue_payment(request, token.address, token.asset, purchase, payment, recipient))[0]
    return await queue_named(request, token, purchase, payment, recipient, identifier)


async def queue_named(
    request: Request,
    token: Token,
    purchase: PurchaseRequest,
    payment: ExactEvmPayment,
    recipient: str,
    identifier: str,
) -> Response:
    """A payment the payer named (payment-identifier): the name is claimed first, so a retry, or a
    race, with the same name gets the same payment — never a second one."""
    pool, payer = request.app.state.pool, payment.authorization.from_address
    fp = idempotency.fingerprint(token.address, purchase.quantity, recipient, payment)
    claimed, existing = await idempotency.claim(pool, payer, identifier, fp)
    if claimed is idempotency.Claim.SAME:
        assert existing is not None
        return queued(existing, purchase.quantity)  # the answer that payment got
    if claimed is idempotency.Claim.OTHER:
        return rejection(
            409,
            extensions.IDENTIFIER_REUSED,
            "this payment identifier already names another payload of this payer (a retry must "
            "re-send the same signed payment); nothing was stored",
            error=PAYMENT_FAILED,
            paymentQueueId=existing,  # null while that payload's payment is still being written
        )
    if claimed is idempotency.Claim.IN_FLIGHT:
        return rejection(
            409,
            extensions.IDENTIFIER_IN_FLIGHT,
            "a payment with this identifier is being written: post it again in a moment",
            error=PAYMENT_FAILED,
            headers={"Retry-After": "1"},
        )
    queued_id: str | None = None
    try:
        answer, queued_id = await queue_payment(
            request, token.address, token.asset, purchase, payment, recipient
        )
    finally:
        await idempotency.settle(pool, payer, identifier, fp, queued_id)
    return answer


def queued(payment_id: str, quantity: int) -> JSONResponse:
    """The 202 of a queued payment (the same for every post of the same payment)."""
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


async def queue_payment(
    request: Request,
    token: str,
    asset: str,
    purchase: PurchaseRequest,
    payment: ExactEvmPayment,
    recipient: str,
) -> tuple[Response, str | None]:
    """Write the payment (group commit); its answer, and the payment it queued (None if refused)."""
    auth = payment.authorization
    writer: PaymentWriter = request.app.state.payment_writer
    result = await writer.write(
        NewPayment(
            token_address=token,
            asset=asset,
            payer=auth.from_address,
            recipient=recipient,
            quantity=purchase.quantity,
            amount=auth.value,
            nonce="0x" + auth.nonce.hex(),
            valid_after=auth.valid_after,
            valid_before=auth.valid_before,
            signature="0x" + payment.signature.hex(),
            payment_header=request.headers.get("payment-signature") or request.headers.get("x-payment") or "",
        )
    )
    if result.outcome == "sold_out":
        refused = rejection(
            409,
            "sold_out",
            "not enough supply left for this quantity; nothing was charged",
            error=PAYMENT_FAILED,
        )
        return refused, None
    if result.outcome == "too_many_open":
        refused = rejection(
            429,
            "too_many_pending_payments",
            "too many payments are still settling (this payer's, or contract-signed ones over all "
            "payers); post the same payment again later",
            error=PAYMENT_FAILED,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
        return refused, None
    assert result.payment_id is not None or result.outcome == "duplicate"
    if result.outcome == "duplicate" and not (
        result.payment_id is not None
        and await idempotency.same_terms(
            request.app.state.pool,
            result.payment_id,
            token=token,
            quantity=purchase.quantity,
            recipient=recipient,
            payment=payment,
        )
    ):
        refused = rejection(
            409,
            "nonce_already_used",
            "this authorization nonce was already used by another payment",
            error=PAYMENT_FAILED,
            paymentQueueId=result.payment_id,
        )
        return refused, None
    assert result.payment_id is not None  # accepted, or a retry of it: the same answer
    if result.outcome == "accepted":
        metrics.payments_accepted.labels(str(payment.x402_version)).inc()
    log.info(
        "payment_queued" if result.outcome == "accepted" else "payment_retried",
        payment_id=result.payment_id,
        payer=auth.from_address,
        quantity=purchase.quantity,
        token=token,
    )
    return queued(result.payment_id, purchase.quantity), result.payment_id
