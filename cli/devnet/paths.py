"""Where the embedded dev environment keeps its state: `.dev/` in the checkout."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEV_DIR = PROJECT_ROOT / ".dev"
DEVNET_FILE = DEV_DIR / "devnet.json"
ENV_FILE = DEV_DIR / "dev.env"  # the running dev environment's settings (X402_ENV_FILE of its programs)
NODE_BIN = PROJECT_ROOT / "node_modules" / ".bin"


def free_port(start: int) -> int:
    """The first port from `start` on which nothing listens on 127.0.0.1."""
    import socket

    for port in range(start, start + 200):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {start}..{start + 199}")
