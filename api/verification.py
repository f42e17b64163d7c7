"""Payment policy: does a decoded x402 ``exact`` payment pay exactly what we ask? Pure, no I/O.

Balance, nonce state and the token's actual domain are the chain's business (settlement); this
decides only what can be decided from the payment, our requirements and the clock. Reason codes
are the reference facilitator's (see shared.x402.errors).
"""

from __future__ import annotations

from shared.x402 import (
    INVALID_PAYLOAD,
    INVALID_PAYMENT_REQUIREMENTS,
    INVALID_RECIPIENT,
    INVALID_SIGNATURE,
    INVALID_VALID_AFTER,
    INVALID_VALID_BEFORE,
    INVALID_X402_VERSION,
    NETWORK_MISMATCH,
    SCHEME_EXACT,
    UNSUPPORTED_SCHEME,
    VALUE_MISMATCH,
    ExactEvmPayment,
    PaymentRejected,
    accepted_terms,
    wallets,
)
from shared.x402.eip3009 import Eip712Domain, SignatureError, recover_signer, transfer_digest
from shared.x402.wallets import Signer

__all__ = ["verify_exact_payment"]

UNDEPLOYED_SMART_WALLET = "invalid_exact_evm_payload_undeployed_smart_wallet"  # the reference's code
_PAYMENT_FAILED = 400  # our API contract: every failed payment check is a 400 with its reason


def _reject(reason: str, message: str) -> PaymentRejected:
    return PaymentRejected(reason, message, _PAYMENT_FAILED)


def _check_accepted(payment: ExactEvmPayment, *, network: str, asset: str, pay_to: str, amount: int) -> None:
    """v2: the echoed ``accepted`` must name our scheme, network, asset, payee and price.

    ``maxTimeoutSeconds`` and ``extra`` are not compared: the validity window is judged on the
    signed authorization itself, and a client that used another EIP-712 name or version signed
    over another domain, which the signature check reports.
    """
    if payment.accepted is None:
        raise _reject(INVALID_PAYLOAD, "an x402 version 2 payment must echo the requirements it accepted")
    try:
        terms = accepted_terms(payment.accepted)
    except PaymentRejected as exc:
        raise _reject(exc.reason, exc.message) from None
    # Equal to the payment's own scheme and network when decoded; a payment built by hand may differ.
    if terms.scheme != SCHEME_EXACT:
        raise _reject(
            UNSUPPORTED_SCHEME, f"accepted.scheme {terms.scheme!r} is not supported; expected 'exact'"
        )
    if terms.network != network:
        raise _reject(
            NETWORK_MISMATCH, f"accepted.network {terms.network!r} is not accepted; expected {network!r}"
        )
    if terms.asset != asset.lower():
        raise _reject(
            INVALID_PAYMENT_REQUIREMENTS,
            f"accepted.asset is {terms.asset}, but the price is in {asset.lower()}",
        )
    if terms.pay_to != pay_to.lower():
        raise _reject(INVALID_RECIPIENT, f"accepted.payTo is {terms.pay_to}, but payTo is {pay_to.lower()}")
    if terms.amount != amount:
        raise _reject(VALUE_MISMATCH, f"accepted.amount is {terms.amount}, but the price is exactly {amount}")


def verify_exact_payment(
    payment: ExactEvmPayment,
    *,
    network: str,
    domain: Eip712Domain,
    pay_to: str,
    amount: int,
    now: int,
    settle_margin: int,
    max_valid_for: int | None = None,
    asset: str | None = None,
    wallet_factories: frozenset[str] = frozenset(),
) -> None:
    """Raise PaymentRejected (status 400) unless ``payment`` is a valid authorization for our terms.

    ``network`` is ours in the payment's protocol version: the v1 name (``base-sepolia``) for v1,
    the CAIP-2 id (``eip155:84532``) for v2. For v2 the echoed ``accepted`` is checked against
    ``asset`` (default: the domain's verifying contract), ``pay_to`` and ``amount`` too.

    The cheap field checks run first and the signature (about 50 µs of EC recovery) last; each
    failure has its own reason, so the order only decides which of several defects is reported. A
    smart-contract wallet's signature (ERC-1271, or ERC-6492 for a wallet not deployed yet; see
    shared/x402/wallets.py) is accepted by its shape: only the chain can check it.
    ``validBefore`` must leave ``settle_margin`` seconds to get the transfer mined, and be at most
    ``max_valid_for`` seconds ahead (the advertised maxTimeoutSeconds plus clock skew): an
    authorization that expires soon can be settled, and then forgotten, for good.
    """
    auth = payment.authorization
    if payment.x402_version not in (1, 2):
        raise _reject(
            INVALID_X402_VERSION, f"x402Version {payment.x402_version} is not supported; expected 1 or 2"
        )
    if payment.scheme != SCHEME_EXACT:
        raise _reject(UNSUPPORTED_SCHEME, f"scheme {payment.scheme!r} is not supported; expected 'exact'")
    if payment.network != network:
        raise _reject(NETWORK_MISMATCH, f"network {payment.network!r} is not accepted; expected {network!r}")
    if payment.x402_version == 2:
        _check_accepted(
            payment,
            network=network,
            asset=domain.verifying_contract if asset is None else asset,
            pay_to=pay_to,
            amount=amount,
        )
    if auth.to != pay_to.lower():
        raise _reject(INVALID_RECIPIENT, f"authorization pays {auth.to}, but payTo is {pay_to.lower()}")
    if auth.value != amount:
        raise _reject(
            VALUE_MISMATCH, f"authorization value is {auth.value}, but the price is exactly {amount}"
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
    if max_valid_for is not None and auth.valid_before > now + max_valid_for:
        raise _reject(
            INVALID_VALID_BEFORE,
            f"authorization is valid for {auth.valid_before - now}s; at most {max_valid_for}s is accepted"
            " (maxTimeoutSeconds plus clock skew): sign a validBefore of now + maxTimeoutSeconds",
        )
    try:
        wallet = wallets.parse(payment.signature)
    except wallets.WalletSignatureError as exc:
        raise _reject(INVALID_SIGNATURE, str(exc)) from None
    if wallet.signer is Signer.COUNTERFACTUAL and wallet.factory not in wallet_factories:
        raise _reject(
            UNDEPLOYED_SMART_WALLET,
            f"the wallet is not deployed, and its factory {wallet.factory} is not one this service deploys"
            " wallets with (ERC6492_FACTORIES): deploy the wallet first",
        )
    if wallet.signer is not Signer.EOA:
        return  # a contract wallet's signature is checked on chain: payment-sender's pre-flight decides
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
