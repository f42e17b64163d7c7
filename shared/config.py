"""Settings from the environment (12-factor), with an optional `.env` file.

Every variable is listed in docs/configuration.md; this module is the only place that reads them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

from shared.chain.history import SearchLimits
from shared.chain.multicall import CANONICAL_ADDRESS as CANONICAL_MULTICALL3

DEFAULT_RPC_URL = "http://127.0.0.1:8545"


class ConfigError(ValueError):
    """A variable is missing or malformed."""


def _get(env: Mapping[str, str], name: str, default: str | None = None) -> str:
    value = env.get(name, default)
    if value is None or value == "":
        raise ConfigError(f"environment variable {name} is required")
    return value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


# accept_payments runs each payment of a group in a subtransaction; past 64 of them in one
# transaction PostgreSQL's per-backend subtransaction cache overflows and every snapshot gets slower.
MAX_INGRESS_BATCH_SIZE = 60


def _addresses(env: Mapping[str, str], name: str) -> frozenset[str]:
    listed = [a.strip().lower() for a in env.get(name, "").split(",") if a.strip()]
    bad = [a for a in listed if not re.fullmatch(r"0x[0-9a-f]{40}", a)]
    if bad:
        raise ConfigError(f"{name} lists what is not an address: {bad}")
    return frozenset(listed)


def _rpc_urls(env: Mapping[str, str]) -> tuple[str, ...]:
    """RPC_URLS (comma-separated, in order of preference), else RPC_URL, else the local node."""
    listed = tuple(u.strip() for u in env.get("RPC_URLS", "").split(",") if u.strip())
    if listed and env.get("RPC_URL") and env["RPC_URL"] not in listed:
        raise ConfigError("set RPC_URLS or RPC_URL, not both (or list RPC_URL in RPC_URLS)")
    return listed or (env.get("RPC_URL") or DEFAULT_RPC_URL,)


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "false").strip().lower()
    if raw not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    return raw in ("true", "1", "yes")


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, got {value}")
    return value


def _non_negative(env: Mapping[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < 0:
        raise ConfigError(f"{name} must be 0 or more, got {value}")
    return value


def _batch_size(value: int) -> int:
    if not 1 <= value <= MAX_INGRESS_BATCH_SIZE:
        raise ConfigError(f"INGRESS_BATCH_SIZE must be between 1 and {MAX_INGRESS_BATCH_SIZE}, got {value}")
    return value


def _versions(raw: str) -> tuple[int, ...]:
    try:
        versions = tuple(sorted({int(part) for part in raw.split(",") if part.strip()}))
    except ValueError as exc:
        raise ConfigError(f"X402_VERSIONS must list 1 and/or 2, got {raw!r}") from exc
    if not versions or not set(versions) <= {1, 2}:
        raise ConfigError(f"X402_VERSIONS must list 1 and/or 2, got {raw!r}")
    return versions


#: A purchase's mint ids number its units in one byte (shared/settlement/mint_ids.py, MAX_MINT_INDEX;
#: a unit test keeps the two in step), so a payment buys at most 256 units.
QUANTITY_LIMIT = 256


def _quantity(value: int) -> int:
    if not 1 <= value <= QUANTITY_LIMIT:
        raise ConfigError(f"MAX_QUANTITY must be between 1 and {QUANTITY_LIMIT}, got {value}")
    return value


def _keys(env: Mapping[str, str], pool: str, single: str) -> tuple[str, ...]:
    """A stage's relayer keys: the comma-separated pool, else the single key; never both."""
    listed = tuple(k.strip() for k in env.get(pool, "").split(",") if k.strip())
    one = env.get(single, "").strip()
    if listed and one:
        raise ConfigError(f"set {pool} or {single}, not both")
    keys = listed or ((one,) if one else ())
    if len(set(keys)) != len(keys):
        raise ConfigError(f"{pool} lists a key twice")
    return keys


def _aggregator(raw: str) -> str:
    value = raw.strip().lower() or CANONICAL_MULTICALL3
    if value in ("none", "off"):
        return ""
    if not re.fullmatch(r"0x[0-9a-f]{40}", value):
        raise ConfigError(f"MULTICALL3_ADDRESS must be an address, or 'none', got {raw!r}")
    return value


@dataclass(frozen=True, slots=True)
class StageSettings:
    """How one stage polls: how many rows a claim takes, the idle wait between empty polls, and how
    long a notice that wakes it idle lets more work gather before it claims (`linger`, as Kafka's
    linger.ms: work that comes in a stream — or to several copies of the stage at once — then goes
    out in full batches, not a transaction for each few rows)."""

    batch_size: int
    poll_interval: float
    linger: float = 0.0


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    rpc_url: str = DEFAULT_RPC_URL  # the first of rpc_urls
    chain_id: int = 31337
    network: str = ""  # x402 network name; empty = derived from chain_id
    api_host: str = "127.0.0.1"
    api_port: int = 8402
    api_workers: int = 1
    public_url: str = ""  # base URL used in x402 `resource`; empty = http://api_host:api_port
    max_quantity: int = 10
    x402_versions: tuple[int, ...] = (1, 2)
    max_pending_per_payer: int = 10
    max_pending_wallet_payments: int = 100  # contract-signed payments open at once, over all payers
    max_header_bytes: int = 8192
    max_body_bytes: int = 4096
    request_timeout_seconds: float = 10.0
    max_timeout_seconds: int = 300
    settle_margin_seconds: int = 30
    clock_skew_seconds: int = 60  # validBefore may be at most maxTimeoutSeconds + this ahead
    payment_identifier_required: bool = False  # x402 v2 payment-identifier: required, or only honoured
    cors_allowed_origins: tuple[str, ...] = ()  # browsers' origins allowed to call the API; none by default
    wallet_factories: frozenset[str] = (
        frozenset()
    )  # ERC-6492 factories we deploy wallets with; none by default
    payment_relayer_keys: tuple[str, ...] = field(default=(), repr=False)  # a pool: claims take turns
    mint_relayer_keys: tuple[str, ...] = field(default=(), repr=False)
    refund_relayer_keys: tuple[str, ...] = field(default=(), repr=False)  # empty: the mint relayer keys
    payment_stage: StageSettings = StageSettings(50, 4.0, 0.05)
    confirm_stage: StageSettings = StageSettings(20, 2.0)
    mint_stage: StageSettings = StageSettings(100, 3.0, 0.05)
    refund_stage: StageSettings = StageSettings(10, 5.0)
    confirmations: int = 1
    lease_seconds: int = 60
    rebroadcast_after_seconds: float = 15.0
    stuck_after_seconds: float = 30.0
    max_fee_per_gas_cap: int = 500 * 10**9
    log_search: SearchLimits = field(default_factory=SearchLimits)
    payment_review_attempts: int = 10  # undetermined this many times: needs_review
    payment_send_retries: int = 2  # a transfer that failed on chain though its pre-flight passed
    retry_base_seconds: float = 0.5
    retry_cap_seconds: float = 30.0
    max_mint_attempts: int = 5
    payment_gas_limit: int = 150_000  # a transfer that goes alone (or a contract wallet's)
    payment_shared_gas: int = 70_000  # an EOA's transfer sharing a Multicall3 transaction
    payment_aggregator: str = CANONICAL_MULTICALL3  # "" = one transaction per payment
    payment_aggregate_size: int = 50
    mint_gas_base: int = 80_000
    mint_gas_per_item: int = 55_000
    rpc_timeout_seconds: float = 10.0
    drain_seconds: float = 20.0
    db_pool_size: int = 10
    ingress_batch_size: int = 50
    ingress_writers: int = 2
    log_level: str = "INFO"
    log_format: str = "json"
    rpc_more_urls: tuple[str, ...] = ()  # RPC_URLS after the first: failover endpoints
    rpc_max_lag_blocks: int = 5
    rpc_quarantine_seconds: float = 30.0
    metrics_token: str = field(default="", repr=False)  # bearer token for /metrics; "" = loopback API only
    dashboard: bool = False  # serve /dashboard (off unless configured)
    upkeep_interval_seconds: float = 1.0  # senders' upkeep (gaps, bumps, unmined, watch): at most this often
    admission_deadline_seconds: float = 2.0  # a paid POST that would wait longer: 503 + Retry-After
    admission_floor: int = 64  # paid POSTs in flight (per API process) always admitted
    admission_max_backlog: int = 0  # payments and mints accepted, not yet on chain: 503 beyond (0: off)
    dashboard_token: str = field(default="", repr=False)  # required unless the API listens on loopback only

    @property
    def api_on_loopback(self) -> bool:
        """The API listens on this machine's loopback only (no one else can reach it directly)."""
        return self.api_host in ("127.0.0.1", "localhost", "::1") or self.api_host.startswith("127.")

    @property
    def rpc_urls(self) -> tuple[str, ...]:
        """Every RPC endpoint, in order of preference (RPC_URLS; RPC_URL alone still works)."""
        return (self.rpc_url, *self.rpc_more_urls)

    @property
    def refund_keys(self) -> tuple[str, ...]:
        """Keys refund-sender signs with (they hold MintToken's REFUNDER_ROLE)."""
        return self.refund_relayer_keys or self.mint_relayer_keys

    @property
    def resource_base(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.api_host}:{self.api_port}"


#: What `x402-mint dev up` writes: the settings of the running dev environment.
DEV_ENV_FILE = Path(".dev") / "dev.env"


def settings_file(environ: Mapping[str, str] | None = None) -> Path | None:
    """The file settings are read from, under the environment: X402_ENV_FILE if set, else `.env`,
    else — when nothing names a database — the running dev environment's `.dev/dev.env` (so operator
    commands work in the project after `make demo`). None when there is none."""
    env = os.environ if environ is None else environ
    if env.get("X402_ENV_FILE"):
        return Path(env["X402_ENV_FILE"])
    for candidate in (Path(".env"), DEV_ENV_FILE):
        if candidate.is_file() and (candidate.name == ".env" or not env.get("DATABASE_URL")):
            return candidate
    return None


def read_environment(env_file: Path | None = None) -> dict[str, str]:
    """The process environment over the settings file (the environment wins)."""
    values: dict[str, str] = {}
    path = env_file or settings_file()
    if path is not None and path.is_file():
        values.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    values.update(os.environ)
    return values


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    e = read_environment() if env is None else env
    return Settings(
        database_url=_get(e, "DATABASE_URL"),
        rpc_url=_rpc_urls(e)[0],
        rpc_more_urls=_rpc_urls(e)[1:],
        rpc_max_lag_blocks=_non_negative(e, "RPC_MAX_LAG_BLOCKS", 5),
        rpc_quarantine_seconds=_float(e, "RPC_QUARANTINE_SECONDS", 30.0),
        chain_id=_int(e, "CHAIN_ID", 31337),
        network=e.get("X402_NETWORK", ""),
        api_host=e.get("API_HOST") or "127.0.0.1",
        api_port=_int(e, "API_PORT", 8402),
        api_workers=_int(e, "API_WORKERS", 1),
        public_url=e.get("PUBLIC_URL", ""),
        max_quantity=_quantity(_int(e, "MAX_QUANTITY", 10)),
        x402_versions=_versions(e.get("X402_VERSIONS") or "1,2"),
        max_pending_per_payer=_int(e, "MAX_PENDING_PER_PAYER", 10),
        max_pending_wallet_payments=_positive(e, "MAX_PENDING_WALLET_PAYMENTS", 100),
        max_header_bytes=_int(e, "MAX_HEADER_BYTES", 8192),
        max_body_bytes=_int(e, "MAX_BODY_BYTES", 4096),
        request_timeout_seconds=_float(e, "REQUEST_TIMEOUT_SECONDS", 10.0),
        max_timeout_seconds=_int(e, "MAX_TIMEOUT_SECONDS", 300),
        settle_margin_seconds=_int(e, "SETTLE_MARGIN_SECONDS", 30),
        clock_skew_seconds=_int(e, "CLOCK_SKEW_SECONDS", 60),
        payment_identifier_required=_flag(e, "PAYMENT_IDENTIFIER_REQUIRED"),
        cors_allowed_origins=tuple(
            o.strip() for o in e.get("CORS_ALLOWED_ORIGINS", "").split(",") if o.strip()
        ),
        payment_relayer_keys=_keys(e, "PAYMENT_RELAYER_KEYS", "PAYMENT_RELAYER_KEY"),
        mint_relayer_keys=_keys(e, "MINT_RELAYER_KEYS", "MINT_RELAYER_KEY"),
        refund_relayer_keys=_keys(e, "REFUND_RELAYER_KEYS", "REFUND_RELAYER_KEY"),
        payment_stage=StageSettings(
            _int(e, "PAYMENT_BATCH_SIZE", 50),
            _float(e, "PAYMENT_POLL_INTERVAL", 4.0),
            _float(e, "PAYMENT_LINGER_SECONDS", 0.05),
        ),
        confirm_stage=StageSettings(
            _int(e, "CONFIRM_BATCH_SIZE", 20), _float(e, "CONFIRM_POLL_INTERVAL", 2.0)
        ),
        mint_stage=StageSettings(
            _int(e, "MINT_BATCH_SIZE", 100),
            _float(e, "MINT_POLL_INTERVAL", 3.0),
            _float(e, "MINT_LINGER_SECONDS", 0.05),
        ),
        refund_stage=StageSettings(_int(e, "REFUND_BATCH_SIZE", 10), _float(e, "REFUND_POLL_INTERVAL", 5.0)),
        confirmations=_int(e, "CONFIRMATIONS", 1),
        lease_seconds=_int(e, "LEASE_SECONDS", 60),
        rebroadcast_after_seconds=_float(e, "REBROADCAST_AFTER_SECONDS", 15.0),
        stuck_after_seconds=_float(e, "STUCK_AFTER_SECONDS", 30.0),
        max_fee_per_gas_cap=_int(e, "MAX_FEE_PER_GAS_CAP", 500 * 10**9),
        log_search=SearchLimits(
            chunk_blocks=_positive(e, "LOG_SEARCH_CHUNK_BLOCKS", 2_000),
            max_blocks=_positive(e, "LOG_SEARCH_MAX_BLOCKS", 1_000_000),
            longest_validity=_int(e, "MAX_TIMEOUT_SECONDS", 300) + _int(e, "CLOCK_SKEW_SECONDS", 60),
        ),
        payment_review_attempts=_positive(e, "PAYMENT_REVIEW_ATTEMPTS", 10),
        payment_send_retries=_non_negative(e, "PAYMENT_SEND_RETRIES", 2),
        retry_base_seconds=_float(e, "RETRY_BASE_SECONDS", 0.5),
        retry_cap_seconds=_float(e, "RETRY_CAP_SECONDS", 30.0),
        max_mint_attempts=_int(e, "MAX_MINT_ATTEMPTS", 5),
        payment_gas_limit=_int(e, "PAYMENT_GAS_LIMIT", 150_000),
        payment_shared_gas=_positive(e, "PAYMENT_SHARED_GAS_LIMIT", 70_000),
        payment_aggregator=_aggregator(e.get("MULTICALL3_ADDRESS", CANONICAL_MULTICALL3)),
        payment_aggregate_size=_int(e, "PAYMENT_AGGREGATE_SIZE", 50),
        mint_gas_base=_int(e, "MINT_GAS_BASE", 80_000),
        mint_gas_per_item=_int(e, "MINT_GAS_PER_ITEM", 55_000),
        rpc_timeout_seconds=_float(e, "RPC_TIMEOUT_SECONDS", 10.0),
        drain_seconds=_float(e, "DRAIN_SECONDS", 20.0),
        db_pool_size=_int(e, "DB_POOL_SIZE", 10),
        ingress_batch_size=_batch_size(_int(e, "INGRESS_BATCH_SIZE", 50)),
        ingress_writers=_positive(e, "INGRESS_WRITERS", 2),
        log_level=e.get("LOG_LEVEL") or "INFO",
        log_format=e.get("LOG_FORMAT") or "json",
        metrics_token=e.get("METRICS_TOKEN", ""),
        dashboard=_flag(e, "DASHBOARD"),
        upkeep_interval_seconds=_float(e, "UPKEEP_INTERVAL_SECONDS", 1.0),
        admission_deadline_seconds=_float(e, "ADMISSION_DEADLINE_SECONDS", 2.0),
        admission_floor=_positive(e, "ADMISSION_FLOOR", 64),
        admission_max_backlog=_non_negative(e, "ADMISSION_MAX_BACKLOG", 0),
        dashboard_token=e.get("DASHBOARD_TOKEN", ""),
    )
