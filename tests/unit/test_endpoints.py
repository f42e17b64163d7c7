"""Pure parts of the RPC endpoint set: which block a read needs, how an endpoint is named, and which
error answers are the endpoint's own failure."""

from __future__ import annotations

import pytest

from shared.chain.endpoints import block_asked, endpoint_fault, label_of
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


@pytest.mark.parametrize(
    ("error", "fault"),
    [
        ({"code": -32005, "message": "limit exceeded"}, True),
        ({"code": -32603, "message": "Internal error"}, True),
        ({"code": -32601, "message": "the method eth_getLogs does not exist/is not available"}, True),
        ({"code": -32000, "message": "header not found"}, True),
        ({"code": -32000, "message": "missing trie node 0xab…"}, True),
        ({"code": 429, "message": "Too Many Requests"}, True),
        ({"code": 3, "message": "execution reverted: FiatTokenV2: authorization is expired"}, False),
        ({"code": -32000, "message": "execution reverted: upstream timeout in the contract"}, False),
        ({"code": -32000, "message": "nonce too low"}, False),
        ({"code": -32003, "message": "max fee per gas less than block base fee"}, False),
        ({"code": -32602, "message": "invalid argument 0: hex string without 0x prefix"}, False),
    ],
)
def test_which_error_answers_are_the_endpoints_own_failure(error: dict[str, object], fault: bool) -> None:
    """The endpoint's own failure (another endpoint is asked), or the chain's answer (returned)."""
    assert (endpoint_fault({"jsonrpc": "2.0", "id": 1, "error": error}) is not None) is fault


def test_a_result_is_never_a_fault() -> None:
    assert endpoint_fault({"jsonrpc": "2.0", "id": 1, "result": "0x1"}) is None
    assert endpoint_fault([{"jsonrpc": "2.0", "id": 1, "error": {"code": -32005}}]) is None  # a batch
