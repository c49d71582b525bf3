"""API worker processes: more than one core for a service's RPCs (docs/workers.md).

One service process runs its RPCs on one event loop, so on CPython it uses one core at most.
With `<SERVICE>_WORKERS=N` the process you start (the primary) serves as before (RPCs,
projectors, relay) and starts N-1 API workers: the same service module with `WFM_ROLE=api`,
bound to the same port with SO_REUSEPORT, so the kernel spreads client connections over the
processes. A worker commits through its own relay (the horizon design allows any number of
relays; a dead one is recovered by the others) and runs no projector, so every view keeps one
writer. The primary restarts a worker that exits and stops them all when it stops; a worker
whose primary is gone stops itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from pathlib import Path

from wfm_runtime import logging as wlog
from wfm_runtime.config import API_WORKER, Settings

log = wlog.get("workers")

READY_FILE_ENV = "WFM_READY_FILE"
RESTART_DELAY_S = 1.0
PARENT_CHECK_S = 1.0


class ApiWorkers:
    """Starts, watches and stops a primary's API workers."""

    def __init__(self, module: str, settings: Settings, port: int) -> None:
        self._module = module
        self._count = settings.workers - 1
        self._env = {
            **os.environ,
            **settings.to_env(),
            f"{settings.service.upper()}_PORT": str(port),
            "WFM_ROLE": API_WORKER,
        }
        self._dir = Path(tempfile.mkdtemp(prefix=f"wfm-{settings.service}-workers-"))
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._watchers: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs.values() if p.returncode is None]

    async def start(self, timeout: float = 60.0) -> None:
        """Starts every worker and returns once each one serves the port."""
        try:
            for index in range(self._count):
                await self._spawn(index)
            async with asyncio.timeout(timeout):
                await asyncio.gather(*(self._ready(index) for index in range(self._count)))
        except BaseException:
            await self.stop(grace_s=0.0)
            raise
        self._watchers = [
            asyncio.create_task(self._watch(index), name=f"api-worker-{index}")
            for index in range(self._count)
        ]
        log.info("api_workers_serving", workers=self._count, pids=self.pids)

    async def _spawn(self, index: int) -> None:
        ready = self._ready_file(index)
        ready.unlink(missing_ok=True)
        self._procs[index] = await asyncio.create_subprocess_exec(
            sys.executable, "-m", self._module, env={**self._env, READY_FILE_ENV: str(ready)}
        )

    def _ready_file(self, index: int) -> Path:
        return self._dir / f"worker-{index}.ready"

    async def _ready(self, index: int) -> None:
        proc = self._procs[index]
        while not self._ready_file(index).exists():
            if proc.returncode is not None:
                raise RuntimeError(f"API worker {index} exited with {proc.returncode} at start")
            await asyncio.sleep(0.05)

    async def _watch(self, index: int) -> None:
        while True:
            code = await self._procs[index].wait()
            if self._stopping:
                return
            log.warning("api_worker_exited", worker=index, code=code)
            await asyncio.sleep(RESTART_DELAY_S)
            if self._stopping:
                return
            try:
                await self._spawn(index)
            except OSError as exc:  # no process could be started: try again after the delay
                log.error("api_worker_not_started", worker=index, error=str(exc))

    async def stop(self, grace_s: float) -> None:
        """SIGTERM to every worker (each drains its RPCs), SIGKILL after the grace period."""
        self._stopping = True
        for watcher in self._watchers:
            watcher.cancel()
        running = [p for p in self._procs.values() if p.returncode is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in running:
            try:
                await asyncio.wait_for(proc.wait(), grace_s + 5.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        for path in self._dir.glob("*"):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self._dir.rmdir()


def announce_ready() -> None:
    """In a worker: tells the primary this process serves the port."""
    path = os.environ.get(READY_FILE_ENV)
    if path:
        Path(path).touch()


async def stop_with_parent() -> None:
    """In a worker: SIGTERM to itself once the primary that started it is gone."""
    parent = os.getppid()
    while os.getppid() == parent:  # noqa: ASYNC110 (no event tells a process its parent died)
        await asyncio.sleep(PARENT_CHECK_S)
    log.warning("primary_gone", primary=parent)
    os.kill(os.getpid(), signal.SIGTERM)
