"""Several RPC endpoints (RPC_URLS) while purchases flow: one dead from the start, one dying in the
middle, one lagging behind — nothing is lost, every payment gets exactly its mints, and the lagging
node is never asked anything but its head (so never for a "not mined" or "unused" answer). What the
stages saw of each endpoint is in `stats` and the metrics."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from cli.devnet import anvil
from cli.devnet.paths import free_port
from cli.main import app as cli
from shared.chain.endpoints import label_of
from shared.config import Settings
from tests.integration.conftest import Chain, Deployment, Pipeline, with_settings
from tests.integration.faults import FaultyProxy, LaggingRpc
from tests.integration.helpers import buy, wait_for
from tests.integration.scrape import Scrape
from tests.integration.stages import query

pytestmark = [pytest.mark.chain]


@pytest.fixture
def forward(devchain: Chain) -> Iterator[FaultyProxy]:
    """A plain TCP forward to the node: an endpoint that can be made to die."""
    proxy = FaultyProxy(free_port(18650), urlsplit(devchain.rpc_url).port or 0).start()
    yield proxy
    proxy.stop()


def buy_and_settle(client: TestClient, token: str, buyer: int, quantities: tuple[int, ...]) -> None:
    key = anvil.dev_account(buyer).key.hex()
    ids = [buy(client, token, key, q) for q in quantities]
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
        forward.stop()  # it dies with work in flight
        buy_and_settle(client, token, 19, (3, 1, 2))
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
    with LaggingRpc(free_port(18670), devchain.rpc_url, lag=20) as lagging:
        # The lagging node is the first choice: only the comparison of heads keeps it out.
        many = with_settings(settings, rpc_url=lagging.url, rpc_more_urls=(devchain.rpc_url,))
        pipeline = Pipeline(many).start()
        try:
            buy_and_settle(client, deployment.token.address, 19, (2, 1, 3))
        finally:
            pipeline.close()
    assert "eth_blockNumber" in lagging.asked
    assert set(lagging.asked) <= {"eth_blockNumber", "eth_sendRawTransaction"}, set(lagging.asked)
    rows = reported(many, label_of(lagging.url))
    assert rows and all(r["up"] is False and "blocks behind" in str(r["error"]) for r in rows), rows
    assert all(int(str(r["lag"])) >= 20 for r in rows)
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    stats = CliRunner().invoke(cli, ["stats"])
    assert stats.exit_code == 0, stats.output
    line = next(x for x in stats.output.splitlines() if x.strip().startswith(label_of(lagging.url)))
    assert "False" in line and "blocks behind" in line
