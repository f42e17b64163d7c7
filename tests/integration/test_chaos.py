"""Chaos: payments keep arriving while every stage (two processes each, under the real
supervisord.conf) is SIGKILLed at random, a share of RPC traffic is dropped or delayed, and the
database restarts. supervisord alone restarts what is killed: once the faults stop, every program must
be RUNNING by itself, every payment must finish, and the money invariants must hold to the unit.

Size: CHAOS_PAYMENTS (default 200; the closing figures come from a run with 1000)."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eth_account import Account
from starlette.testclient import TestClient
from web3 import Web3

from api.app import create_app
from cli.buyer import sign_payment
from cli.devnet import anvil, deploy, postgres
from cli.devnet.paths import free_port
from shared.chain.contracts import load_artifact
from shared.config import Settings
from shared.db.migrations import migrate
from tests.integration.conftest import CHAIN_ID, Chain, Deployment, scratch_database
from tests.integration.faults import FaultyProxy
from tests.integration.stages import query
from tests.integration.supervision import STAGES, launch, wait_running

pytestmark = [pytest.mark.chain, pytest.mark.slow]
PAYMENTS = int(os.environ.get("CHAOS_PAYMENTS", "200"))
SEED = int(os.environ.get("CHAOS_SEED", "402"))
# Submissions are spread over at least ~15 s, so the pipeline works under fire the whole time.
SUBMIT_GAP = max(0.015, 15 / PAYMENTS)
COPIES = 2
FUNDED, UNFUNDED = 18, 2


@pytest.fixture
def chaos_db(pg_server: str) -> Iterator[str]:
    with scratch_database(pg_server, "x402_chaos") as url:
        migrate(url)
        yield url


def contracts(w3: Web3, usdc: str, token: str) -> tuple[Any, Any]:
    return (
        w3.eth.contract(address=Web3.to_checksum_address(usdc), abi=load_artifact("TestUSDC").abi),
        w3.eth.contract(address=Web3.to_checksum_address(token), abi=load_artifact("MintToken").abi),
    )


def database_fault(pg_server: str, database_url: str) -> str:
    """Restart the server if it is ours, else cut every connection to the chaos database."""
    if not os.environ.get("TEST_PG_URL"):
        postgres.restart()
        return "restart"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
            " AND pid <> pg_backend_pid()",
            (database_url.rsplit("/", 1)[1],),
        )
    return "terminate_backends"


def test_chaos(
    settings: Settings,
    devchain: Chain,
    deployment: Deployment,
    pg_server: str,
    chaos_db: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    rng = random.Random(SEED)
    w3 = devchain.w3
    deployer = anvil.dev_account(anvil.DEPLOYER).address
    payment_relayer, mint_relayer = anvil.dev_account(3), anvil.dev_account(4)
    token = deploy.deploy_token(
        w3,
        deployer,
        deployment.usdc.address,
        minter=mint_relayer.address,
        symbol="CHAOS",
        max_mint_count=100_000,
    )
    deploy.register_token(chaos_db, deploy.read_token(w3, token.address))
    usdc, mint_token = contracts(w3, deployment.usdc.address, token.address)
    # Each stage runs a pool of two keys (claims take them in turn).
    payment_pool, mint_pool = [payment_relayer, Account.create()], [mint_relayer, Account.create()]
    for extra in (payment_pool[1], mint_pool[1]):
        w3.provider.make_request("anvil_setBalance", [extra.address, hex(10**20)])  # type: ignore[arg-type]
    granted = mint_token.functions.grantRole(mint_token.functions.MINTER_ROLE().call(), mint_pool[1].address)
    assert w3.eth.wait_for_transaction_receipt(granted.transact({"from": deployer}))["status"] == 1
    buyers = [Account.create() for _ in range(FUNDED + UNFUNDED)]
    deploy.fund(w3, deployer, deployment.usdc.address, [b.address for b in buyers[:FUNDED]], 10_000 * 10**6)
    usdc_before = usdc.functions.balanceOf(mint_token.address).call()

    cfg = replace(settings, database_url=chaos_db)
    with TestClient(create_app(cfg)) as client:
        offers = {
            q: client.post(f"/api/mint/{token.address}", json={"quantity": q}).json()["accepts"][0]
            for q in range(1, 11)
        }
        orders = []
        for i in range(PAYMENTS):
            quantity, buyer = rng.randint(1, 10), buyers[i % len(buyers)]
            orders.append((quantity, sign_payment(offers[quantity], buyer.key.hex(), chain_id=CHAIN_ID)))

        proxy = FaultyProxy(free_port(38545), int(devchain.rpc_url.rsplit(":", 1)[1]), seed=SEED).start()
        # The stages run under the real supervisord.conf, two processes each (numprocs): killed, they
        # are restarted by supervisord alone.
        sup = launch(
            tmp_path,
            cfg,
            copies=COPIES,
            RPC_URL=f"http://127.0.0.1:{proxy.port}",
            PAYMENT_RELAYER_KEYS=",".join(k.key.hex() for k in payment_pool),
            MINT_RELAYER_KEYS=",".join(k.key.hex() for k in mint_pool),
            LEASE_SECONDS="5",
            REBROADCAST_AFTER_SECONDS="2",
            STUCK_AFTER_SECONDS="20",
            RPC_TIMEOUT_SECONDS="3",
            RETRY_CAP_SECONDS="2",
            DRAIN_SECONDS="5",
            LOG_FORMAT="json",
        )
        request.addfinalizer(lambda: sup.ctl("shutdown"))
        wait_running(sup)
        kills = 0

        accepted: list[str] = []
        submit_errors: dict[int, int] = {}

        def submit() -> None:
            for quantity, header in orders:
                while True:
                    try:
                        reply = client.post(
                            f"/api/mint/{token.address}",
                            json={"quantity": quantity},
                            headers={"X-PAYMENT": header},
                        )
                    except Exception:
                        reply = None
                    if reply is not None and reply.status_code in (202, 409):
                        accepted.append(reply.json()["paymentQueueId"])
                        break
                    code = reply.status_code if reply is not None else 0
                    submit_errors[code] = submit_errors.get(code, 0) + 1
                    time.sleep(0.2)
                time.sleep(rng.uniform(0, 2 * SUBMIT_GAP))

        proxy.fail_rate, proxy.delay_rate, proxy.delay = 0.1, 0.05, 0.4
        chaos_started = time.monotonic()
        submitter = threading.Thread(target=submit, daemon=True)
        submitter.start()
        db_faults: list[str] = []

        def settling() -> bool:  # keep the faults on until half the work has gone through them
            done = query(
                cfg, "SELECT count(*) AS n FROM payment_queue WHERE status IN ('completed', 'failed')"
            )
            return int(done[0]["n"]) < PAYMENTS // 2 and time.monotonic() - chaos_started < 60

        while submitter.is_alive() or time.monotonic() - chaos_started < 15 or settling():
            time.sleep(rng.uniform(0.5, 2.0))
            stage_pids = {name: pid for name, pid in sup.pids().items() if name.split(":")[0] in STAGES}
            if stage_pids:
                os.kill(stage_pids[rng.choice(sorted(stage_pids))], signal.SIGKILL)
                kills += 1
            if not db_faults and time.monotonic() - chaos_started > 5:
                db_faults.append(database_fault(pg_server, chaos_db))
        submitter.join(120)
        chaos_seconds = time.monotonic() - chaos_started

        proxy.fail_rate = proxy.delay_rate = 0.0
        faults_stopped = time.monotonic()
        # Nobody restarts anything: every program must be RUNNING again by itself (never FATAL).
        running_deadline = faults_stopped + 60
        while set(sup.states().values()) != {"RUNNING"} and time.monotonic() < running_deadline:
            assert "FATAL" not in sup.states().values(), sup.states()
            time.sleep(0.5)
        states = sup.states()
        assert set(states.values()) == {"RUNNING"}, states
        assert len([name for name in states if name.split(":")[0] in STAGES]) == COPIES * len(STAGES)
        deadline = faults_stopped + 240

        def open_items() -> int:
            rows = query(
                cfg,
                "SELECT (SELECT count(*) FROM payment_queue WHERE status NOT IN ('completed', 'failed'))"
                " + (SELECT count(*) FROM mint_queue WHERE status NOT IN ('completed', 'failed')) AS n",
            )
            return int(rows[0]["n"])

        while open_items() and time.monotonic() < deadline:
            time.sleep(0.5)
        drain_seconds = time.monotonic() - faults_stopped
        sup.ctl("shutdown")
        proxy.stop()

    # ---- invariants -------------------------------------------------------------------------------
    assert open_items() == 0, "still open after the faults stopped: " + json.dumps(
        query(
            cfg,
            "SELECT 'payment' AS kind, id::text, status::text, attempts, last_error, error, chain_tx_id,"
            " updated_at::text FROM payment_queue WHERE status NOT IN ('completed', 'failed')"
            " UNION ALL SELECT 'mint', id::text, status::text, attempts, last_error, error, chain_tx_id,"
            " updated_at::text FROM mint_queue WHERE status NOT IN ('completed', 'failed')",
        )
        + query(
            cfg,
            "SELECT id, state::text, purpose, nonce, from_address, broadcast_count, last_error,"
            " cancel_reason, locked_until::text FROM chain_txs WHERE state = 'unconfirmed'",
        ),
        default=str,
    )
    assert len(set(accepted)) == PAYMENTS
    payments = query(
        cfg,
        "SELECT p.id, p.payer, p.quantity, p.amount, p.nonce, p.status::text AS status,"
        " (SELECT count(*) FROM mint_queue m WHERE m.payment_id = p.id) AS mints,"
        " (SELECT count(*) FROM mint_queue m WHERE m.payment_id = p.id AND m.status = 'completed')"
        " AS minted FROM payment_queue p",
    )
    completed = [p for p in payments if p["status"] == "completed"]
    failed = [p for p in payments if p["status"] == "failed"]
    unfunded = {b.address.lower() for b in buyers[FUNDED:]}
    assert {p["payer"] for p in failed} <= unfunded  # only those who could not pay failed
    assert all(p["payer"] not in unfunded for p in completed)
    assert all(p["mints"] == p["minted"] == p["quantity"] for p in completed)  # exactly quantity each
    assert all(p["mints"] == 0 for p in failed)  # no mint for a payment that did not pay
    for p in failed:  # no payment whose USDC reached the contract ends failed
        assert not usdc.functions.authorizationState(
            Web3.to_checksum_address(p["payer"]), bytes.fromhex(p["nonce"][2:])
        ).call()
    received = usdc.functions.balanceOf(mint_token.address).call() - usdc_before
    assert received == sum(int(p["amount"]) for p in completed)
    for buyer in buyers:
        units = sum(p["quantity"] for p in completed if p["payer"] == buyer.address.lower())
        assert mint_token.functions.balanceOf(buyer.address).call() == units * token.mint_amount
    assert mint_token.functions.mintCount().call() == sum(p["quantity"] for p in completed)
    reverted = query(
        cfg, "SELECT count(*) AS n FROM chain_txs WHERE purpose = 'payment' AND state = 'reverted'"
    )
    assert reverted[0]["n"] == 0  # no authorization was ever submitted after it was used

    report = {
        "payments": PAYMENTS,
        "completed": len(completed),
        "failed_unfunded": len(failed),
        "mints": sum(p["quantity"] for p in completed),
        "stage_processes": COPIES * len(STAGES),
        "sigkills": kills,
        "programs_running_by_themselves_after_faults": sorted(states),
        "rpc_connections": proxy.stats.connections,
        "rpc_requests": proxy.stats.requests,
        "rpc_requests_while_faulty": proxy.stats.requests_under_faults,
        "rpc_faults_dropped": proxy.stats.dropped,
        "rpc_faults_delayed": proxy.stats.delayed,
        "db_faults": db_faults,
        "api_retries_during_faults": submit_errors,
        "chaos_seconds": round(chaos_seconds, 1),
        "drain_seconds_after_faults": round(drain_seconds, 1),
        "invariants": "all hold",
    }
    print("\nCHAOS REPORT " + json.dumps(report))
    (tmp_path / "chaos-report.json").write_text(json.dumps(report, indent=2))
