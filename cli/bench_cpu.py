"""CPU time per process group, read from /proc before and after a benchmark: the API (uvicorn and its
workers), each stage (every copy), PostgreSQL (the postmaster and all its backends) and the chain node.

A group's CPU is the sum, over its live processes, of their own user + system time and that of the
children they have reaped (`cutime` + `cstime`): a backend or worker that ended during the run is
counted by its parent, so nothing is lost and nothing counted twice.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg

TICKS = os.sysconf("SC_CLK_TCK")
STAGES = ("payment-sender", "confirmer", "mint-sender", "refund-sender")


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, CPU ticks including reaped children) of a live process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return ppid, utime + stime + cutime + cstime


def _tree(roots: Iterable[int]) -> set[int]:
    """The roots and all their descendants alive now."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = stat[0]
    members = {r for r in roots if r in parents}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in members and pid not in members:
                members.add(pid)
                grew = True
    return members


@dataclass(frozen=True)
class Groups:
    roots: Mapping[str, tuple[int, ...]]  # group name → root pids

    def cpu_seconds(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, roots in self.roots.items():
            ticks = sum((_stat(pid) or (0, 0))[1] for pid in _tree(roots))
            out[name] = ticks / TICKS
        return out


def _program_pids(supervisorctl: list[str]) -> dict[str, list[int]]:
    """{program: pids} of what supervisord runs now (a stage with numprocs > 1 has several)."""
    status = subprocess.run([*supervisorctl, "status"], capture_output=True, text=True).stdout
    found: dict[str, list[int]] = {}
    for line in status.splitlines():
        words = line.replace(",", " ").split()
        if len(words) > 3 and words[1] == "RUNNING" and words[2] == "pid":
            program = words[0].split(":")[0]
            found.setdefault(program, []).append(int(words[3]))
    return found


def _postmaster(database_url: str) -> int | None:
    """PostgreSQL's postmaster on this machine: the parent of our backend (None if not local)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    stat = _stat(int(row[0])) if row else None
    return stat[0] if stat else None


def discover(
    supervisorctl: list[str], database_url: str, node_pid: int | None, extra: Mapping[str, list[int]]
) -> Groups:
    """The groups of the running dev environment; `extra` adds processes started beside supervisord
    (more copies of a stage)."""
    programs = _program_pids(supervisorctl)
    roots: dict[str, tuple[int, ...]] = {"api": tuple(programs.get("api", []))}
    for stage in STAGES:
        roots[stage] = tuple(programs.get(stage, []) + list(extra.get(stage, [])))
    postmaster = _postmaster(database_url)
    if postmaster is not None:
        roots["postgresql"] = (postmaster,)
    if node_pid is not None:
        roots["chain node"] = (node_pid,)
    return Groups(roots)


def report(before: Mapping[str, float], after: Mapping[str, float], payments: int) -> list[str]:
    """Lines: CPU ms per payment of each group, and of API + stages + PostgreSQL (the node apart)."""
    per = {name: (after[name] - before.get(name, 0.0)) * 1000 / max(1, payments) for name in after}
    ours = sum(v for name, v in per.items() if name != "chain node")
    lines = [f"  CPU ms per payment ({payments} payments; from /proc, before and after):"]
    lines += [f"    {name:<15} {ms:7.3f}" for name, ms in per.items()]
    lines.append(f"    {'API + stages + PostgreSQL':<27} {ours:7.3f}   (chain node apart)")
    return lines
