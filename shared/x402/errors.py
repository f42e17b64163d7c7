"""PaymentRejected and the x402 reason codes it carries.

The codes are the reference SDK's (``x402/mechanisms/evm/constants.py`` of the official ``x402``
package, the same for protocol versions 1 and 2) plus the protocol-level ones of the x402
specification (``invalid_x402_version``, ``invalid_payload``, ``invalid_payment_requirements``).
"""

from __future__ import annotations

from typing import Final

from shared.x402.eip3009 import SIGNATURE_REASON

__all__ = [
    "INVALID_PAYLOAD",
    "INVALID_PAYMENT_REQUIREMENTS",
    "INVALID_RECIPIENT",
    "INVALID_SIGNATURE",
    "INVALID_VALID_AFTER",
    "INVALID_VALID_BEFORE",
    "INVALID_X402_VERSION",
    "NETWORK_MISMATCH",
    "UNSUPPORTED_SCHEME",
    "VALUE_MISMATCH",
    "PaymentRejected",
]

# Specification (protocol level).
INVALID_X402_VERSION: Final = "invalid_x402_version"
INVALID_PAYLOAD: Final = "invalid_payload"
INVALID_PAYMENT_REQUIREMENTS: Final = "invalid_payment_requirements"
# Reference SDK, exact scheme on EVM (ERR_UNSUPPORTED_SCHEME, ERR_NETWORK_MISMATCH, ...).
UNSUPPORTED_SCHEME: Final = "unsupported_scheme"
NETWORK_MISMATCH: Final = "network_mismatch"
INVALID_SIGNATURE: Final = SIGNATURE_REASON  # "invalid_exact_evm_payload_signature"
INVALID_RECIPIENT: Final = "invalid_exact_evm_payload_recipient_mismatch"
VALUE_MISMATCH: Final = "invalid_exact_evm_payload_authorization_value_mismatch"
INVALID_VALID_AFTER: Final = "invalid_exact_evm_payload_authorization_valid_after"
INVALID_VALID_BEFORE: Final = "invalid_exact_evm_payload_authorization_valid_before"


class PaymentRejected(Exception):
    """A payment the server will not accept.

    ``reason`` is a stable machine code (an x402 reason name), ``message`` says what is wrong in
    plain words, ``status`` is the HTTP status: 400, for a malformed header and for a well-formed
    payment that does not meet the requirements alike (our API's contract; the x402 transport
    would allow 402 for the latter).
    """

    reason: str
    message: str
    status: int

    def __init__(self, reason: str, message: str, status: int = 400) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.status = status
