"""What a buyer signs and sends: the x402 payment protocol, ``exact`` scheme on EVM chains.

v1: the ``X-PAYMENT`` header and a 402 JSON body with ``accepts`` (module ``v1``). v2: the
``PAYMENT-SIGNATURE`` header, a ``PAYMENT-REQUIRED`` 402 header and ``PAYMENT-RESPONSE`` (``v2``,
``v2_required``). Both decode to ExactEvmPayment; defects raise PaymentRejected carrying a
reference reason code (``errors``). The signed EIP-3009 authorization inside — its EIP-712 digest,
signing and signer recovery — is ``eip3009``; binding a recipient other than the payer into its
nonce is ``recipients``.

May import: third-party libraries only (no other room of shared).
"""

from __future__ import annotations

from shared.x402.errors import (
    INVALID_PAYLOAD,
    INVALID_PAYMENT_REQUIREMENTS,
    INVALID_RECIPIENT,
    INVALID_SIGNATURE,
    INVALID_VALID_AFTER,
    INVALID_VALID_BEFORE,
    INVALID_X402_VERSION,
    NETWORK_MISMATCH,
    UNSUPPORTED_SCHEME,
    VALUE_MISMATCH,
    PaymentRejected,
)
from shared.x402.networks import V1_NETWORKS, caip2, network_name, v1_network_name
from shared.x402.payment import SCHEME_EXACT, ExactEvmPayment
from shared.x402.v1 import X402_VERSION, decode_payment_header, encode_payment_header, payment_requirements
from shared.x402.v2 import (
    X402_VERSION_2,
    AcceptedTerms,
    accepted_terms,
    decode_payment_signature_header,
    encode_payment_signature_header,
)
from shared.x402.v2_required import (
    decode_payment_required,
    decode_payment_response,
    encode_payment_required,
    encode_payment_response,
    payment_required_v2,
    requirement_v2,
)
from shared.x402.wire import MAX_HEADER_LENGTH

__all__ = [
    "INVALID_PAYLOAD",
    "INVALID_PAYMENT_REQUIREMENTS",
    "INVALID_RECIPIENT",
    "INVALID_SIGNATURE",
    "INVALID_VALID_AFTER",
    "INVALID_VALID_BEFORE",
    "INVALID_X402_VERSION",
    "MAX_HEADER_LENGTH",
    "NETWORK_MISMATCH",
    "SCHEME_EXACT",
    "UNSUPPORTED_SCHEME",
    "V1_NETWORKS",
    "VALUE_MISMATCH",
    "X402_VERSION",
    "X402_VERSION_2",
    "AcceptedTerms",
    "ExactEvmPayment",
    "PaymentRejected",
    "accepted_terms",
    "caip2",
    "decode_payment_header",
    "decode_payment_required",
    "decode_payment_response",
    "decode_payment_signature_header",
    "encode_payment_header",
    "encode_payment_required",
    "encode_payment_response",
    "encode_payment_signature_header",
    "network_name",
    "payment_required_v2",
    "payment_requirements",
    "requirement_v2",
    "v1_network_name",
]
