"""Several RPC endpoints as one web3 provider (RPC_URLS): reads go to the first healthy endpoint and fail
over to the next; a signed transaction goes to every endpoint that answers (the same bytes, the same
hash: harmless); an endpoint that does not answer, answers with a fault of its own (rate limited,
internal error, state it does not have: `endpoint_fault`), is on another chain, or lags behind the
others' head by more than RPC_MAX_LAG_BLOCKS, is taken out for RPC_QUARANTINE_SECONDS and probed
back. Heads are compared before
the first read, every 2 s after, and before an endpoint's time out ends, so a lagging node is never
asked — in particular never for a "not mined" or "unused" answer, which it would give for what it has
not seen yet; and a read of a numbered block goes only to an endpoint whose head has reached it.

Every request is timed into the metrics by method and endpoint (shared/metrics.py).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from web3 import HTTPProvider
from web3.providers.base import JSONBaseProvider
from web3.types import RPCEndpoint, RPCResponse

from shared import metrics

SEND_RAW = "eth_sendRawTransaction"
PROBE_TIMEOUT_SECONDS = 2.0
# The node did not answer (as opposed to answering with a JSON-RPC error, which is an answer).
UNANSWERED = (requests.exceptions.RequestException, OSError, ValueError)
#: JSON-RPC error codes that say the endpoint could not serve the request (not what the chain says):
#: internal error, method not found (a restricted endpoint), resource unavailable, limit exceeded.
FAULT_CODES = frozenset({-32603, -32601, -32002, -32005})
#: Words of such errors under the catch-all codes (-32000 …): a pruned or lagging node, a rate limit,
#: an overloaded backend. A revert, "nonce too low" and the like are the chain's answers, never these.
FAULT_WORDS = (
    "header not found",
    "missing trie node",
    "unknown block",
    "rate limit",
    "limit exceeded",
    "too many requests",
    "capacity",
    "timed out",
    "timeout",
    "try again",
    "temporarily unavailable",
    "service unavailable",
    "bad gateway",
    "upstream",
    "internal error",
)


def endpoint_fault(answer: Any) -> str | None:
    """Why a JSON-RPC answer is the endpoint's own failure rather than the chain's answer (then
    another endpoint is asked), or None. Pure."""
    if not isinstance(answer, dict) or not isinstance(answer.get("error"), dict):
        return None
    error = answer["error"]
    code, message = error.get("code"), str(error.get("message", ""))
    lowered = message.lower()
    if code == 3 or "revert" in lowered:  # the chain's answer, whatever words its reason uses
        return None
    if code in FAULT_CODES or any(words in lowered for words in FAULT_WORDS):
        return f"error {code}: {message}"[:200]
    return None


class _Refused(Exception):
    """A probe answered with an error (it answers, but cannot be used)."""


@dataclass(frozen=True, slots=True)
class Health:
    """One endpoint as the provider last saw it."""

    label: str
    url: str
    up: bool
    head: int | None
    lag: int | None
    error: str | None


@dataclass
class _Endpoint:
    url: str
    label: str
    provider: HTTPProvider
    out: bool = False  # taken out: used again only after a probe found it answering and caught up
    out_until: float = 0.0  # not probed before this
    lagging: bool = False  # out because it is behind (it answers, but not for what it has not seen)
    chain_checked: bool = False  # its eth_chainId was found to be ours (asked until it is)
    head: int | None = None
    why_out: str | None = None


#: Reads of the state at a block named by number: (method, index of the block parameter).
_BLOCK_PARAM = {
    "eth_call": 1,
    "eth_getBalance": 1,
    "eth_getTransactionCount": 1,
    "eth_getCode": 1,
    "eth_getStorageAt": 2,
    "eth_getBlockByNumber": 0,
}


def _number(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return int(value, 16)
        except ValueError:
            return None
    return None  # "latest", "pending", a block hash object, …


def block_asked(method: str, params: Any) -> int | None:
    """The highest block number a read names (eth_getLogs' range, the block of eth_call …), if any."""
    if not isinstance(params, list | tuple):
        return None
    if method == "eth_getLogs" and params and isinstance(params[0], dict):
        numbers = [_number(params[0].get(k)) for k in ("fromBlock", "toBlock")]
        return max((n for n in numbers if n is not None), default=None)
    index = _BLOCK_PARAM.get(method)
    if index is None or len(params) <= index:
        return None
    return _number(params[index])


def label_of(url: str) -> str:
    """host:port, never a path (hosted endpoints put their API key there)."""
    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1] or url


class FailoverProvider(JSONBaseProvider):
    def __init__(
        self,
        urls: list[str],
        *,
        timeout: float = 10.0,
        max_lag_blocks: int = 5,
        quarantine_seconds: float = 30.0,
        probe_seconds: float = 2.0,
        chain_id: int | None = None,
    ) -> None:
        if not urls:
            raise ValueError("at least one RPC URL is required")
        super().__init__()
        self.chain_id = chain_id  # when given, an endpoint on another chain is never used
        self._endpoints = [_Endpoint(url, label_of(url), _http(url, timeout)) for url in urls]
        # Probes ask only for the head: a short timeout, so a dead endpoint never holds up a stage long.
        self._probers = {ep.url: _http(ep.url, min(timeout, PROBE_TIMEOUT_SECONDS)) for ep in self._endpoints}
        self.max_lag_blocks, self.quarantine_seconds, self.probe_seconds = (
            max_lag_blocks,
            quarantine_seconds,
            probe_seconds,
        )
        self._probed_at = float("-inf")
        self._lock = threading.RLock()

    # --- what web3 calls -----------------------------------------------------------------------------

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        if method == SEND_RAW:
            return self._broadcast(method, params)
        answer: RPCResponse = self._first(
            method, lambda ep: ep.provider.make_request(method, params), needs=block_asked(method, params)
        )
        return answer

    def make_batch_request(self, requests_: list[tuple[RPCEndpoint, Any]]) -> Any:
        needs = max((block_asked(m, p) or 0 for m, p in requests_), default=0)
        return self._first(
            RPCEndpoint("batch"), lambda ep: ep.provider.make_batch_request(requests_), needs=needs or None
        )

    def is_connected(self, show_traceback: bool = False) -> bool:
        return any(ep.provider.is_connected(show_traceback) for ep in self._endpoints)

    # --- health --------------------------------------------------------------------------------------

    def health(self) -> list[Health]:
        """Each endpoint as of the latest probe (taken now if one is due)."""
        self._probe()
        with self._lock:
            best = max((ep.head for ep in self._endpoints if ep.head is not None), default=None)
            return [
                Health(
                    ep.label,
                    ep.url,
                    not ep.out,
                    ep.head,
                    None if ep.head is None or best is None else best - ep.head,
                    ep.why_out,
                )
                for ep in self._endpoints
            ]

    def _probe(self, *, everyone: bool = False) -> None:
        """Compare heads: every probe_seconds, and at once when an endpoint's time out has ended (so it
        is never used again before a probe found it caught up); `everyone` probes the endpoints still
        out too. An endpoint that does not answer, or is more than max_lag_blocks behind the best head,
        is taken out for quarantine_seconds; only a probe that finds it caught up brings it back."""
        with self._lock:
            now = time.monotonic()
            due = any(ep.out and now >= ep.out_until for ep in self._endpoints)
            if not (due or everyone) and now - self._probed_at < self.probe_seconds:
                return
            self._probed_at = now
            probed = [ep for ep in self._endpoints if everyone or not ep.out or now >= ep.out_until]
            answered: list[_Endpoint] = []
            for ep in probed:
                try:
                    wrong = self._wrong_chain(ep)
                    if wrong:
                        ep.head = None  # its head says nothing about ours
                        self._take_out(ep, wrong)
                        continue
                    reply = self._timed(
                        ep,
                        "eth_blockNumber",
                        lambda e: self._probers[e.url].make_request("eth_blockNumber", []),
                    )
                    ep.head = int(reply["result"], 16)
                    answered.append(ep)
                except _Refused as exc:
                    self._take_out(ep, str(exc))
                except (*UNANSWERED, KeyError, TypeError) as exc:
                    self._take_out(ep, f"no answer: {type(exc).__name__}")
            best = max((ep.head for ep in self._endpoints if ep.head is not None), default=0)
            for ep in answered:
                assert ep.head is not None
                if best - ep.head > self.max_lag_blocks:
                    self._take_out(ep, f"{best - ep.head} blocks behind", lagging=True)
                else:
                    ep.out, ep.why_out, ep.lagging = False, None, False

    def _wrong_chain(self, ep: _Endpoint) -> str | None:
        """Why `ep` is not on our chain (asked until it once answered ours), or None."""
        if self.chain_id is None or ep.chain_checked:
            return None
        reply = self._timed(ep, "eth_chainId", lambda e: self._probers[e.url].make_request("eth_chainId", []))
        if "error" in reply:
            raise _Refused(f"eth_chainId refused: {reply['error']}"[:200])
        theirs = int(reply["result"], 16)
        if theirs != self.chain_id:
            return f"on chain {theirs}, not {self.chain_id}"
        ep.chain_checked = True
        return None

    def _take_out(self, ep: _Endpoint, why: str, *, lagging: bool = False) -> None:
        """Out for quarantine_seconds. Lagging stays set until a probe finds it caught up: a lagging
        endpoint that then also fails to answer is still one that must not be trusted."""
        with self._lock:
            ep.out, ep.out_until, ep.why_out = True, time.monotonic() + self.quarantine_seconds, why
            ep.lagging = ep.lagging or lagging

    # --- requests ------------------------------------------------------------------------------------

    def _timed(self, ep: _Endpoint, method: str, call: Any) -> Any:
        started = time.perf_counter()
        try:
            return call(ep)
        except UNANSWERED:
            metrics.rpc_errors.labels(method, ep.label).inc()
            raise
        finally:
            metrics.rpc_seconds.labels(method, ep.label).observe(time.perf_counter() - started)

    def _first(self, method: str, call: Any, *, needs: int | None = None) -> Any:
        """The first healthy endpoint's answer; on no answer, the next one's. A read of a numbered
        block (`needs`) goes only to an endpoint whose head has reached it: one that has not would
        answer "nothing there" for what it has not seen yet. When no endpoint is usable, all of them
        are probed again (at most every probe_seconds); an endpoint is never asked unprobed."""
        self._probe()
        candidates = self._candidates(needs)
        if not candidates and len(self._endpoints) > 1:
            self._probe(everyone=True)
            candidates = self._candidates(needs)
        if not candidates:
            raise requests.exceptions.ConnectionError(
                f"no RPC endpoint can answer {method} now (out, behind, or none has block {needs} yet)"
            )
        last: BaseException | None = None
        faulty: Any = None
        for ep in candidates:
            try:
                answer = self._timed(ep, method, call)
            except UNANSWERED as exc:
                self._take_out(ep, f"no answer: {type(exc).__name__}")
                last = exc
                continue
            fault = endpoint_fault(answer)
            if fault is not None:  # its own failure, not the chain's answer: the next one is asked
                metrics.rpc_errors.labels(method, ep.label).inc()
                self._take_out(ep, fault)
                faulty = faulty or answer
                continue
            if method == "eth_blockNumber" and isinstance(answer.get("result"), str):
                with self._lock:  # the head of the endpoint that answered
                    ep.head = max(ep.head or 0, int(answer["result"], 16))
            return answer
        if faulty is not None:
            return faulty  # every endpoint failed it: the caller sees the error, as from one node
        assert last is not None
        raise last

    def _candidates(self, needs: int | None) -> list[_Endpoint]:
        """Healthy endpoints in order of preference (with one endpoint there is no one else to ask:
        it is always the candidate, and what no answer means is for the caller to decide)."""
        if len(self._endpoints) == 1:
            return self._endpoints
        with self._lock:
            usable = [ep for ep in self._endpoints if not ep.out]
        if needs is None:
            return usable
        return [ep for ep in usable if ep.head is not None and ep.head >= needs]

    def _broadcast(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        """To every endpoint: the first success, else the first answer (e.g. "already known", which
        the caller classifies); no answer from any: the last failure."""
        answers: list[RPCResponse] = []
        last: BaseException | None = None
        # Not to one that stopped answering (each would cost a timeout); a lagging one gets it too.
        with self._lock:
            targets = [ep for ep in self._endpoints if not ep.out or ep.lagging] or self._endpoints
        for ep in targets:
            try:
                answers.append(self._timed(ep, method, lambda e: e.provider.make_request(method, params)))
            except UNANSWERED as exc:
                self._take_out(ep, f"no answer: {type(exc).__name__}")
                last = exc
        for answer in answers:
            if "error" not in answer:
                return answer
        if answers:
            return answers[0]
        assert last is not None
        raise last


def _http(url: str, timeout: float) -> HTTPProvider:
    return HTTPProvider(url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None)
