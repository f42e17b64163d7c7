"""Prometheus metrics each process keeps (prometheus-client), named by Prometheus' conventions: prefix
`x402mint_`, the unit in the name, `_total` counters, histograms for durations and sizes.

Under supervisord every process writes its figures to PROMETHEUS_MULTIPROC_DIR (set in
supervisord.conf, emptied by `dev up`) and the exporter adds them up (prometheus-client's
multiprocess mode): a process that restarts keeps the figures it had, and nobody else's are lost.
Queue, money and health figures are not kept here: the exporter reads them from PostgreSQL at each
scrape (shared/db/gauges.py), so they are right with any number of processes on any number of hosts.
"""

from __future__ import annotations

import os

from prometheus_client import Counter, Histogram

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # each process writes its figures there: it must exist
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
SETTLE_SECONDS = (0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300, 600)
BATCH_SIZES = (1, 2, 5, 10, 20, 50, 100, 200)

# api
payments_accepted = Counter(
    "x402mint_payments_accepted_total",
    "Payments queued (202; a retry of one is not counted again), by x402 version",
    ["version"],
)
payments_refused = Counter("x402mint_payments_refused_total", "Payments refused, by reason code", ["reason"])
accept_seconds = Histogram(
    "x402mint_accept_duration_seconds",
    "Time to answer a paid POST /api/mint, by outcome (accepted: the 202; refused: any refusal)",
    ["outcome"],
    buckets=SECONDS,
)

# stages
batch_size = Histogram(
    "x402mint_claim_batch_size", "Rows a stage claimed at once", ["stage"], buckets=BATCH_SIZES
)
transactions_broadcast = Counter(
    "x402mint_transactions_broadcast_total",
    "Broadcasts of stored transactions, by what was sent (the log event) and the node's answer",
    ["event", "outcome"],
)
transactions_bumped = Counter(
    "x402mint_transactions_fee_bumped_total", "Transactions re-signed with higher fees", ["stage"]
)
transactions_dropped = Counter(
    "x402mint_transactions_dropped_total",
    "Transactions whose work went back to be sent again (nonce taken, cancelled, reorged away)",
    ["purpose", "state"],
)
payment_paid_seconds = Histogram(
    "x402mint_payment_paid_seconds",
    "From the 202 to the payment's transfer found at depth",
    buckets=SETTLE_SECONDS,
)
mint_seconds = Histogram(
    "x402mint_mint_seconds",
    "From a payment paid to one of its mints on chain at depth",
    buckets=SETTLE_SECONDS,
)

# the chain
rpc_seconds = Histogram(
    "x402mint_rpc_request_duration_seconds",
    "JSON-RPC requests, by method and endpoint (a batch counts as method 'batch')",
    ["method", "endpoint"],
    buckets=SECONDS,
)
rpc_errors = Counter(
    "x402mint_rpc_errors_total",
    "JSON-RPC requests that got no answer, by method and endpoint",
    ["method", "endpoint"],
)
