"""Operators' decisions about money: `x402-mint resolve` and `x402-mint refund`. Each re-checks the
chain before it changes anything (shared/settlement/review.py) and says why when it refuses."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import typer

from cli.settings import operator_settings
from shared.runtime import Runtime, open_runtime
from shared.settlement import review

_TX_HASH = re.compile(r"0x[0-9a-fA-F]{64}")


def _payment_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise typer.BadParameter("a payment id is a UUID") from exc


def _decide(decision: Callable[[Runtime], str]) -> str:
    """Runs an operator's decision; a refusal (the chain disagrees) exits 1 with its reason."""
    runtime = open_runtime(operator_settings())
    try:
        return decision(runtime)
    except review.Refused as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        runtime.close()


def resolve(
    payment_id: str = typer.Argument(..., help="A payment in needs_review."),
    paid_by: str = typer.Option("", "--paid-by", help="The transaction that carries its own transfer."),
    not_paid: bool = typer.Option(False, "--not-paid", help="It was not paid: fail it."),
    force: bool = typer.Option(
        False, "--force", help="With --not-paid: even though the node cannot search far enough to say."
    ),
) -> None:
    """Decide a payment the stages could not (needs_review): paid by a transaction (it completes with
    its mints, or is owed a refund if sold out), or not paid (it fails). Refused if the chain disagrees."""
    key = _payment_id(payment_id)
    if bool(paid_by) == not_paid:
        raise typer.BadParameter("give exactly one of --paid-by <tx hash> or --not-paid")
    if paid_by and not _TX_HASH.fullmatch(paid_by):
        raise typer.BadParameter("--paid-by takes a 0x-prefixed 32-byte transaction hash")
    status = _decide(
        lambda runtime: (
            review.resolve_paid_by(runtime, key, paid_by.lower())
            if paid_by
            else review.resolve_not_paid(runtime, key, force=force)
        )
    )
    typer.echo(f"payment {key} is now {status}")


def refund(
    payment_id: str = typer.Argument(..., help="A payment whose money arrived but can never be minted."),
    reason: str = typer.Option("ordered by an operator", help="Kept with the refund."),
    paid_by: str = typer.Option(
        "", "--paid-by", help="needs_review: the transaction that carries its own transfer (checked)."
    ),
) -> None:
    """Send a payment's money back to its payer (refund_owed; or needs_review that the chain shows
    paid, refunded instead of minted). refund-sender sends it; MintToken refunds a payment only once."""
    key = _payment_id(payment_id)
    if paid_by and not _TX_HASH.fullmatch(paid_by):
        raise typer.BadParameter("--paid-by takes a 0x-prefixed 32-byte transaction hash")
    done = _decide(lambda runtime: review.order_refund(runtime, key, reason, paid_by=paid_by.lower()))
    typer.echo(f"payment {key}: {done}")
