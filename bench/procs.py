"""Processes the benchmark runs: the bench.server subprocess, PostgreSQL, and CPU accounting."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wfm_runtime import localservers

PG_BIN = Path("/usr/lib/postgresql/15/bin")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ServerProcess:
    """`python -m bench.server ...` with its one-line JSON protocol on stdin/stdout."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.proc: asyncio.subprocess.Process | None = None
        self.ready: dict[str, Any] = {}

    async def start(self, timeout: float = 120.0) -> dict[str, Any]:
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.server",
                *self.args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env=self.env,
                limit=16 * 2**20,  # the ready line carries a token per agent
            )
        self.ready = await self._reply(timeout)
        return self.ready

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def _reply(self, timeout: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"bench.server {self.args[0]} exited; see {self.log_path}")
        reply: dict[str, Any] = json.loads(line)
        if reply.get("ok") is False:
            raise RuntimeError(f"bench.server: {reply.get('error')}")
        return reply

    async def command(self, *words: str, timeout: float = 90.0) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((" ".join(words) + "\n").encode())
        await self.proc.stdin.drain()
        return await self._reply(timeout)

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        if self.proc.stdin is not None:
            self.proc.stdin.write(b"quit\n")
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 20)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


# --- CPU accounting ------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (0.0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU time every process of the machine has used since boot (all cores, not idle)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


DISTURBED_CORES = 0.3  # `other` at or above this: something else competed for the CPU


@dataclass
class RetryBudget:
    """Seconds the whole run may spend measuring disturbed cases again (keeps it bounded)."""

    seconds: float

    def allows(self, cost: float) -> bool:
        if cost > self.seconds:
            return False
        self.seconds -= cost
        return True


RETRIES = RetryBudget(75.0)


async def wait_quiet(timeout: float = 15.0, threshold: float = 0.2) -> bool:
    """Waits until the machine was nearly idle for two seconds in a row; False on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    quiet = 0
    while quiet < 2:
        if loop.time() > deadline:
            return False
        before = machine_busy_seconds()
        await asyncio.sleep(1.0)
        quiet = quiet + 1 if machine_busy_seconds() - before < threshold else 0
    return True


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


PidSource = Callable[[], list[int]]
OTHER = "other"


@dataclass
class CpuMeter:
    """CPU used per named process group between start() and stop(), in cores (CPU s / wall s).

    Each group's pids are looked up at every sample (PostgreSQL forks a backend per connection).
    `other` is what the rest of the machine used meanwhile (anything else running).
    """

    groups: dict[str, PidSource]
    before: dict[str, float] = field(default_factory=dict)
    cores: dict[str, float] = field(default_factory=dict)
    _began: float = 0.0

    def _sample(self) -> dict[str, float]:
        sample = {name: sum(cpu_seconds(p) for p in pids()) for name, pids in self.groups.items()}
        sample[OTHER] = machine_busy_seconds()
        return sample

    def start(self) -> None:
        self._began = asyncio.get_running_loop().time()
        self.before = self._sample()

    def stop(self) -> dict[str, float]:
        wall = max(1e-6, asyncio.get_running_loop().time() - self._began)
        after = self._sample()
        used = {k: (after[k] - self.before[k]) / wall for k in after}
        used[OTHER] = max(0.0, used[OTHER] - sum(v for k, v in used.items() if k != OTHER))
        self.cores = {k: round(v, 2) for k, v in used.items()}
        return self.cores


# --- PostgreSQL ----------------------------------------------------------------------------------
def postgres_missing() -> str:
    """Why PostgreSQL cannot run here, or '' if it can."""
    if not (PG_BIN / "initdb").exists():
        return f"{PG_BIN}/initdb not found"
    if shutil.which("runuser") is None:
        return "runuser not found"
    try:
        subprocess.run(["id", "postgres"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return "no postgres user"
    return ""


class Postgres:
    """A throwaway PostgreSQL 15 cluster on a loopback port, owned by the postgres user."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="wfm-bench-pg-"))
        self.port = localservers.free_port()
        self.postmaster_pid = 0

    def _as_postgres(self, *argv: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True, timeout=60
        )

    def start(self) -> str:
        shutil.chown(self.dir, "postgres", "postgres")
        data = self.dir / "data"
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        log = str(self.dir / "log")
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", log, "-w", "start"
        )
        self._as_postgres(
            str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "ferretdb"
        )
        self.postmaster_pid = int((data / "postmaster.pid").read_text().split()[0])
        return f"postgres://postgres@127.0.0.1:{self.port}/ferretdb"

    def pids(self) -> list[int]:
        return [self.postmaster_pid, *children(self.postmaster_pid)] if self.postmaster_pid else []

    def stop(self) -> None:
        if self.postmaster_pid:
            with contextlib.suppress(subprocess.SubprocessError):
                self._as_postgres(
                    str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "stop"
                )
        shutil.rmtree(self.dir, ignore_errors=True)
