"""The EVM node and what we read from it: the client (``client``: a web3 connection, local signing,
fee quotes, classified broadcasts — its functions are re-exported here, so ``chain.sign(...)``),
what a broadcast error means (``broadcast_errors``), JSON-RPC batch reads (``rpc_batch``), revert
reasons in plain words (``reverts``), the compiled contract artifacts (``contracts``) and Multicall3
(``multicall``).

May import: third-party libraries only (no other room of shared).
"""

from __future__ import annotations

from shared.chain.client import (
    Fees,
    SignedTx,
    broadcast,
    connect,
    pending_nonce,
    quote_fees,
    relayer,
    sign,
)

__all__ = ["Fees", "SignedTx", "broadcast", "connect", "pending_nonce", "quote_fees", "relayer", "sign"]
