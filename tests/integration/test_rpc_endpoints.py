"""Several RPC endpoints (RPC_URLS) while purchases flow: one dead from the start, one dying with work
in flight, one lagging behind, one answering with faults of its own (a rate limit), one on another
chain — nothing is lost, every payment gets exactly its mints, and the lagging node is never asked
anything but its head (so never for a "not mined" or "unused" answer). An endpoint is probed back
once it catches up, and taken out again when it falls behind while in use. What the stages saw of
each endpoint is in `stats` and the metrics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from eth_hash.auto import keccak
from starlette.testclient import TestClient
from typer.testing import CliRunner
from web3 import Web3

from cli.devnet import anvil
from cli.devnet.paths import free_port
from cli.main import app as cli
from shared.chain.client import connect
from shared.chain.endpoints import label_of
from shared.config import Settings
from tests.integration.conftest import Chain, Deployment, Pipeline, with_settings
from tests.integration.faults import FaultyProxy, JsonRpcProxy, ShadyRpc
from tests.integration.helpers import buy, wait_for, wait_until
from tests.integration.scrape import Scrape
from tests.integration.stages import query

pytestmark = [pytest.mark.chain]


@pytest.fixture
def forward(devchain: Chain) -> Iterator[FaultyProxy]:
    """A plain TCP forward to the node: an endpoint that can be made to die."""
    proxy = FaultyProxy(free_port(18650), urlsplit(devchain.rpc_url).port or 0).start()
    yield proxy
    proxy.stop()


def buy_and_settle(
    client: TestClient, token: str, buyer: int, quantities: tuple[int, ...], *, then: Any = None
) -> None:
    """Buy, then (while the payments are in flight) call `then`, then wait for every one to settle."""
    key = anvil.dev_account(buyer).key.hex()
    ids = [buy(client, token, key, q) for q in quantities]
    if then is not None:
        then()
    for payment_id, quantity in zip(ids, quantities, strict=True):
        body = wait_for(client, payment_id)
        assert body["status"] == "completed", body
        assert [m["status"] for m in body["result"]["mints"]] == ["completed"] * quantity


def reported(settings: Settings, endpoint: str) -> list[dict[str, object]]:
    return query(settings, "SELECT up, lag, error FROM rpc_endpoints WHERE endpoint = %s", endpoint)


def test_a_dead_endpoint_and_one_dying_mid_flow_lose_nothing(
    client: TestClient, settings: Settings, deployment: Deployment, devchain: Chain, forward: FaultyProxy
) -> None:
    dying = f"http://127.0.0.1:{forward.port}"
    dead = f"http://127.0.0.1:{free_port(18660)}"  # nothing listens there
    many = with_settings(settings, rpc_url=dying, rpc_more_urls=(dead, devchain.rpc_url))
    pipeline = Pipeline(many).start()
    try:
        token = deployment.token.address
        buy_and_settle(client, token, 19, (1, 2))
        served_before = forward.stats.requests
        assert served_before > 0  # the first endpoint served them
        buy_and_settle(client, token, 19, (3, 1, 2), then=forward.stop)  # it dies with work in flight
    finally:
        pipeline.close()
    assert all(r["up"] is False for r in reported(many, label_of(dead)))
    assert any("no answer" in str(r["error"]) for r in reported(many, label_of(dead)))
    scrape = Scrape.parse(client.get("/metrics").text)
    assert scrape.value("x402mint_rpc_errors_total", endpoint=label_of(dead)) > 0
    assert scrape.value("x402mint_rpc_endpoint_up", endpoint=label_of(dead)) == 0
    assert scrape.value("x402mint_rpc_endpoint_up", endpoint=label_of(devchain.rpc_url)) == 1


def test_a_lagging_endpoint_is_never_asked_for_a_verdict(
    client: TestClient,
    settings: Settings,
    deployment: Deployment,
    devchain: Chain,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with ShadyRpc(free_port(18670), devchain.rpc_url, lag=20) as lagging:
        # The lagging node is the first choice: only the comparison of heads keeps it out.
        many = with_settings(settings, rpc_url=lagging.url, rpc_more_urls=(devchain.rpc_url,))
        pipeline = Pipeline(many).start()
        try:
            buy_and_settle(client, deployment.token.address, 19, (2, 1, 3))
        finally:
            pipeline.close()
    assert "eth_blockNumber" in lagging.asked
    assert set(lagging.asked) <= {"eth_chainId", "eth_blockNumber", "eth_sendRawTransaction"}, set(
        lagging.asked
    )
    rows = reported(many, label_of(lagging.url))
    assert rows and all(r["up"] is False and "blocks behind" in str(r["error"]) for r in rows), rows
    assert all(int(str(r["lag"])) >= 20 for r in rows)
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    stats = CliRunner().invoke(cli, ["stats"])
    assert stats.exit_code == 0, stats.output
    line = next(x for x in stats.output.splitlines() if x.strip().startswith(label_of(lagging.url)))
    assert "False" in line and "blocks behind" in line


def test_an_endpoint_answering_with_faults_and_one_on_another_chain_are_never_relied_on(
    client: TestClient, settings: Settings, deployment: Deployment, devchain: Chain
) -> None:
    """A rate-limited endpoint answers every request with a JSON-RPC error (-32005) — an answer, but
    its own failure, not the chain's: the next endpoint is asked. An endpoint on another chain, far
    ahead of ours, is never used, nor does its head push our node out as "behind"."""
    limited = {"code": -32005, "message": "limit exceeded"}
    with (
        ShadyRpc(free_port(18680), devchain.rpc_url, chain_id=1, head_offset=4000) as elsewhere,
        ShadyRpc(free_port(18690), devchain.rpc_url, fault=limited) as faulty,
    ):
        many = with_settings(settings, rpc_url=elsewhere.url, rpc_more_urls=(faulty.url, devchain.rpc_url))
        pipeline = Pipeline(many).start()
        try:
            buy_and_settle(client, deployment.token.address, 18, (2, 1))
        finally:
            pipeline.close()
    assert set(elsewhere.asked) <= {"eth_chainId"}, set(elsewhere.asked)  # asked its chain, no more
    assert any(m not in {"eth_chainId", "eth_blockNumber"} for m in faulty.asked)  # it was tried ...
    rows = reported(many, label_of(faulty.url))  # ... found failing, and taken out (by the stages
    assert any(r["up"] is False and "-32005" in str(r["error"]) for r in rows), rows  # that used it)
    for row in reported(many, label_of(elsewhere.url)):
        assert row["up"] is False and "on chain 1" in str(row["error"]), row
    assert all(r["up"] is True and r["lag"] == 0 for r in reported(many, label_of(devchain.rpc_url)))
    scrape = Scrape.parse(client.get("/metrics").text)
    assert scrape.value("x402mint_rpc_errors_total", endpoint=label_of(faulty.url)) > 0
    assert scrape.value("x402mint_rpc_endpoint_up", endpoint=label_of(faulty.url)) == 0
    assert scrape.value("x402mint_rpc_endpoint_up", endpoint=label_of(elsewhere.url)) == 0


def test_an_endpoint_is_probed_back_once_caught_up_and_out_again_when_it_falls_behind(
    devchain: Chain,
) -> None:
    from shared.chain.endpoints import FailoverProvider

    with ShadyRpc(free_port(18700), devchain.rpc_url, lag=20) as shady:
        provider = FailoverProvider(
            [shady.url, devchain.rpc_url],
            quarantine_seconds=0.5,
            probe_seconds=0.1,
            chain_id=devchain.chain_id,
        )
        balance = ("eth_getBalance", ["0x" + "11" * 20, "latest"])

        def state() -> dict[str, Any]:
            (first, _) = provider.health()
            return {"up": first.up, "lag": first.lag, "why": first.error}

        provider.make_request(*balance)  # type: ignore[arg-type]
        assert state()["up"] is False and state()["lag"] == 20 and "blocks behind" in str(state()["why"])
        assert "eth_getBalance" not in shady.asked  # behind: the other endpoint answered
        shady.lag = 0  # it catches up: once its time out ends, a probe brings it back
        wait_until(lambda: state()["up"] is True, timeout=10)
        provider.make_request(*balance)  # type: ignore[arg-type]
        assert "eth_getBalance" in shady.asked  # the first choice again
        shady.lag = 10  # it falls behind while in use
        wait_until(lambda: state()["up"] is False, timeout=10)
        asked = len(shady.asked)
        provider.make_request(*balance)  # type: ignore[arg-type]
        assert shady.asked[asked:].count("eth_getBalance") == 0


class RecordingRpc(JsonRpcProxy):
    """A node that notes the method of every request it is asked."""

    name = "recording-rpc"

    def __init__(self, port: int, target_url: str) -> None:
        super().__init__(port, target_url)
        self.methods: list[str] = []

    def answer(self, request: dict[str, object]) -> dict[str, object]:
        self.methods.append(str(request["method"]))
        return self.forward(request)


def test_an_eth_call_is_one_request(devchain: Chain, deployment: Deployment) -> None:
    """web3's validation asked eth_chainId before every eth_call: a pre-flight or an authorization
    lookup was two round trips to the node."""
    with RecordingRpc(free_port(18680), devchain.rpc_url) as node:
        w3 = connect(node.url)
        usdc = Web3.to_checksum_address(deployment.usdc.address)
        total_supply = keccak(b"totalSupply()")[:4]
        for _ in range(3):
            assert len(w3.eth.call({"to": usdc, "data": total_supply})) == 32
        assert node.methods.count("eth_call") == 3
        assert "eth_chainId" not in node.methods  # (the endpoint's own health reads aside: eth_blockNumber)
