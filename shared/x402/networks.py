"""EVM network identifiers: x402 v1 names (``base-sepolia``) and CAIP-2 ids (``eip155:84532``)."""

from __future__ import annotations

from typing import Final

__all__ = ["V1_NETWORKS", "caip2", "network_name", "v1_network_name"]

#: v1 network names of EVM chains (reference SDK's v1 name map: TypeScript ``EVM_NETWORK_CHAIN_ID_MAP``
#: and Go ``NetworkChainIDs``, which agree).
V1_NETWORKS: Final[dict[int, str]] = {
    1: "ethereum",
    11155111: "sepolia",
    2741: "abstract",
    11124: "abstract-testnet",
    84532: "base-sepolia",
    8453: "base",
    43113: "avalanche-fuji",
    43114: "avalanche",
    4689: "iotex",
    1329: "sei",
    1328: "sei-testnet",
    137: "polygon",
    80002: "polygon-amoy",
    3338: "peaq",
    1514: "story",
    41923: "educhain",
    324705682: "skale-base-sepolia",
    4326: "megaeth",
    143: "monad",
    988: "stable",
    2201: "stable-testnet",
}


def _check_chain_id(chain_id: int) -> None:
    if type(chain_id) is not int or chain_id <= 0:
        raise ValueError(f"chain_id must be a positive int, got {chain_id!r}")


def v1_network_name(chain_id: int) -> str | None:
    """The x402 v1 network name of an EVM chain, or None if v1 has no name for it."""
    return V1_NETWORKS.get(chain_id)


def caip2(chain_id: int) -> str:
    """The CAIP-2 id of an EVM chain, as x402 v2 names networks: ``eip155:<chain_id>``."""
    _check_chain_id(chain_id)
    return f"eip155:{chain_id}"


def network_name(chain_id: int) -> str:
    """The x402 v1 network name of an EVM chain, or its CAIP-2 id if it has none."""
    name = V1_NETWORKS.get(chain_id)
    return name if name is not None else caip2(chain_id)
