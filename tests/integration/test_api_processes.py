"""`x402-mint api` with API_WORKERS=2: two uvicorn processes, each listening on the port with its own
socket (SO_REUSEPORT), under one supervising parent that starts again a worker that dies, passes
SIGTERM on, and whose workers stop by themselves if it is killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cli.devnet.paths import PROJECT_ROOT, free_port
from shared.config import Settings
from tests.integration.helpers import wait_until

pytestmark = pytest.mark.chain


def children(parent: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == parent and b"resource_tracker" not in cmdline:
                found.add(int(entry.name))
    return found


def listening_on(port: int, pids: set[int]) -> set[int]:
    """The processes among `pids` that hold a socket listening on 127.0.0.1:`port`."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":
            inodes.add(f"socket:[{fields[9]}]")
    holders = set()
    for pid in pids:
        try:
            fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        if inodes & set(fds):
            holders.add(pid)
    return holders


@pytest.fixture
def api(settings: Settings) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port(18750)
    env = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": settings.database_url,
        "CHAIN_ID": str(settings.chain_id),
        "API_PORT": str(port),
        "API_WORKERS": "2",
        "DRAIN_SECONDS": "3",
    }
    proc = subprocess.Popen([str(PROJECT_ROOT / "bin" / "x402-mint"), "api"], env=env)
    try:
        wait_until(lambda: len(listening_on(port, children(proc.pid))) == 2)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_two_workers_each_listen_and_one_that_dies_is_started_again(
    api: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, port = api
    workers = children(proc.pid)
    assert len(workers) == 2 and listening_on(port, workers) == workers
    for _ in range(50):  # fresh connections, spread by the kernel
        assert (
            httpx.get(f"http://127.0.0.1:{port}/healthz", headers={"Connection": "close"}).status_code == 200
        )
    dead = min(workers)
    os.kill(dead, signal.SIGKILL)
    wait_until(lambda: len(listening_on(port, children(proc.pid))) == 2 and dead not in children(proc.pid))
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    wait_until(lambda: not listening_on(port, workers | children(proc.pid)), timeout=10)


def test_workers_of_a_killed_parent_stop_by_themselves(api: tuple[subprocess.Popen[bytes], int]) -> None:
    proc, _ = api
    workers = children(proc.pid)
    proc.kill()
    proc.wait(10)
    wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), timeout=20)
