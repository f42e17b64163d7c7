"""Fault injection for tests: a TCP proxy in front of the JSON-RPC node that drops or delays a share
of traffic; JSON-RPC proxies that play nodes one should not trust (range-limited logs, lagging,
faulty, on another chain); and worker processes that can be killed with SIGKILL and started again."""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import random
import signal
import subprocess
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from cli.devnet.paths import PROJECT_ROOT


@dataclass
class ProxyStats:
    connections: int = 0
    requests: int = 0  # chunks from a client to the node (about one per JSON-RPC request)
    requests_under_faults: int = 0  # of those, sent while faults were switched on
    dropped: int = 0
    delayed: int = 0


class FaultyProxy:
    """127.0.0.1:`port` → `target_port`. While `fail_rate` > 0, each chunk sent to the node is
    dropped (both connections closed) with that probability; `delay` adds latency to some."""

    def __init__(self, port: int, target_port: int, seed: int = 402) -> None:
        self.port, self.target_port = port, target_port
        self.fail_rate = 0.0
        self.delay_rate = 0.0
        self.delay = 0.0
        self.stats = ProxyStats()
        self._random = random.Random(seed)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="faulty-rpc-proxy")

    def start(self) -> FaultyProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return  # stopped already (a test made it die)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            pending = asyncio.all_tasks(self._loop)  # connections still open: end them with the loop
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.run_until_complete(server.wait_closed())
            self._loop.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        try:
            node_r, node_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_w.close()
            return

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, faulty: bool) -> None:
            try:
                while data := await reader.read(65536):
                    if faulty:
                        self.stats.requests += 1
                        self.stats.requests_under_faults += self.fail_rate > 0
                    if faulty and self._random.random() < self.fail_rate:
                        self.stats.dropped += 1
                        break
                    if faulty and self._random.random() < self.delay_rate:
                        self.stats.delayed += 1
                        await asyncio.sleep(self.delay)
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                for w in (writer, client_w, node_w):
                    w.close()

        await asyncio.gather(pipe(client_r, node_w, True), pipe(node_r, client_w, False))


@dataclass
class WorkerProcess:
    stage: str
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    kills: int = 0
    started: int = 0
    history: list[str] = field(default_factory=list)

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(PROJECT_ROOT / ".venv" / "bin" / "x402-mint"), "worker", self.stage],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.started += 1

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            self.kills += 1

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class JsonRpcProxy:
    """An HTTP JSON-RPC proxy in front of the node on 127.0.0.1:`port`: each request (each element of a
    batch) gets `answer(request)`, which by default forwards it to `target_url`. Subclasses say what
    kind of node they play by overriding `answer`."""

    name = "json-rpc-proxy"

    def __init__(self, port: int, target_url: str) -> None:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                replies = (
                    [proxy.answer(r) for r in request] if isinstance(request, list) else proxy.answer(request)
                )
                payload = json.dumps(replies).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.target_url = target_url
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True, name=self.name)

    def forward(self, request: dict[str, object]) -> dict[str, object]:
        ask = urllib.request.Request(
            self.target_url, data=json.dumps(request).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(ask, timeout=30) as reply:
            answer: dict[str, object] = json.loads(reply.read())
        return answer

    def answer(self, request: dict[str, object]) -> dict[str, object]:
        return self.forward(request)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class RangeLimitedRpc(JsonRpcProxy):
    """A node that refuses eth_getLogs over more than `max_range` blocks, as hosted providers do
    ("query exceeds max block range"); everything else passes through. So log searches must go in
    chunks, and an old enough log is out of their reach."""

    name = "range-limited-rpc"

    def __init__(self, port: int, target_url: str, max_range: int) -> None:
        super().__init__(port, target_url)
        self.max_range = max_range
        self.log_queries = self.refused = 0

    def answer(self, request: dict[str, object]) -> dict[str, object]:
        if request.get("method") == "eth_getLogs":
            self.log_queries += 1
            (params,) = request["params"]  # type: ignore[misc]
            low, high = (_block(params.get(k, "latest")) for k in ("fromBlock", "toBlock"))
            if high - low + 1 > self.max_range:
                self.refused += 1
                error = {"code": -32005, "message": "query exceeds max block range"}
                return {"jsonrpc": "2.0", "id": request.get("id"), "error": error}
        return self.forward(request)


class ShadyRpc(JsonRpcProxy):
    """A node one should not trust, each way settable while it runs: `lag` blocks behind (its head is
    the node's minus `lag`, it has no receipt and no log from a newer block); answering every request
    but its head and chain id with the JSON-RPC error `fault` (a rate limit, say); or on another chain
    (`chain_id`, with its head `head_offset` blocks ahead). It records every method it is asked, so a
    test can say what such a node was trusted with."""

    name = "shady-rpc"

    def __init__(
        self,
        port: int,
        target_url: str,
        lag: int = 0,
        *,
        fault: dict[str, object] | None = None,
        chain_id: int | None = None,
        head_offset: int = 0,
    ) -> None:
        super().__init__(port, target_url)
        self.lag, self.fault = lag, fault
        self.chain_id, self.head_offset = chain_id, head_offset
        self.asked: list[str] = []

    def head(self) -> int:
        real = self.forward({"jsonrpc": "2.0", "id": 0, "method": "eth_blockNumber", "params": []})
        return max(0, int(str(real["result"]), 16) - self.lag + self.head_offset)

    def answer(self, request: dict[str, object]) -> dict[str, object]:
        method = str(request.get("method"))
        self.asked.append(method)
        if method == "eth_blockNumber":
            return {"jsonrpc": "2.0", "id": request.get("id"), "result": hex(self.head())}
        if method == "eth_chainId" and self.chain_id is not None:
            return {"jsonrpc": "2.0", "id": request.get("id"), "result": hex(self.chain_id)}
        if self.fault is not None and method != "eth_chainId":
            return {"jsonrpc": "2.0", "id": request.get("id"), "error": self.fault}
        if method == "eth_getLogs":
            (params,) = request["params"]  # type: ignore[misc]
            params["toBlock"] = hex(min(_block(params.get("toBlock", "latest")), self.head()))
        reply = self.forward(request)
        receipt = reply.get("result")
        if (
            method == "eth_getTransactionReceipt"
            and isinstance(receipt, dict)
            and int(str(receipt["blockNumber"]), 16) > self.head()
        ):
            reply["result"] = None
        return reply


def _block(value: object) -> int:
    if isinstance(value, int):
        return value
    text = str(value)
    return (
        2**62
        if text in ("latest", "pending", "safe", "finalized")
        else 0
        if text == "earliest"
        else int(text, 16)
    )


class TcpForward:
    """127.0.0.1:`port` → 127.0.0.1:`target_port`, without faults: a service that becomes reachable on
    `port` while the context is entered (and unreachable again after)."""

    def __init__(self, port: int, target_port: int) -> None:
        self._proxy = FaultyProxy(port, target_port)

    def __enter__(self) -> TcpForward:
        self._proxy.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._proxy.stop()
