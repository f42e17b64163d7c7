"""Multicall3 calldata and results, and the vendored runtime code."""

from __future__ import annotations

from eth_abi.abi import decode, encode
from eth_hash.auto import keccak
from hypothesis import given
from hypothesis import strategies as st

from shared.chain import multicall
from shared.chain.reverts import reason_from_return_data

CODE_HASH = "d5c15df687b16f2ff992fc8d767b4216323184a2bbc6ee2f9c398c318e770891"


def test_vendored_code_is_the_canonical_multicall3() -> None:
    code = multicall.runtime_code()
    assert keccak(code).hex() == CODE_HASH
    assert keccak(b"aggregate3((address,bool,bytes)[])")[:4] in code  # its dispatcher knows aggregate3


def test_aggregate3_calldata_allows_each_call_to_fail() -> None:
    target = "0x" + "11" * 20
    data = multicall.encode_aggregate3([(target, b"\x01\x02"), (target, b"")])
    assert data[:4] == keccak(b"aggregate3((address,bool,bytes)[])")[:4]
    (calls,) = decode(["(address,bool,bytes)[]"], data[4:])
    assert [(c[0], c[1], c[2]) for c in calls] == [(target, True, b"\x01\x02"), (target, True, b"")]


@given(st.lists(st.tuples(st.binary(min_size=20, max_size=20), st.binary(max_size=300)), max_size=60))
def test_aggregate3_calldata_is_what_eth_abi_encodes(calls: list[tuple[bytes, bytes]]) -> None:
    pairs = [("0x" + target.hex(), data) for target, data in calls]
    expected = encode(["(address,bool,bytes)[]"], [[(t, True, d) for t, d in pairs]])
    assert multicall.encode_aggregate3(pairs) == keccak(b"aggregate3((address,bool,bytes)[])")[:4] + expected


def test_aggregate3_results_decode_per_call() -> None:
    output = encode(
        ["(bool,bytes)[]"], [[(True, b""), (False, b"\x08\xc3\x79\xa0" + encode(["string"], ["no"]))]]
    )
    results = multicall.decode_aggregate3(output)
    assert [r.success for r in results] == [True, False]
    assert reason_from_return_data(results[1].return_data) == "no"


def test_reasons_from_raw_return_data() -> None:
    error_string = b"\x08\xc3\x79\xa0" + encode(["string"], ["FiatTokenV2: authorization is expired"])
    assert reason_from_return_data(error_string) == "FiatTokenV2: authorization is expired"
    balance = keccak(b"ERC20InsufficientBalance(address,uint256,uint256)")[:4] + bytes(96)
    assert reason_from_return_data(balance) == "ERC20InsufficientBalance"
    assert reason_from_return_data(b"") == "reverted"
    assert reason_from_return_data(b"\x08\xc3\x79\xa0\x00") == "reverted"  # truncated: no crash
