"""ExactEvmPayment: a decoded ``exact`` EVM payment of either protocol version."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from shared.x402.eip3009 import Authorization

__all__ = ["SCHEME_EXACT", "ExactEvmPayment"]

SCHEME_EXACT: Final = "exact"


@dataclass(frozen=True, slots=True)
class ExactEvmPayment:
    """A decoded ``exact`` EVM payment payload (structurally valid, not yet verified).

    For x402 v1, ``scheme`` and ``network`` are the payload's own fields and ``accepted`` and
    ``resource`` are None. For v2 they are taken from ``accepted``, the payment requirements the
    client chose and echoed back (kept as the decoded JSON object, as is ``resource``).
    """

    x402_version: int
    scheme: str
    network: str
    signature: bytes  # as sent; recover_signer insists on 65 bytes
    authorization: Authorization
    accepted: dict[str, Any] | None = field(default=None, hash=False)
    resource: dict[str, Any] | None = field(default=None, hash=False)
    extensions: dict[str, Any] | None = field(default=None, hash=False)  # v2 only
