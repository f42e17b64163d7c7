"""The metrics exposition: the figures PostgreSQL holds (queues, ages, stuck, paid-not-minted, review,
refunds owed, supply per token, relayer gas money and nonce gaps, RPC endpoint health), read at each
scrape so they are right with any number of processes on any number of hosts, beside the per-process
counters and histograms (shared/metrics.py) of every process writing to PROMETHEUS_MULTIPROC_DIR.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from psycopg.rows import dict_row

from shared.db.queries import q

# The classic text format every Prometheus reads (our names are plain ASCII: nothing needs 1.0.0).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


STATEMENT_TIMEOUT = "-c statement_timeout=5000"  # a scrape must not load the database for long


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"x402mint_{name}", doc, labels=labels)


class DatabaseCollector(Collector):
    """Gauges read from PostgreSQL at each scrape; `x402mint_database_up` says whether it answered."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = _gauge("database_up", "Whether PostgreSQL answered this scrape")
        try:
            with psycopg.connect(
                self.database_url, row_factory=dict_row, connect_timeout=3, options=STATEMENT_TIMEOUT
            ) as conn:
                families = list(self._families(conn))
        except psycopg.Error:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self, conn: psycopg.Connection[dict[str, object]]) -> Iterator[GaugeMetricFamily]:
        depth = _gauge("queue_depth", "Rows by queue and status", ["queue", "status"])
        for r in conn.execute(q("gauge_queue_depth")):
            depth.add_metric([str(r["queue"]), str(r["status"])], float(r["n"]))  # type: ignore[arg-type]
        yield depth
        age = _gauge(
            "oldest_item_age_seconds", "Age of the oldest row of each active status", ["queue", "status"]
        )
        for r in conn.execute(q("gauge_oldest_age")):
            age.add_metric([str(r["queue"]), str(r["status"])], float(r["seconds"]))  # type: ignore[arg-type]
        yield age
        money = conn.execute(q("gauge_money")).fetchone() or {}
        for key, doc in (
            ("stuck", "Payments sent more than 5 minutes ago and not settled (the seed's stuck query)"),
            ("paid_not_minted", "Paid payments whose mints are not all completed (in flight included)"),
            ("paid_not_minted_late", "Paid payments with a mint not completed 5 minutes after the payment"),
            ("needs_review", "Payments waiting for an operator's decision (x402-mint resolve)"),
            ("refund_owed", "Payments whose money is owed back (x402-mint refund)"),
        ):
            family = _gauge(f"{key}_payments", doc)
            family.add_metric([], float(money.get(key) or 0))  # type: ignore[arg-type]
            yield family
        reserved = _gauge(
            "supply_reserved_mints", "Mint units reserved by accepted payments", ["token", "symbol"]
        )
        available = _gauge("supply_available_mints", "Mint units still for sale", ["token", "symbol"])
        for r in conn.execute(q("token_supply_view")):
            labels = [str(r["address"]), str(r["symbol"])]
            reserved.add_metric(labels, float(r["reserved_mints"]))  # type: ignore[arg-type]
            available.add_metric(labels, float(r["available_mints"]))  # type: ignore[arg-type]
        yield reserved
        yield available
        balance = _gauge("relayer_balance_wei", "Gas money of each relayer key", ["stage", "relayer"])
        gaps = _gauge(
            "relayer_nonce_gaps",
            "Nonces allocated, not mined, with no stored transaction",
            ["stage", "relayer"],
        )
        for r in conn.execute(q("gauge_relayers")):
            labels = [str(r["stage"]), str(r["address"])]
            balance.add_metric(labels, float(r["balance_wei"]))  # type: ignore[arg-type]
            gaps.add_metric(labels, float(r["nonce_gaps"]))  # type: ignore[arg-type]
        yield balance
        yield gaps
        endpoint_up = _gauge(
            "rpc_endpoint_up", "1 while every stage process can use the endpoint", ["endpoint"]
        )
        lag = _gauge(
            "rpc_endpoint_lag_blocks", "Blocks the endpoint is behind the best head seen", ["endpoint"]
        )
        for r in conn.execute(q("gauge_rpc_endpoints")):
            endpoint_up.add_metric([str(r["endpoint"])], 1.0 if r["up"] else 0.0)
            lag.add_metric([str(r["endpoint"])], float(r["lag"] or 0))  # type: ignore[arg-type]
        yield endpoint_up
        yield lag


def scrape_registry(database_url: str) -> CollectorRegistry:
    """The database's gauges, and every process's own metrics when they write to a multiprocess
    directory (PROMETHEUS_MULTIPROC_DIR)."""
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(database_url))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def exposition(database_url: str) -> bytes:
    """The whole scrape: every process's own metrics (the multiprocess directory when there is one,
    else this process's) and the database's gauges."""
    scraped = generate_latest(scrape_registry(database_url))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return scraped
    return generate_latest(REGISTRY) + scraped
