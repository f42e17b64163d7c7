"""Pure parts of the RPC endpoint set: which block a read needs, and how an endpoint is named."""

from __future__ import annotations

import pytest

from shared.chain.endpoints import block_asked, label_of
from shared.config import ConfigError, load_settings


@pytest.mark.parametrize(
    ("method", "params", "needs"),
    [
        ("eth_getLogs", [{"fromBlock": "0x10", "toBlock": "0x20", "address": "0xab"}], 0x20),
        ("eth_getLogs", [{"fromBlock": "0x10", "toBlock": "latest"}], 0x10),
        ("eth_getLogs", [{"blockHash": "0x" + "ab" * 32}], None),
        ("eth_call", [{"to": "0xab", "data": "0x"}, "0x2a"], 42),
        ("eth_call", [{"to": "0xab", "data": "0x"}, "latest"], None),
        ("eth_getTransactionCount", ["0xab", "0x7"], 7),
        ("eth_getBlockByNumber", ["0x5", False], 5),
        ("eth_getStorageAt", ["0xab", "0x0", "0x9"], 9),
        ("eth_getTransactionReceipt", ["0x" + "cd" * 32], None),
        ("eth_blockNumber", [], None),
    ],
)
def test_the_block_a_read_needs(method: str, params: list[object], needs: int | None) -> None:
    assert block_asked(method, params) == needs


def test_an_endpoint_is_named_without_its_path_or_credentials() -> None:
    assert label_of("https://user:pw@eth.example.com/v2/SECRET-KEY") == "eth.example.com"
    assert label_of("http://127.0.0.1:8545") == "127.0.0.1:8545"


def test_rpc_urls_keep_their_order_and_rpc_url_still_works() -> None:
    base = {"DATABASE_URL": "postgresql://x"}
    assert load_settings(base | {"RPC_URL": "http://a:1"}).rpc_urls == ("http://a:1",)
    listed = load_settings(base | {"RPC_URLS": "http://a:1, http://b:2 ,"})
    assert listed.rpc_urls == ("http://a:1", "http://b:2") and listed.rpc_url == "http://a:1"
    with pytest.raises(ConfigError):
        load_settings(base | {"RPC_URLS": "http://a:1", "RPC_URL": "http://c:3"})
