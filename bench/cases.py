"""The measured cases: echo baseline, raw insert loop, SetStatus throughput, view lag, profile.

Every throughput case runs the same closed loop (bench.load) with the same workers, count and
time bounds, after a short warm-up, while a CpuMeter records the CPU each process used.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bson
import grpc
from wfm.availability.v1 import availability_service_pb2 as pb
from wfm.availability.v1 import availability_service_pb2_grpc as pb_grpc

from bench.load import Call, Stats, closed_loop, merged, open_loop
from bench.procs import (
    DISTURBED_CORES,
    OTHER,
    RETRIES,
    CpuMeter,
    PidSource,
    ServerProcess,
    wait_quiet,
)
from bench.server import ECHO_METHOD, bearer
from wfm_runtime import mongo
from wfm_runtime.testing import OWN_CONNECTION_OPTION

# Every status in turn: an agent's next status always differs from its last one, so every
# SetStatus records an event (a repeated status would be a no-op, a different code path).
CYCLE = [
    pb.AGENT_STATUS_AVAILABLE,
    pb.AGENT_STATUS_ON_CONTACT,
    pb.AGENT_STATUS_AFTER_CONTACT_WORK,
    pb.AGENT_STATUS_BREAK,
    pb.AGENT_STATUS_LUNCH,
    pb.AGENT_STATUS_MEETING,
    pb.AGENT_STATUS_TRAINING,
    pb.AGENT_STATUS_OFFLINE,
]
RPC_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Plan:
    workers: int = 32
    total: int = 30_000  # per throughput case; the duration bound usually ends it first
    duration: float = 15.0
    warmup: int = 300
    size: int = 300  # bytes of the echo message and of the raw insert's BSON document
    agents: int = 200
    lag_rate: float = 200.0
    lag_seconds: float = 12.0
    # Each throughput case of a store runs in this many rounds of duration / rounds seconds,
    # interleaved (raw insert, SetStatus on 1 process, on `processes`, then again): the shared
    # machine's speed drifts over minutes, and each ratio then compares neighbouring seconds.
    rounds: int = 3
    profile_calls: int = 400
    # Availability's processes in the deployed shape (AVAILABILITY_WORKERS): SetStatus is also
    # measured on one process, and profiled there.
    processes: int = 2
    # Client connections of every gRPC case: one per closed-loop worker, as separate clients
    # would have (a service's API workers share its port connection by connection).
    connections: int = 32


@dataclass
class CaseResult:
    case: str
    backend: str
    stats: Stats
    cpu: dict[str, float]
    notes: list[str] = field(default_factory=list)
    # Seconds from the end of each round until the relay and projections had caught up.
    caught_up_s: list[float] = field(default_factory=list)

    @property
    def round_rates(self) -> list[float]:
        """Ops/s of each round, when the result merges rounds."""
        return [part.rate for part in self.stats.parts]


def merge_cases(results: list[CaseResult]) -> CaseResult:
    """Rounds of one case as one result: calls added up, CPU averaged over their time."""
    first = results[0]
    stats = merged([r.stats for r in results])
    groups = dict.fromkeys(k for r in results for k in r.cpu)
    cpu = {
        k: sum(r.cpu.get(k, 0.0) * r.stats.elapsed for r in results) / max(1e-9, stats.elapsed)
        for k in groups
    }
    notes = list(dict.fromkeys(n for r in results for n in r.notes))
    caught_up = [s for r in results for s in r.caught_up_s]
    return CaseResult(first.case, first.backend, stats, cpu, notes, caught_up)


@dataclass
class LagResult:
    backend: str
    rate: float
    stats: Stats
    skipped: int
    lags: list[float] = field(default_factory=list)  # seconds, one per acknowledged change
    missing: int = 0  # acknowledged but never seen applied by the board projection
    before_ok: int = 0  # applied before the client had the OK (lag counted as 0)
    board_check: str = ""
    cpu: dict[str, float] = field(default_factory=dict)
    processes: int = 1  # availability's processes


async def measure(
    case: str, backend: str, call: Call, plan: Plan, groups: dict[str, PidSource]
) -> CaseResult:
    warm = await closed_loop(f"{case}-warmup", call, plan.workers, plan.warmup, 60.0)
    if warm.errors:
        raise RuntimeError(f"{case} warm-up failed: {warm.first_error}")
    result = await _measured(case, backend, call, plan, groups)
    disturbed = result.cpu.get(OTHER, 0.0) >= DISTURBED_CORES
    if disturbed and RETRIES.allows(plan.duration + 15):  # something else ran: once more
        await wait_quiet()
        again = await _measured(case, backend, call, plan, groups)
        if again.cpu.get(OTHER, 0.0) < result.cpu[OTHER]:
            result = again
        result.notes.append("measured twice: other processes competed for the CPU the first time")
    return result


async def _measured(
    case: str, backend: str, call: Call, plan: Plan, groups: dict[str, PidSource]
) -> CaseResult:
    meter = CpuMeter(groups)
    meter.start()
    stats = await closed_loop(case, call, plan.workers, plan.total, plan.duration)
    return CaseResult(case, backend, stats, meter.stop())


def open_channels(address: str, count: int) -> list[grpc.aio.Channel]:
    """`count` channels, each on a TCP connection of its own, as `count` clients would have
    (gRPC otherwise shares one connection among a process's channels to one address)."""
    return [
        grpc.aio.insecure_channel(address, options=[(OWN_CONNECTION_OPTION, 1)])
        for _ in range(count)
    ]


async def close_channels(channels: list[grpc.aio.Channel]) -> None:
    for channel in channels:
        await channel.close()


def own_pid() -> list[int]:
    return [os.getpid()]


def pid_of(pid: int) -> PidSource:
    return lambda: [pid]


# --- 1. echo -------------------------------------------------------------------------------------
async def echo_case(plan: Plan, log_dir: Path) -> CaseResult:
    server = ServerProcess(["echo"], log_dir / "echo-server.log")
    ready = await server.start()
    groups = {"client": own_pid, "server": pid_of(server.pid)}
    payload = b"x" * plan.size
    channels = open_channels(f"127.0.0.1:{ready['port']}", plan.connections)
    try:
        echoes = [c.unary_unary(ECHO_METHOD) for c in channels]

        async def call(worker: int, n: int) -> None:
            reply = await echoes[worker % len(echoes)](payload, timeout=RPC_TIMEOUT_S)
            assert len(reply) == len(payload)

        return await measure("grpc echo", "-", call, plan, groups)
    finally:
        await close_channels(channels)
        await server.stop()


# --- 2. raw insert -------------------------------------------------------------------------------
def padded_doc(size: int) -> dict[str, object]:
    """A document like a small event (string _id, a few fields) padded to `size` BSON bytes."""
    doc: dict[str, object] = {
        "_id": "raw-00-000000-00000000",
        "aggregate_id": "agent-0000",
        "version": 1,
        "event_type": "wfm.availability.v1.StatusChanged",
        "occurred_at": time.time(),
        "pad": "",
    }
    doc["pad"] = "p" * max(0, size - len(bson.encode(doc)))
    return doc


async def insert_case(
    plan: Plan, backend: str, mongo_url: str, groups: dict[str, PidSource]
) -> CaseResult:
    client = mongo.connect(mongo_url, "wfm-bench")
    db_name = f"bench_raw_{os.getpid()}"
    coll = client[db_name]["docs"]
    template = padded_doc(plan.size)
    ids = itertools.count()

    async def call(worker: int, n: int) -> None:
        await coll.insert_one({**template, "_id": f"raw-00-{worker:06d}-{next(ids):08d}"})

    try:
        result = await measure("raw insert_one", backend, call, plan, {"client": own_pid, **groups})
    finally:
        await client.drop_database(db_name)
        client.close()
    result.notes.insert(0, f"{len(bson.encode(template))} B BSON document, string _id")
    return result


# --- 3.-6. the availability service -----------------------------------------------------------
class SetStatusDriver:
    """Issues SetStatus calls: unique keys, each agent's statuses rotating through CYCLE."""

    def __init__(
        self, stubs: list[pb_grpc.AvailabilityServiceStub], tokens: dict[str, str], tag: str
    ) -> None:
        self.agents = sorted(tokens)
        # Agent i always calls over connection i mod len(stubs), as an agent's own client would.
        self.stub_of = {a: stubs[i % len(stubs)] for i, a in enumerate(self.agents)}
        self.stub = stubs[0]
        self.last_version: dict[str, int] = {}  # the last version each agent was told of
        self.metadata = {agent: bearer(token) for agent, token in tokens.items()}
        self.tag = tag
        self.counts = dict.fromkeys(self.agents, 0)
        self.keys = itertools.count()
        self.acks: list[tuple[str, int, float]] = []  # (agent, version, monotonic time of OK)
        self.record = False
        self.sizes: tuple[int, ...] = ()  # request, reply, authorization metadata (bytes)

    async def set_status(self, agent: str) -> None:
        self.counts[agent] += 1
        request = pb.SetStatusRequest(
            name=f"agents/{agent}/availability",
            status=CYCLE[self.counts[agent] % len(CYCLE)],
            idempotency_key=f"{self.tag}-{next(self.keys)}",
        )
        reply = await self.stub_of[agent].SetStatus(
            request, timeout=RPC_TIMEOUT_S, metadata=self.metadata[agent]
        )
        self.last_version[agent] = max(reply.version, self.last_version.get(agent, 0))
        if not self.sizes:
            token = sum(len(k) + len(v) for k, v in self.metadata[agent])
            self.sizes = (request.ByteSize(), reply.ByteSize(), token)
        if self.record:
            self.acks.append((agent, reply.version, time.monotonic()))

    def closed_call(self, workers: int) -> Call:
        """Worker w owns agents w, w+workers, ...: no two workers write one agent at once."""
        owned = [self.agents[w::workers] or self.agents for w in range(workers)]

        async def call(worker: int, n: int) -> None:
            mine = owned[worker]
            await self.set_status(mine[n % len(mine)])

        return call

    async def open_call(self, worker: int, n: int) -> None:
        await self.set_status(self.agents[n % len(self.agents)])


@dataclass
class SystemRun:
    """One system subprocess (scheduling + availability, and availability's API workers when
    `processes` > 1) on one backend's store."""

    backend: str
    server: ServerProcess
    groups: dict[str, PidSource]
    channels: list[grpc.aio.Channel]
    driver: SetStatusDriver
    auth: bool
    admin: tuple[tuple[str, str], ...]
    processes: int = 1

    @classmethod
    async def start(
        cls,
        backend: str,
        *,
        urls: tuple[str, str],
        plan: Plan,
        groups: dict[str, PidSource],
        log_dir: Path,
        env: dict[str, str] | None = None,
        processes: int = 1,
    ) -> SystemRun:
        args = ["system", *urls, str(plan.agents), str(log_dir)]
        env = {**(env or {}), "WFM_BENCH_WORKERS": str(processes)}
        server = ServerProcess(args, log_dir / f"system-{backend}-{processes}p.log", env)
        ready = await server.start()
        channels = open_channels(f"127.0.0.1:{ready['availability_port']}", plan.connections)
        stubs = [pb_grpc.AvailabilityServiceStub(c) for c in channels]
        driver = SetStatusDriver(stubs, dict(ready["agents"]), f"b-{backend}-{processes}p")
        services = [server.pid, *ready["worker_pids"]]
        groups = {"client": own_pid, "services": lambda: services, **groups}
        return cls(
            backend,
            server,
            groups,
            channels,
            driver,
            bool(ready.get("auth")),
            bearer(ready["admin"]),
            processes,
        )

    async def stop(self) -> None:
        await close_channels(self.channels)
        await self.server.stop()

    async def throughput(self, plan: Plan) -> CaseResult:
        call = self.driver.closed_call(plan.workers)
        case = "SetStatus" if self.processes == 1 else f"SetStatus, {self.processes} processes"
        result = await measure(case, self.backend, call, plan, self.groups)
        result.caught_up_s.append(await self.settle())
        request, reply, token = self.driver.sizes
        auth = f", plus {token} B of `authorization` metadata" if token else " (no token)"
        result.notes.insert(0, f"{request} B request, {reply} B reply{auth}")
        return result

    async def settle(self, timeout: float = 60.0) -> float:
        """Seconds until the board shows every version the clients were told of: the primary's
        relay and projectors caught up, and every process's events are in the view."""
        began = time.perf_counter()
        await self.server.command("settle")
        deadline = time.monotonic() + timeout
        while behind := await self._board_behind():
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the board is behind the acknowledged versions of {behind} agents"
                )
            await asyncio.sleep(0.02)
        return time.perf_counter() - began

    async def _board_behind(self) -> int:
        seen: dict[str, int] = {}
        token = ""
        while True:
            page = await self.driver.stub.ListAvailability(
                pb.ListAvailabilityRequest(page_size=1000, page_token=token),
                timeout=RPC_TIMEOUT_S,
                metadata=self.admin,
            )
            seen.update((a.agent_id, a.version) for a in page.availabilities)
            token = page.next_page_token
            if not token:
                break
        last = self.driver.last_version
        return sum(seen.get(agent, 0) < version for agent, version in last.items())

    async def lag(self, plan: Plan, rate: float, log_dir: Path) -> LagResult:
        await self.settle()
        await self.server.command("lag-start")
        self.driver.acks.clear()
        self.driver.record = True
        meter = CpuMeter(self.groups)
        meter.start()
        total = int(rate * plan.lag_seconds)
        stats, skipped = await open_loop("lag", self.driver.open_call, rate, total)
        cpu = meter.stop()
        self.driver.record = False
        await self.settle()
        path = log_dir / f"lag-{self.backend}-{rate:.0f}.json"
        await self.server.command("lag-stop", str(path))
        result = LagResult(self.backend, rate, stats, skipped, cpu=cpu, processes=self.processes)
        _fill_lags(result, self.driver.acks, json.loads(path.read_text()))
        result.board_check = await self._board_check()
        return result

    async def _board_check(self, sample: int = 20) -> str:
        """GetAvailability of some agents shows the last version the client was told of."""
        last: dict[str, int] = {}
        for agent, version, _ in self.driver.acks:
            last[agent] = max(version, last.get(agent, 0))
        agents = sorted(last)[:sample]
        replies = await asyncio.gather(
            *(
                self.driver.stub.GetAvailability(
                    pb.GetAvailabilityRequest(name=f"agents/{a}/availability"),
                    timeout=RPC_TIMEOUT_S,
                    metadata=self.driver.metadata[a],
                )
                for a in agents
            )
        )
        same = sum(r.version == last[a] for a, r in zip(agents, replies, strict=True))
        return (
            f"{same}/{len(agents)} sampled agents' GetAvailability shows their last acked version"
        )

    async def profile(self, plan: Plan, path: Path) -> Stats:
        await self.settle()
        await self.server.command("profile-start")
        call = self.driver.closed_call(plan.workers)
        stats = await closed_loop("profile", call, plan.workers, plan.profile_calls, 60.0)
        await self.settle()  # the window includes the background work it caused
        await self.server.command("profile-stop", str(path))
        return stats


def _fill_lags(result: LagResult, acks: list[tuple[str, int, float]], applied: list[Any]) -> None:
    seen = {(str(a), int(v)): float(t) for a, v, t in applied}
    for agent, version, acked_at in acks:
        at = seen.get((agent, version))
        if at is None:
            result.missing += 1
            continue
        if at < acked_at:
            result.before_ok += 1
        result.lags.append(max(0.0, at - acked_at))
