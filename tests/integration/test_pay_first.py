"""Pay first, mint after: no mint row exists while its payment is unconfirmed, and the database
itself refuses one."""

from __future__ import annotations

import time

import psycopg
import pytest
from starlette.testclient import TestClient

from cli.devnet import anvil
from shared.config import Settings
from tests.integration.conftest import Chain, Deployment, Pipeline
from tests.integration.helpers import buy, wait_for

pytestmark = pytest.mark.chain


def payment_and_mints(settings: Settings, payment_id: str) -> tuple[str, int]:
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute(
            "SELECT status::text, (SELECT count(*) FROM mint_queue WHERE payment_id = p.id)"
            " FROM payment_queue p WHERE id = %s",
            (payment_id,),
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_no_mint_row_until_the_payment_is_mined(
    client: TestClient,
    pipeline: Pipeline,
    devchain: Chain,
    deployment: Deployment,
    settings: Settings,
    manual_mining: None,
) -> None:
    payment_id = buy(client, deployment.token.address, anvil.dev_account(14).key.hex(), 4)
    deadline = time.monotonic() + 30
    while payment_and_mints(settings, payment_id)[0] != "sent" and time.monotonic() < deadline:
        time.sleep(0.1)
    # Broadcast but not mined: the confirmer keeps looking and must create nothing.
    for _ in range(10):
        assert payment_and_mints(settings, payment_id) == ("sent", 0)
        time.sleep(0.2)
    devchain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    devchain.w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    status = wait_for(client, payment_id)
    assert status["status"] == "completed"
    assert [m["status"] for m in status["result"]["mints"]] == ["completed"] * 4


def test_database_refuses_a_mint_row_for_an_unpaid_payment(
    client: TestClient, deployment: Deployment, settings: Settings
) -> None:
    payment_id = buy(client, deployment.token.address, anvil.dev_account(15).key.hex(), 1)
    with psycopg.connect(settings.database_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO mint_queue (payment_id, mint_index, mint_id, token_address, recipient)"
            " SELECT id, 0, '0x' || repeat('ab', 32), token_address, recipient"
            " FROM payment_queue WHERE id = %s",
            (payment_id,),
        )


def test_completed_payment_cannot_be_moved_back(
    client: TestClient, pipeline: Pipeline, deployment: Deployment, settings: Settings
) -> None:
    payment_id = buy(client, deployment.token.address, anvil.dev_account(15).key.hex(), 1)
    assert wait_for(client, payment_id)["status"] == "completed"
    with psycopg.connect(settings.database_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("UPDATE payment_queue SET status = 'failed' WHERE id = %s", (payment_id,))
