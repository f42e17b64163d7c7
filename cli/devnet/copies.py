"""More copies of the dev environment's stages, beside the ones supervisord runs (`bench e2e
--copies`): each is `x402-mint worker <stage>` on the dev settings, as another host's would be, and
is stopped with SIGTERM (it drains) when the context ends."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from cli.devnet.paths import DEV_DIR, PROJECT_ROOT

SETTLE_SECONDS = 3.0  # a new stage reconciles its keys' nonces before its first batch


@contextmanager
def more_copies(stages: Iterable[str], extra: int) -> Iterator[dict[str, list[int]]]:
    """{stage: pids} of `extra` more processes of each stage, running while the context lasts."""
    procs: dict[str, list[subprocess.Popen[bytes]]] = {}
    env = {**os.environ, "X402_ENV_FILE": str(DEV_DIR / "dev.env")}
    try:
        for stage in stages if extra > 0 else ():
            for n in range(extra):
                with open(DEV_DIR / "logs" / f"{stage}-extra-{n}.log", "ab") as log:
                    procs.setdefault(stage, []).append(
                        subprocess.Popen(
                            [str(PROJECT_ROOT / "bin" / "x402-mint"), "worker", stage],
                            env=env,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                        )
                    )
        if procs:
            time.sleep(SETTLE_SECONDS)
        yield {stage: [p.pid for p in ps] for stage, ps in procs.items()}
    finally:
        for proc in (p for ps in procs.values() for p in ps):
            proc.terminate()
        for proc in (p for ps in procs.values() for p in ps):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
