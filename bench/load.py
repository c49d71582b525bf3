"""The one load generator every case uses: N workers in a closed loop, or a fixed open-loop rate.

Both loops are bounded by a count and by a duration. A call is an async callable; its latency
is measured around the await (perf_counter), and an exception counts as an error.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

# A worker's call: (worker index, the worker's call number) -> awaitable.
Call = Callable[[int, int], Awaitable[object]]


@dataclass
class Stats:
    """Latencies in seconds of the successful calls of one run."""

    name: str
    workers: int
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)  # perf_counter when each call succeeded
    started: float = 0.0
    errors: int = 0
    first_error: str = ""
    parts: list[Stats] = field(default_factory=list)  # the runs a merged Stats was made of

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def quantile_ms(self, q: float) -> float:
        return quantile(self.latencies, q) * 1000.0

    def per_second(self) -> list[int]:
        """Successful calls in each whole second of the run (of each run, when merged)."""
        if self.parts:
            return [count for part in self.parts for count in part.per_second()]
        buckets = [0] * int(self.elapsed)
        for end in self.ends:
            index = int(end - self.started)
            if index < len(buckets):
                buckets[index] += 1
        return buckets

    def succeeded(self, begin: float) -> None:
        end = time.perf_counter()
        self.latencies.append(end - begin)
        self.ends.append(end)

    def failed(self, exc: BaseException) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = f"{type(exc).__name__}: {exc}"[:300]


def merged(runs: list[Stats]) -> Stats:
    """Several runs of one case as one: their calls, errors and time added up."""
    first = runs[0]
    return Stats(
        first.name,
        first.workers,
        elapsed=sum(r.elapsed for r in runs),
        latencies=[latency for r in runs for latency in r.latencies],
        errors=sum(r.errors for r in runs),
        first_error=next((r.first_error for r in runs if r.first_error), ""),
        parts=list(runs),
    )


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile (q in [0, 1]); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[rank]


async def closed_loop(name: str, call: Call, workers: int, total: int, duration: float) -> Stats:
    """`workers` tasks call back to back until `total` calls started or `duration` elapsed."""
    stats = Stats(name, workers)
    started = 0
    deadline = time.perf_counter() + duration

    async def worker(index: int) -> None:
        nonlocal started
        own = 0
        while started < total and time.perf_counter() < deadline:
            started += 1
            begin = time.perf_counter()
            try:
                await call(index, own)
            except Exception as exc:
                stats.failed(exc)
            else:
                stats.succeeded(begin)
            own += 1

    begin = stats.started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(workers)))
    stats.elapsed = time.perf_counter() - begin
    return stats


async def open_loop(
    name: str, call: Call, rate: float, total: int, max_in_flight: int = 500
) -> tuple[Stats, int]:
    """Starts call i at start + i/rate (not waiting for earlier ones); returns (stats, skipped).

    A call that would exceed `max_in_flight` is skipped, so an overloaded server cannot make
    the run unbounded. The worker index passed is always 0, the call number is i.
    """
    stats = Stats(name, max_in_flight)
    tasks: set[asyncio.Task[None]] = set()
    skipped = 0

    async def one(i: int) -> None:
        begin = time.perf_counter()
        try:
            await call(0, i)
        except Exception as exc:
            stats.failed(exc)
        else:
            stats.succeeded(begin)

    begin = stats.started = time.perf_counter()
    for i in range(total):
        delay = begin + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(tasks) >= max_in_flight:
            skipped += 1
            continue
        task = asyncio.create_task(one(i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=30.0)
    stats.elapsed = time.perf_counter() - begin
    return stats, skipped
