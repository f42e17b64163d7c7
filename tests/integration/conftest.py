"""Real parts for integration tests: a PostgreSQL database created and dropped per session, an anvil
node with the compiled contracts deployed, and the three stages running in threads."""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient
from web3 import Web3

from api.app import create_app
from cli.devnet import anvil, deploy, postgres
from cli.devnet.paths import free_port
from shared import chain
from shared.config import Settings, StageSettings
from shared.db.migrations import migrate
from shared.runtime import open_runtime
from shared.stage import run_stage
from workers import confirmer, mint_sender, payment_sender, refund_sender

# Base Sepolia's chain id: it has an x402 v1 network name ("base-sepolia"), so v1 and v2 both work.
CHAIN_ID = 84532


@dataclass(frozen=True)
class Chain:
    rpc_url: str
    chain_id: int
    w3: Web3
    proc: object


@dataclass(frozen=True)
class Deployment:
    usdc: deploy.UsdcInfo
    token: deploy.TokenInfo


@pytest.fixture(scope="session")
def pg_server() -> str:
    """Server URL: TEST_PG_URL if set, else the project-local cluster (started if needed)."""
    return os.environ.get("TEST_PG_URL") or postgres.ensure_running()


@contextmanager
def scratch_database(pg_server: str, prefix: str) -> Iterator[str]:
    """A new, empty database on the test server, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    url = postgres.ensure_database(pg_server, name)
    try:
        yield url
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url(pg_server: str) -> Iterator[str]:
    with scratch_database(pg_server, "x402_test") as url:
        migrate(url)
        yield url


@contextmanager
def running_chain(port_from: int, log_path: Path) -> Iterator[Chain]:
    """A dev chain node of its own on the first free port from `port_from`, ended on exit."""
    port = free_port(port_from)
    proc = anvil.start(port=port, chain_id=CHAIN_ID, log_path=log_path)
    rpc_url = f"http://127.0.0.1:{port}"
    try:
        yield Chain(rpc_url, CHAIN_ID, chain.connect(rpc_url), proc)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="session")
def devchain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    with running_chain(18545, Path(tmp_path_factory.mktemp("anvil")) / "anvil.log") as node:
        yield node


@pytest.fixture(scope="session")
def deployment(devchain: Chain, database_url: str) -> Deployment:
    w3 = devchain.w3
    deploy.install_multicall3(w3)
    deployer = anvil.dev_account(anvil.DEPLOYER).address
    usdc = deploy.deploy_usdc(w3, deployer)
    token = deploy.deploy_token(
        w3, deployer, usdc.address, minter=anvil.dev_account(anvil.MINT_RELAYER).address
    )
    deploy.fund(
        w3, deployer, usdc.address, [anvil.dev_account(i).address for i in anvil.BUYERS], 10_000 * 10**6
    )
    deploy.register_token(database_url, deploy.read_token(w3, token.address))
    return Deployment(usdc, token)


@pytest.fixture(scope="session")
def settings(database_url: str, devchain: Chain, deployment: Deployment) -> Settings:
    return Settings(
        database_url=database_url,
        rpc_url=devchain.rpc_url,
        chain_id=devchain.chain_id,
        payment_relayer_keys=(anvil.dev_account(anvil.PAYMENT_RELAYER).key.hex(),),
        mint_relayer_keys=(anvil.dev_account(anvil.MINT_RELAYER).key.hex(),),
        payment_stage=StageSettings(50, 0.5),
        confirm_stage=StageSettings(20, 0.5),
        mint_stage=StageSettings(10, 0.5),
        rebroadcast_after_seconds=3.0,
        upkeep_interval_seconds=0.0,  # tests call run_once and expect its upkeep every time
    )


class Pipeline:
    """The three stages, each in its own thread with its own runtime, as separate processes would be."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.runtimes = []

    def start(self) -> Pipeline:
        for module in (payment_sender, confirmer, mint_sender, refund_sender):
            rt = open_runtime(self.settings)
            stage = module.create(rt)
            stage.start()
            self.runtimes.append(rt)
            thread = threading.Thread(
                target=run_stage,
                args=(stage, self.settings.database_url, self.stop),
                kwargs={"on_tick": partial(rt.report_health, stage.name)},  # as `x402-mint worker` does
                name=stage.name,
                daemon=True,
            )
            thread.start()
            self.threads.append(thread)
        return self

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)
        for rt in self.runtimes:
            rt.close()


@pytest.fixture
def pipeline(settings: Settings) -> Iterator[Pipeline]:
    running = Pipeline(settings).start()
    yield running
    running.close()


def with_settings(settings: Settings, **changes: object) -> Settings:
    return replace(settings, **changes)  # type: ignore[arg-type]


class LiveServer:
    """The real ingress on a real socket (uvicorn, our header-deadline protocol) in a thread."""

    def __init__(self, settings: Settings) -> None:
        import uvicorn

        from api.app import create_app
        from api.server import DeadlineHttpProtocol

        self.port = free_port(19402)
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            http=DeadlineHttpProtocol,
            access_log=False,
        )
        DeadlineHttpProtocol.header_timeout = settings.request_timeout_seconds
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="live-api")

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(20)


@pytest.fixture
def live_api(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(settings) as server:
        yield server


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app with its lifespan run (a test module may override it with other settings)."""
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as c:  # from this machine
        yield c


@pytest.fixture
def manual_mining(devchain: Chain) -> Iterator[None]:
    """Blocks are mined only when a test asks (evm_mine); automine is back afterwards."""
    devchain.w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        yield
    finally:
        devchain.w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def browser() -> Any:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is required (make install-test installs it)")
    with sync_playwright() as p:
        instance = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield instance
        finally:
            instance.close()
