"""The real supervisord.conf: all five programs run; stopping and starting one stage while the
others keep running loses nothing, and a stopped stage exits cleanly on SIGTERM; no program ends
FATAL, however often it is killed or whatever it depends on is down."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from cli.buyer import sign_payment
from cli.devnet import anvil
from cli.devnet.paths import free_port
from shared.config import Settings
from tests.integration.conftest import CHAIN_ID, Deployment
from tests.integration.faults import TcpForward
from tests.integration.scrape import Scrape
from tests.integration.supervision import STAGES, Supervisor, launch, wait_running

pytestmark = [pytest.mark.chain, pytest.mark.slow]


@pytest.fixture
def supervisor(tmp_path: Path, settings: Settings) -> Iterator[Supervisor]:
    sup = launch(tmp_path, settings)
    try:
        wait_running(sup)
        yield sup
    finally:
        sup.ctl("shutdown")
        time.sleep(1)


def purchase(api_url: str, token: str, key: str, quantity: int) -> str:
    offer = httpx.post(f"{api_url}/api/mint/{token}", json={"quantity": quantity}, timeout=10)
    header = sign_payment(offer.json()["accepts"][0], key, chain_id=CHAIN_ID)
    reply = httpx.post(
        f"{api_url}/api/mint/{token}", json={"quantity": quantity}, headers={"X-PAYMENT": header}, timeout=10
    )
    assert reply.status_code == 202, reply.text
    return str(reply.json()["paymentQueueId"])


def status(api_url: str, payment_id: str) -> dict[str, object]:
    body: dict[str, object] = httpx.get(f"{api_url}/api/payment/{payment_id}", timeout=10).json()
    return body


def wait_all_minted(api_url: str, ids: list[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        bodies = [status(api_url, pid) for pid in ids]
        if all(
            b["status"] == "completed"
            and all(
                m["status"] == "completed"  # type: ignore[index, union-attr]
                for m in b["result"]["mints"]
            )
            for b in bodies
        ):
            return
        time.sleep(0.3)
    raise AssertionError(f"not all minted: {[status(api_url, pid) for pid in ids]}")


def test_each_stage_stops_and_starts_while_the_others_run(
    supervisor: Supervisor, deployment: Deployment
) -> None:
    token = deployment.token.address
    buyer = anvil.dev_account(16).key.hex()
    assert supervisor.states() == {
        "api": "RUNNING",
        "metrics": "RUNNING",
        "confirmer": "RUNNING",
        "mint-sender": "RUNNING",
        "payment-sender": "RUNNING",
        "refund-sender": "RUNNING",
    }
    for stage in ("payment-sender", "confirmer", "mint-sender"):
        assert "stopped" in supervisor.ctl("stop", stage)
        assert supervisor.states()[stage] == "STOPPED"
        assert supervisor.states()["api"] == "RUNNING"
        ids = [purchase(supervisor.api_url, token, buyer, q) for q in (1, 3)]
        time.sleep(1.5)
        # The stopped stage holds up its part of the work, and only that.
        first = status(supervisor.api_url, ids[0])
        if stage == "payment-sender":
            assert first["status"] == "pending"
        elif stage == "confirmer":
            assert first["status"] == "sent"
        else:
            assert first["status"] == "completed"
            assert all(m["status"] == "pending" for m in first["result"]["mints"])  # type: ignore[index]
        assert "started" in supervisor.ctl("start", stage)
        wait_all_minted(supervisor.api_url, ids)
    log = (
        Path(str(supervisor.conf).replace("supervisord.conf", "run")) / "logs" / "supervisord.log"
    ).read_text()
    for stage in ("payment-sender", "confirmer", "mint-sender"):
        assert f"stopped: {stage} (exit status 0)" in log, log
    # Every program logs one JSON object a line (uvicorn's own lines too), with the seed's events.
    logs = Path(str(supervisor.conf).replace("supervisord.conf", "run")) / "logs"
    api_events = [json.loads(line) for line in (logs / "api.log").read_text().splitlines() if line.strip()]
    assert any(e.get("logger", "").startswith("uvicorn") and e["component"] == "api" for e in api_events)
    queued = [e for e in api_events if e["event"] == "payment_queued"]
    assert {e["payment_id"] for e in queued} >= set(ids) and all(e["payer"] and e["quantity"] for e in queued)
    confirmer = [
        json.loads(line) for line in (logs / "confirmer.log").read_text().splitlines() if line.strip()
    ]
    batches = [e for e in confirmer if e["event"] == "confirmer_batch"]
    assert batches and all(e["checking"] >= e["confirmed"] >= 0 for e in batches)


def test_a_stage_killed_again_and_again_comes_back_by_itself(
    supervisor: Supervisor, deployment: Deployment
) -> None:
    """Four SIGKILLs in a row, each before the new process has been up for startsecs: supervisord
    counts them as failed starts, and must not give up (FATAL) — the stage comes back by itself."""
    for _ in range(4):
        pid = 0
        deadline = time.monotonic() + 30
        while not pid and time.monotonic() < deadline:
            pid = int(supervisor.ctl("pid", "payment-sender").strip() or 0)
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        while (
            int(supervisor.ctl("pid", "payment-sender").strip() or 0) == pid and time.monotonic() < deadline
        ):
            time.sleep(0.05)
    deadline = time.monotonic() + 60
    while supervisor.states()["payment-sender"] != "RUNNING" and time.monotonic() < deadline:
        assert supervisor.states()["payment-sender"] != "FATAL"
        time.sleep(0.2)
    assert supervisor.states()["payment-sender"] == "RUNNING"
    ids = [purchase(supervisor.api_url, deployment.token.address, anvil.dev_account(16).key.hex(), 1)]
    wait_all_minted(supervisor.api_url, ids)


def test_programs_started_before_the_database_and_the_node_wait_for_them(
    tmp_path: Path, settings: Settings, deployment: Deployment
) -> None:
    """Started while PostgreSQL and the node are unreachable, no program ends FATAL: the stages wait
    (with backoff) and the API answers 503; once both are reachable, a purchase goes through."""
    db_port, rpc_port = free_port(35432), free_port(38645)
    db = urlsplit(settings.database_url)
    unreachable_db = db._replace(netloc=f"{db.username}@127.0.0.1:{db_port}").geturl()
    sup = launch(tmp_path, settings, DATABASE_URL=unreachable_db, RPC_URL=f"http://127.0.0.1:{rpc_port}")
    try:
        log = tmp_path / "run" / "logs" / "payment-sender.log"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
            not log.exists() or log.read_text().count("stage_waiting_for_dependencies") < 2
        ):
            time.sleep(0.5)
        assert log.read_text().count("stage_waiting_for_dependencies") >= 2  # tried, and waits on
        states = sup.states()
        assert "FATAL" not in states.values(), states
        assert all(states[stage] == "RUNNING" for stage in STAGES), states  # waiting, not exiting
        # Now they come up: PostgreSQL and the node become reachable on those ports.
        with (
            TcpForward(db_port, db.port or 5432),
            TcpForward(rpc_port, int(settings.rpc_url.rsplit(":", 1)[1])),
        ):
            wait_running(sup, timeout=90)
            assert set(sup.states().values()) == {"RUNNING"}
            ids = [purchase(sup.api_url, deployment.token.address, anvil.dev_account(16).key.hex(), 2)]
            wait_all_minted(sup.api_url, ids, timeout=120)
            sup.ctl("shutdown")
            time.sleep(1)
    finally:
        sup.ctl("shutdown")


def test_every_process_is_scraped_and_a_restart_loses_no_figures(
    supervisor: Supervisor, deployment: Deployment
) -> None:
    """prometheus-client's multiprocess mode: the API's /metrics (and the stand-alone exporter) show
    the figures of every program, and a stage killed with SIGKILL keeps the figures it had."""
    ids = [purchase(supervisor.api_url, deployment.token.address, anvil.dev_account(16).key.hex(), 2)]
    wait_all_minted(supervisor.api_url, ids)
    before = Scrape.parse(httpx.get(f"{supervisor.api_url}/metrics", timeout=10).text)
    assert before.value("x402mint_payments_accepted_total") >= 1  # the API process
    for stage in ("payment-sender", "confirmer", "mint-sender"):
        assert before.value("x402mint_claim_batch_size_count", stage=stage) >= 1, stage
    assert before.value("x402mint_payment_paid_seconds_count") >= 1  # the confirmer's
    assert before.value("x402mint_mint_seconds_count") >= 2
    assert before.value("x402mint_rpc_request_duration_seconds_count") > 0
    assert before.value("x402mint_queue_depth", queue="payment", status="completed") >= 1  # PostgreSQL's
    pid = supervisor.pids()["confirmer"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while supervisor.pids().get("confirmer", pid) == pid and time.monotonic() < deadline:
        time.sleep(0.2)
    after = Scrape.parse(httpx.get(f"{supervisor.api_url}/metrics", timeout=10).text)
    for name, labels in (
        ("x402mint_claim_batch_size_count", {"stage": "confirmer"}),
        ("x402mint_payment_paid_seconds_count", {}),
        ("x402mint_mint_seconds_count", {}),
    ):
        assert after.value(name, **labels) >= before.value(name, **labels), name
    exporter = Scrape.parse(httpx.get(supervisor.metrics_url, timeout=10).text)
    assert exporter.value("x402mint_payments_accepted_total") == after.value(
        "x402mint_payments_accepted_total"
    )
    assert exporter.value("x402mint_database_up") == 1
