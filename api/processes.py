"""The API's processes: API_WORKERS uvicorn servers, each with its own listening socket on the same
port (SO_REUSEPORT), so the kernel spreads new connections evenly over them — instead of one shared
socket that whichever process wakes first drains, leaving one busy with most keep-alive connections
while another idles.

The parent only supervises: it starts the workers, starts again one that dies, and on SIGTERM or
SIGINT passes the signal on and waits for them to drain. A worker whose parent is gone (killed with
SIGKILL) stops by itself, so a restarted API never shares its port with orphans.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from multiprocessing.context import SpawnProcess

import structlog

log = structlog.get_logger()
RESTART_DELAY_SECONDS = 1.0
ORPHAN_CHECK_SECONDS = 1.0


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A socket of its own on host:port, shared with the other workers' through SO_REUSEPORT."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it a keep-alive answer written in two parts waits for the client's delayed ACK (40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def stop_when_orphaned(parent: int) -> None:
    """In a worker: SIGTERM itself (a graceful stop) once its parent is gone."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(ORPHAN_CHECK_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True, name="orphan-watch").start()


def supervise(target: Callable[[int], None], workers: int, drain_seconds: float) -> None:
    """Run `workers` processes of `target(parent_pid)` until SIGTERM/SIGINT; restart any that dies."""
    spawn = multiprocessing.get_context("spawn")
    stop = threading.Event()
    parent = os.getpid()

    def start() -> SpawnProcess:
        process = spawn.Process(target=target, args=(parent,), daemon=False)
        process.start()
        return process

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    running = [start() for _ in range(workers)]
    log.info("api_workers_started", workers=workers, pids=[p.pid for p in running])
    while not stop.wait(0.5):
        for i, process in enumerate(running):
            if not process.is_alive():
                log.warning("api_worker_exited", pid=process.pid, exitcode=process.exitcode)
                stop.wait(RESTART_DELAY_SECONDS)
                if not stop.is_set():
                    running[i] = start()
    for process in running:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + drain_seconds + 5
    for process in running:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
    log.info("api_workers_stopped")
