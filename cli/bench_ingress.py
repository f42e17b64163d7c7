"""`x402-mint bench ingress`: the API under wrk — keep-alive connections (1, 16 and 1,000), then a
fresh connection per request (16 and 1,000 at once).

Payments are pre-signed before the clock starts, each by its own fresh key (no payment is sent
twice, and no per-payer cap applies), for a benchmark token with ample supply. Each phase is
followed by the same load on GET /healthz, so the ratio means something on a shared, noisy machine.
payment-sender is stopped while it runs (the benchmark's buyers hold no USDC; their payments are
marked failed afterwards, which is what the pre-flight would conclude) and started again; so is the
dev environment's settlement backlog limit (with nothing leaving the backlog it would turn every
payment away once that many wait): the API runs without it meanwhile, and with it again after.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import typer

from cli.buyer import answer_402
from cli.devnet.paths import ENV_FILE
from shared.db.queries import q

SCRIPT = Path(__file__).resolve().parent / "bench_scripts" / "replay.lua"
# (connections, fresh connection per request, seconds, payments signed): enough never to run out
PHASES = (
    (1, False, 10, 30_000),
    (16, False, 10, 30_000),
    (1000, False, 15, 60_000),
    (16, True, 10, 30_000),
    (1000, True, 15, 40_000),
)
WRK_TIMEOUT = "10s"  # long enough to measure a tail, as the targets ask


def _sign_batch(args: tuple[dict[str, str], dict[str, Any], int]) -> list[str]:
    headers, body, count = args
    lines = []
    for _ in range(count):
        name, value, _ = answer_402(headers, body, "0x" + os.urandom(32).hex())
        lines.append(f"{name}\t{value}")
    return lines


def presign(api_url: str, token: str, count: int) -> list[str]:
    offer = httpx.post(f"{api_url}/api/mint/{token}", json={"quantity": 1}, timeout=10)
    headers, body = dict(offer.headers), offer.json()
    workers = os.cpu_count() or 1
    with ProcessPoolExecutor(workers) as pool:
        chunks = pool.map(_sign_batch, [(headers, body, count // workers + 1)] * workers)
    return [line for chunk in chunks for line in chunk][:count]


def run_wrk(
    url: str, connections: int, seconds: int, requests_file: Path, path: str, *, fresh: bool = False
) -> dict[str, Any]:
    threads = min(2, connections)
    env = {
        **os.environ,
        "BENCH_REQUESTS": str(requests_file),
        "BENCH_PATH": path,
        "BENCH_BODY": '{"quantity": 1}',
        "BENCH_THREADS": str(threads),
        "BENCH_FRESH": "1" if fresh else "0",
    }
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            WRK_TIMEOUT,
            "-s",
            str(SCRIPT),
            url,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON "))
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
    return result


def describe(name: str, r: dict[str, Any], status: int) -> str:
    seconds = r["duration_us"] / 1e6
    ok = int(r["statuses"].get(str(status), 0))
    errors = sum(r["errors"].values())
    return (
        f"  {name:<9} {ok / seconds:8.0f} {'accepted' if status == 202 else 'ok'}/s  "
        f"p50 {r['p50_us'] / 1000:7.2f} ms  p95 {r['p95_us'] / 1000:7.2f}  p99 {r['p99_us'] / 1000:7.2f}  "
        f"max {r['max_us'] / 1000:8.2f}  statuses {r['statuses']}  socket errors {errors} {r['errors']}"
        + (f"  503 without Retry-After {r['503_without_retry_after']}" if status == 202 else "")
    )


def compare(mint: dict[str, Any], health: dict[str, Any]) -> str:
    """The figures the targets are stated in: 202s against /healthz's answers, tails against tails."""
    mint_rate = int(mint["statuses"].get("202", 0)) / (mint["duration_us"] / 1e6)
    health_rate = int(health["statuses"].get("200", 0)) / (health["duration_us"] / 1e6)
    answers = sum(int(n) for n in mint["statuses"].values())
    others = answers - int(mint["statuses"].get("202", 0))
    return (
        f"  202/healthz throughput {mint_rate / health_rate:.2f};  p99 mint/healthz "
        f"{mint['p99_us'] / max(1, health['p99_us']):.2f};  "
        f"not 202: {others / max(1, answers):.1%} of answers"
    )


def api_peak_rss_mib(supervisorctl: list[str]) -> float:
    pid = subprocess.run([*supervisorctl, "pid", "api"], capture_output=True, text=True).stdout.strip()
    if not pid.isdigit():
        return float("nan")
    pids = [pid, *subprocess.run(["pgrep", "-P", pid], capture_output=True, text=True).stdout.split()]
    total = 0
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total / 1024


def fail_benchmark_payments(database_url: str, token: str, chunk: int = 500) -> int:
    """Mark the benchmark's pending payments failed, a few thousand per transaction."""
    failed = 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        while done := conn.execute(q("fail_benchmark_payments"), {"token": token, "limit": chunk}).rowcount:
            failed += done
    return failed


@contextmanager
def without_backlog_limit(api_url: str, supervisorctl: list[str]) -> Iterator[None]:
    """The API without the dev environment's ADMISSION_MAX_BACKLOG while the block runs (restarted
    with ADMISSION_MAX_BACKLOG=0 in .dev/dev.env), then as it was."""
    from cli.dev import wait_for_api

    kept = ENV_FILE.read_text() if ENV_FILE.exists() else ""
    lines = [line for line in kept.splitlines() if not line.startswith("ADMISSION_MAX_BACKLOG=")]
    if len(lines) == len(kept.splitlines()):
        yield  # no limit set: nothing to lift
        return

    def restart_api(settings: str) -> None:
        ENV_FILE.write_text(settings)
        subprocess.run([*supervisorctl, "restart", "api"], capture_output=True)
        wait_for_api(api_url)

    restart_api("".join(f"{line}\n" for line in [*lines, "ADMISSION_MAX_BACKLOG=0"]))
    try:
        yield
    finally:
        restart_api(kept)


def ingress(state: dict[str, Any], token: str, supervisorctl: list[str]) -> None:
    if shutil.which("wrk") is None:
        raise typer.BadParameter("wrk is not installed: `make bench` installs it (apt-get install wrk)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    url, path = state["api_url"], f"/api/mint/{token}"
    version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1]
    typer.echo(
        f"load generator: wrk {version} (2 threads, Lua replay of pre-signed payments, "
        f"timeout {WRK_TIMEOUT}); "
        f"machine: {os.cpu_count()} cores"
    )
    subprocess.run([*supervisorctl, "stop", "payment-sender"], capture_output=True)
    try:
        with without_backlog_limit(url, supervisorctl), tempfile.TemporaryDirectory() as tmp:
            empty = Path(tmp) / "none.txt"
            empty.write_text("")
            only = {int(c) for c in os.environ.get("BENCH_CONNECTIONS", "").split(",") if c}
            modes = {m for m in os.environ.get("BENCH_MODES", "keep-alive,fresh").split(",") if m}
            for connections, fresh, seconds, count in PHASES:
                mode = "fresh" if fresh else "keep-alive"
                if (only and connections not in only) or mode not in modes:
                    continue
                typer.echo(
                    f"phase: {connections} connection(s), "
                    f"{'a fresh connection per request' if fresh else 'keep-alive'}, {seconds} s"
                    f" — signing {count} payments ..."
                )
                requests_file = Path(tmp) / f"payments-{connections}-{mode}.txt"
                requests_file.write_text("\n".join(presign(url, token, count)) + "\n")
                mint = run_wrk(url, connections, seconds, requests_file, path, fresh=fresh)
                health = run_wrk(url, connections, seconds, empty, path, fresh=fresh)
                typer.echo(describe("mint", mint, 202))
                typer.echo(describe("/healthz", health, 200))
                typer.echo(compare(mint, health))
        typer.echo(f"API peak RSS (all uvicorn processes): {api_peak_rss_mib(supervisorctl):.0f} MiB")
    finally:
        try:
            failed = fail_benchmark_payments(state["database_url"], token)
            typer.echo(f"marked {failed} benchmark payments failed")
        finally:
            subprocess.run([*supervisorctl, "start", "payment-sender"], capture_output=True)
            typer.echo("payment-sender started again")
