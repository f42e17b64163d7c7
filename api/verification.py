"""Payment policy: does a decoded x402 ``exact`` payment pay exactly what we ask? Pure, no I/O.

Balance, nonce state and the token's actual domain are the chain's business (settlement); this
decides only what can be decided from the payment, our requirements and the clock.
"""

from __future__ import annotations

from shared.eip3009 import Eip712Domain, SignatureError, recover_signer, transfer_digest
from shared.x402 import (
    INVALID_NETWORK,
    INVALID_RECIPIENT,
    INVALID_SIGNATURE,
    INVALID_VALID_AFTER,
    INVALID_VALID_BEFORE,
    INVALID_VALUE,
    INVALID_X402_VERSION,
    SCHEME_EXACT,
    UNSUPPORTED_SCHEME,
    X402_VERSION,
    ExactEvmPayment,
    PaymentRejected,
)

__all__ = ["verify_exact_payment"]

_PAYMENT_FAILED = 400  # our API contract: every failed payment check is a 400 with its reason


def _reject(reason: str, message: str) -> PaymentRejected:
    return PaymentRejected(reason, message, _PAYMENT_FAILED)


def verify_exact_payment(
    payment: ExactEvmPayment,
    *,
    network: str,
    domain: Eip712Domain,
    pay_to: str,
    amount: int,
    now: int,
    settle_margin: int,
) -> None:
    """Raise PaymentRejected (status 400) unless ``payment`` is a valid authorization for our terms.

    The cheap field checks run first and the signature (about 50 µs of EC recovery) last; each
    failure has its own reason, so the order only decides which of several defects is reported.
    ``validBefore`` must leave ``settle_margin`` seconds to get the transfer mined.
    """
    auth = payment.authorization
    if payment.x402_version != X402_VERSION:
        raise _reject(
            INVALID_X402_VERSION, f"x402Version {payment.x402_version} is not supported; expected 1"
        )
    if payment.scheme != SCHEME_EXACT:
        raise _reject(UNSUPPORTED_SCHEME, f"scheme {payment.scheme!r} is not supported; expected 'exact'")
    if payment.network != network:
        raise _reject(INVALID_NETWORK, f"network {payment.network!r} is not accepted; expected {network!r}")
    if auth.to != pay_to.lower():
        raise _reject(INVALID_RECIPIENT, f"authorization pays {auth.to}, but payTo is {pay_to.lower()}")
    if auth.value != amount:
        raise _reject(
            INVALID_VALUE, f"authorization value is {auth.value}, but the price is exactly {amount}"
        )
    if auth.valid_after > now:
        raise _reject(
            INVALID_VALID_AFTER,
            f"authorization is not valid yet: validAfter {auth.valid_after} is {auth.valid_after - now}s"
            " in the future",
        )
    if auth.valid_before < now + settle_margin:
        if auth.valid_before <= now:
            problem = f"expired {now - auth.valid_before}s ago"
        else:
            problem = (
                f"expires in {auth.valid_before - now}s, less than the {settle_margin}s needed to settle"
            )
        raise _reject(INVALID_VALID_BEFORE, f"authorization {problem} (validBefore {auth.valid_before})")
    try:
        signer = recover_signer(transfer_digest(domain, auth), payment.signature)
    except SignatureError as exc:
        raise _reject(exc.reason, exc.message) from None
    if signer != auth.from_address:
        raise _reject(
            INVALID_SIGNATURE,
            f"signature recovers to {signer}, not authorization.from {auth.from_address}: it was made by"
            f" another key or over another EIP-712 domain (expected name {domain.name!r}, version"
            f" {domain.version!r}, chainId {domain.chain_id}, verifyingContract"
            f" {domain.verifying_contract.lower()})",
        )
