"""A project-local PostgreSQL cluster under `.dev/pg`, from the machine's PostgreSQL binaries.

Used when DATABASE_URL is not set. As root, the server runs as the `postgres` user (PostgreSQL
refuses root); if that user cannot reach the checkout (a private temp folder), the data lives in
/var/tmp and `.dev/pg` links to it.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import psycopg

from cli.devnet.paths import DEV_DIR, PROJECT_ROOT, free_port

PG_LINK = DEV_DIR / "pg"
DEFAULT_PORT = 54329


class PostgresError(RuntimeError):
    pass


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise PostgresError(f"PostgreSQL's {name} was not found; install PostgreSQL or set DATABASE_URL")


def _as_server_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def _reachable_by_postgres(path: Path) -> bool:
    if os.geteuid() != 0:
        return True
    probe = subprocess.run([*_as_server_user(), "test", "-x", str(path)], capture_output=True)
    return probe.returncode == 0


def cluster_dir() -> Path:
    if PG_LINK.exists():
        return PG_LINK.resolve()
    DEV_DIR.mkdir(parents=True, exist_ok=True)
    if _reachable_by_postgres(DEV_DIR):
        PG_LINK.mkdir()
        return PG_LINK
    digest = hashlib.sha256(str(PROJECT_ROOT).encode()).hexdigest()[:10]
    outside = Path("/var/tmp") / f"x402-mint-pg-{digest}"
    outside.mkdir(parents=True, exist_ok=True)
    PG_LINK.symlink_to(outside)
    return outside


def url(port: int, dbname: str = "postgres") -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{dbname}"


def serves(dsn: str, data: Path) -> bool:
    """Whether the server answering at `dsn` is the one of `data` (the port recorded for a stopped
    cluster may have been taken since by another checkout's)."""
    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
    except psycopg.Error:
        return False
    return row is not None and Path(str(row[0])).resolve() == data.resolve()


def ensure_running() -> str:
    """Start (creating if needed) the local cluster; return its server URL (database `postgres`)."""
    root = cluster_dir()
    data, port_file, log_file = root / "data", root / "port", root / "server.log"
    if port_file.exists() and serves(url(int(port_file.read_text())), data):
        return url(int(port_file.read_text()))
    sudo = _as_server_user()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    if not (data / "PG_VERSION").exists():
        subprocess.run(
            [
                *sudo,
                _bin("initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
        )
    port = free_port(DEFAULT_PORT)
    conf = data / "postgresql.auto.conf"
    settings = (
        f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
        "max_connections = 300\nfsync = on\n"
    )
    conf.write_text(settings)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(conf, pw.pw_uid, pw.pw_gid)
    port_file.write_text(str(port))
    result = subprocess.run(
        [*sudo, _bin("pg_ctl"), "-D", str(data), "-l", str(log_file), "-w", "-t", "60", "start"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise PostgresError(f"could not start PostgreSQL: {result.stderr or result.stdout}")
    return url(port)


def stop() -> None:
    if not PG_LINK.exists():
        return
    data = PG_LINK.resolve() / "data"
    if (data / "postmaster.pid").exists():
        subprocess.run(
            [*_as_server_user(), _bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            capture_output=True,
        )


def restart() -> None:
    """Restart the local server (used by fault tests)."""
    data = PG_LINK.resolve() / "data"
    subprocess.run(
        [
            *_as_server_user(),
            _bin("pg_ctl"),
            "-D",
            str(data),
            "-m",
            "fast",
            "-w",
            "restart",
            "-l",
            str(PG_LINK.resolve() / "server.log"),
        ],
        check=True,
        capture_output=True,
    )


def ensure_database(server_url: str, name: str) -> str:
    """Create database `name` on the server if missing; return its URL."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + "/" + name


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
