"""Supply reservations spread over slots (0009): the home-slot path, the rebalance path, release on
failure and retake on requeue, group commit outcomes, and exactness under concurrent groups.

These talk to PostgreSQL only: the database does not check signatures, so payments are made up."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from api.payment_writer import NewPayment, batch_params
from shared.db.migrations import MIGRATIONS_DIR, migrate
from shared.db.queries import q
from tests.integration.conftest import scratch_database

ASSET = "0x" + "a5" * 20
SLOTS = 16


@pytest.fixture(autouse=True)
def made_up_payments_never_reach_the_stages(database_url: str) -> Iterator[None]:
    """The payments made up here share the session's database with tests that run the stages: once a
    test is done with them, they end (a made-up asset has no code, so a call to it "succeeds" and
    moves nothing: left pending, they would ride along in other tests' transactions)."""
    yield
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE payment_queue SET status = 'failed', error = 'made up by test_supply_slots'"
            " WHERE asset = %s AND status IN ('pending', 'processing')",
            (ASSET,),
        )


def address() -> str:
    return "0x" + os.urandom(20).hex()


def new_token(url: str, max_mint_count: int) -> str:
    token = address()
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO tokens (address, chain_id, symbol, asset, asset_name, asset_version,"
            " asset_decimals, price_per_mint, mint_amount, max_mint_count)"
            " VALUES (%s, 1, 'SLOT', %s, 'USD Coin', '2', 6, 1, 1, %s)",
            (token, ASSET, max_mint_count),
        )
    return token


def payment(token: str, quantity: int = 1, payer: str | None = None, nonce: str | None = None) -> NewPayment:
    payer = payer or address()
    return NewPayment(
        token_address=token,
        asset=ASSET,
        payer=payer,
        recipient=payer,
        quantity=quantity,
        amount=quantity,
        nonce=nonce or "0x" + os.urandom(32).hex(),
        valid_after=0,
        valid_before=2**48,
        signature="0x" + "00" * 65,
        payment_header="test",
    )


def connect(url: str, cap: int | None = None) -> psycopg.Connection[dict[str, Any]]:
    options = f"-c x402.max_pending_per_payer={cap}" if cap is not None else ""
    return psycopg.connect(url, autocommit=True, row_factory=dict_row, options=options)


def accept(url: str, payments: list[NewPayment], cap: int | None = None) -> list[tuple[str, str | None]]:
    with connect(url, cap) as conn:
        rows = conn.execute(q("accept_payments"), batch_params(payments)).fetchall()
    assert [r["ord"] for r in rows] == list(range(1, len(payments) + 1))
    return [(r["outcome"], None if r["payment_id"] is None else str(r["payment_id"])) for r in rows]


def slots(url: str, token: str) -> list[int]:
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT available FROM token_supply_slots WHERE token_address = %s ORDER BY slot", (token,)
        ).fetchall()
    return [int(r["available"]) for r in rows]


def reservations(url: str, token: str) -> dict[str, Any]:
    with connect(url) as conn:
        row = conn.execute("SELECT * FROM token_reservations WHERE address = %s", (token,)).fetchone()
    assert row is not None
    return row


def stored(url: str, token: str) -> int:
    with connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM payment_queue WHERE token_address = %s", (token,)
        ).fetchone()
    assert row is not None
    return int(row["n"])


def set_status(url: str, payment_id: str, status: str) -> None:
    with connect(url) as conn:
        conn.execute("UPDATE payment_queue SET status = %s WHERE id = %s", (status, payment_id))


def test_a_new_token_spreads_its_supply_over_the_slots(database_url: str) -> None:
    token = new_token(database_url, 100)
    assert slots(database_url, token) == [7] * 4 + [6] * 12
    r = reservations(database_url, token)
    assert (r["max_mint_count"], r["reserved_mints"], r["available_mints"]) == (100, 0, 100)


def test_a_payment_no_slot_can_hold_is_accepted_by_a_rebalance(database_url: str) -> None:
    token = new_token(database_url, 20)  # 4 slots of 2 and 12 of 1: no slot holds 3
    assert max(slots(database_url, token)) == 2
    assert accept(database_url, [payment(token, 3)])[0][0] == "accepted"
    after = slots(database_url, token)
    assert sum(after) == 17 and max(after) - min(after) <= 1  # what was left, spread evenly
    assert reservations(database_url, token)["reserved_mints"] == 3


def test_sold_out_is_exact_however_the_supply_is_spread(database_url: str) -> None:
    token = new_token(database_url, 16)  # one unit in every slot
    assert accept(database_url, [payment(token, 10)])[0][0] == "accepted"
    assert accept(database_url, [payment(token, 7)])[0][0] == "sold_out"  # 6 left, spread
    assert accept(database_url, [payment(token, 6)])[0][0] == "accepted"  # exactly what is left
    assert accept(database_url, [payment(token, 1)])[0][0] == "sold_out"
    assert slots(database_url, token) == [0] * SLOTS
    assert stored(database_url, token) == 2  # nothing stored for the refusals


def test_a_failed_payment_gives_back_and_a_requeued_one_takes_again(database_url: str) -> None:
    token = new_token(database_url, 7)
    ((_, first),) = accept(database_url, [payment(token, 5)])
    ((_, second),) = accept(database_url, [payment(token, 2)])
    assert first and second and reservations(database_url, token)["available_mints"] == 0
    set_status(database_url, first, "failed")
    assert reservations(database_url, token)["available_mints"] == 5
    (outcome, third) = accept(database_url, [payment(token, 4)])[0]
    assert outcome == "accepted" and third
    with pytest.raises(psycopg.Error) as refused:  # only 1 left for its 5
        set_status(database_url, first, "pending")
    assert refused.value.sqlstate == "XM001"
    set_status(database_url, third, "failed")
    set_status(database_url, first, "pending")  # 5 free again: the requeue takes them
    assert reservations(database_url, token)["available_mints"] == 0
    assert reservations(database_url, token)["reserved_mints"] == 7
    set_status(database_url, second, "failed")
    set_status(database_url, second, "failed")  # failed → failed gives nothing back twice
    assert reservations(database_url, token)["available_mints"] == 2


def test_a_failure_statement_over_many_payments_releases_them_all(database_url: str) -> None:
    token = new_token(database_url, 50)
    assert [o for o, _ in accept(database_url, [payment(token, 2) for _ in range(20)])] == ["accepted"] * 20
    with connect(database_url) as conn:
        conn.execute("UPDATE payment_queue SET status = 'failed' WHERE token_address = %s", (token,))
    assert reservations(database_url, token)["available_mints"] == 50


def test_each_payment_of_a_group_gets_its_own_outcome(database_url: str) -> None:
    token = new_token(database_url, 10)
    capped = address()
    (_, earlier) = accept(database_url, [payment(token, 1, payer=capped)], cap=2)[0]
    existing = payment(token, 1)
    (_, existing_id) = accept(database_url, [existing])[0]
    twin = payment(token, 1)
    group = [
        payment(token, 1, payer=capped),  # accepted: the payer's second open payment
        twin,  # accepted
        twin,  # duplicate of the one just before, in the same group
        existing,  # duplicate of a payment queued before
        payment(token, 1, payer=capped),  # too_many_open: a third open payment, cap 2
        payment(token, 9),  # sold_out: 10 - 2 (before) - 2 (this group) = 6 left
        payment(token, 6),  # accepted: exactly what is left
    ]
    results = accept(database_url, group, cap=2)
    assert [o for o, _ in results] == [
        "accepted",
        "accepted",
        "duplicate",
        "duplicate",
        "too_many_open",
        "sold_out",
        "accepted",
    ]
    assert results[2][1] == results[1][1] and results[3][1] == existing_id
    assert results[4][1] is None and results[5][1] is None and earlier
    assert stored(database_url, token) == 2 + 3
    r = reservations(database_url, token)
    assert (r["reserved_mints"], r["available_mints"]) == (10, 0)


def test_a_group_with_nothing_refused_is_stored_whole(database_url: str) -> None:
    tokens = sorted([new_token(database_url, 1000), new_token(database_url, 1000)], reverse=True)
    group = [payment(tokens[i % 2], 1 + i % 3) for i in range(30)]
    assert {o for o, _ in accept(database_url, group, cap=10)} == {"accepted"}
    for token in tokens:
        wanted = sum(p.quantity for p in group if p.token_address == token)
        assert reservations(database_url, token)["reserved_mints"] == wanted


def test_concurrent_groups_never_oversell_and_never_deadlock(database_url: str) -> None:
    """Eight connections insert groups of one scarce token at once (and payers recur, so the payer
    locks are contended too): the accepted quantities add up to the supply exactly, and every refusal
    asked for more than was left."""
    supply = 60
    token = new_token(database_url, supply)
    payers = [address() for _ in range(6)]
    results: list[tuple[NewPayment, str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def buyer(n: int) -> None:
        try:
            for round_ in range(6):
                group = [
                    payment(token, 1 + (n + round_ + i) % 4, payer=payers[(n + i) % len(payers)])
                    for i in range(5)
                ]
                outcomes = accept(database_url, group, cap=1000)
                with lock:
                    results.extend((p, o) for p, (o, _) in zip(group, outcomes, strict=True))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=buyer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    accepted = sum(p.quantity for p, o in results if o == "accepted")
    left = reservations(database_url, token)["available_mints"]
    assert accepted + left == supply and accepted <= supply
    refused = [p.quantity for p, o in results if o == "sold_out"]
    assert refused and all(quantity > left for quantity in refused)
    assert {o for _, o in results} <= {"accepted", "sold_out"}
    assert stored(database_url, token) == sum(1 for _, o in results if o == "accepted")


def test_max_mint_count_changes_move_free_supply_only(database_url: str) -> None:
    token = new_token(database_url, 10)
    accept(database_url, [payment(token, 8)])
    with connect(database_url) as conn:
        conn.execute("UPDATE tokens SET max_mint_count = 30 WHERE address = %s", (token,))
        assert reservations(database_url, token)["available_mints"] == 22
        conn.execute("UPDATE tokens SET max_mint_count = 8, symbol = 'X' WHERE address = %s", (token,))
        assert reservations(database_url, token)["available_mints"] == 0
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE tokens SET max_mint_count = 7 WHERE address = %s", (token,))
        conn.execute("UPDATE tokens SET symbol = 'Y' WHERE address = %s", (token,))  # no change
    assert sum(slots(database_url, token)) == 0


@pytest.fixture
def database_at_0007(pg_server: str, tmp_path: Path) -> Iterator[str]:
    older = tmp_path / "migrations"
    older.mkdir()
    for path in MIGRATIONS_DIR.glob("*.sql"):
        if int(path.name[:4]) <= 7:
            shutil.copy(path, older / path.name)
    with scratch_database(pg_server, "x402_slots") as url:
        migrate(url, older)
        yield url


def test_the_migration_carries_reservations_into_the_slots(database_at_0007: str) -> None:
    url = database_at_0007
    token = new_token(url, 100)
    with connect(url) as conn:
        for quantity, status in ((3, "pending"), (4, "sent"), (5, "failed")):
            p = payment(token, quantity)
            conn.execute(
                "INSERT INTO payment_queue (token_address, asset, payer, recipient, quantity, amount,"
                " nonce, valid_after, valid_before, signature, payment_header)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, 0, 1, '0x', 'h') RETURNING id",
                (token, ASSET, p.payer, p.recipient, quantity, quantity, p.nonce),
            )
            if status != "pending":
                conn.execute("UPDATE payment_queue SET status = %s WHERE nonce = %s", (status, p.nonce))
        reserved = conn.execute("SELECT reserved_mints FROM tokens WHERE address = %s", (token,)).fetchone()
    assert reserved is not None and reserved["reserved_mints"] == 7
    migrate(url)
    r = reservations(url, token)
    assert (r["reserved_mints"], r["available_mints"]) == (7, 93)
    assert sum(slots(url, token)) == 93


def test_the_writer_answers_each_payment_of_concurrent_groups(database_url: str) -> None:
    """PaymentWriter on a real pool: 30 payments at once (groups form while a write is in flight),
    some of them twice; 7 mints for sale."""
    import asyncio

    from api.payment_writer import PaymentWriter
    from shared.db.pools import open_async_pool

    token = new_token(database_url, 7)
    payments = [payment(token, 1) for _ in range(20)]
    sent = payments + payments[:10]

    async def go() -> list[Any]:
        pool = await open_async_pool(
            database_url, max_size=4, session_settings={"x402.max_pending_per_payer": "10"}
        )
        writer = PaymentWriter(pool, batch_size=8, writers=2)
        try:
            return await asyncio.gather(*(writer.write(p) for p in sent))
        finally:
            await writer.close()
            await pool.close()

    results = asyncio.run(go())
    accepted = [r.payment_id for r in results if r.outcome == "accepted"]
    assert len(accepted) == 7 and len(set(accepted)) == 7
    assert {r.outcome for r in results} <= {"accepted", "sold_out", "duplicate"}
    for first, again in zip(results[:10], results[20:], strict=True):
        assert again.outcome in ({"duplicate"} if first.outcome == "accepted" else {"accepted", "sold_out"})
        if first.outcome == "accepted":
            assert again.payment_id == first.payment_id
    assert stored(database_url, token) == 7 and reservations(database_url, token)["available_mints"] == 0
