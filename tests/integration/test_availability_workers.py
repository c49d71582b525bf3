"""Availability served by a primary and an API worker on one port (AVAILABILITY_WORKERS=2), as
real OS processes: both serve, the worker follows the directory, a dead worker is replaced and
loses none of the writes it acknowledged, and stopping or killing the primary leaves no worker
behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from motor import motor_asyncio
from wfm.availability.v1 import availability_service_pb2 as pb
from wfm.availability.v1 import availability_service_pb2_grpc as pb_grpc
from wfm.scheduling.v1 import directory_service_pb2 as dpb

from services.availability.store import ROW_VERSION, bucket_rows
from tests.conftest import SpawnService, System
from tests.integration.test_guarantees import set_status
from wfm_runtime import localservers
from wfm_runtime.testing import channel, eventually

pytestmark = pytest.mark.integration

CONNECTIONS = 16  # SO_REUSEPORT hashes each connection: all 16 on one process is a 2^-15 chance


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == pid and stat[0] != "Z":
                    found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return stat[0] != "Z"


def listeners(port: int) -> int:
    """Sockets listening on the port (/proc/net/tcp*: state 0A is LISTEN)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


async def one_worker(primary: subprocess.Popen[bytes], port: int) -> int:
    """The primary's one worker, once it listens on the port too."""
    pids = await eventually(lambda: children_of(primary.pid), lambda p: len(p) == 1)
    await eventually(lambda: listeners(port), lambda n: n == 2, timeout=30)
    return pids[0]


async def gone(pid: int, timeout: float = 20.0) -> bool:
    await eventually(lambda: alive(pid), lambda a: not a, timeout=timeout)
    return True


def start_pair(
    system: System, service_process: SpawnService
) -> tuple[subprocess.Popen[bytes], int]:
    port = localservers.free_port()
    primary = service_process(system.prefix, port, {"AVAILABILITY_WORKERS": "2"})
    return primary, port


async def store_docs(
    system: System, database: str, collection: str, query: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Documents of the system's `<prefix><database>` database, read with a client of the
    test's own (the in-process services are stopped in these tests)."""
    client: motor_asyncio.AsyncIOMotorClient = motor_asyncio.AsyncIOMotorClient(system.mongo_url)
    try:
        coll = client[f"{system.prefix}{database}"][collection]
        return list(await coll.find(query or {}).to_list(None))
    finally:
        client.close()


async def audit_processes(system: System) -> set[str]:
    """Which processes wrote the audit records: each record id ends in its process's prefix."""
    docs = await store_docs(system, "availability_views", "audit")
    return {str(d["_id"]).rsplit("/", 1)[1][:8] for d in docs if "SetStatus" in d.get("method", "")}


@pytest.mark.own_clock
async def test_primary_and_worker_both_serve_and_the_worker_follows_the_directory(
    system: System, service_process: SpawnService
) -> None:
    await system.add_team("day")
    await system.add_team("night")
    await system.add_agent("w1", "day")
    # In the directory view before the in-process availability stops: the subprocesses
    # look a new agent up there on first use (their projector may not have run yet).
    await system.known_to_availability("w1")
    await system.availability.stop()  # the subprocesses are this test's only availability
    primary, port = start_pair(system, service_process)
    await one_worker(primary, port)
    token = system.minter.token("admin", "admin")
    channels = [
        channel(f"127.0.0.1:{port}", token, own_connection=True) for _ in range(CONNECTIONS)
    ]
    stubs = [pb_grpc.AvailabilityServiceStub(c) for c in channels]
    try:
        replies = [
            await stub.SetStatus(
                set_status(
                    "w1", pb.AGENT_STATUS_AVAILABLE if i % 2 else pb.AGENT_STATUS_BREAK, f"k{i}"
                )
            )
            for i, stub in enumerate(stubs)
        ]
        assert [r.version for r in replies] == list(range(1, CONNECTIONS + 1))
        assert {r.team for r in replies} == {"teams/day"}
        # Both processes answered some of these connections.
        await eventually(lambda: audit_processes(system), lambda p: len(p) == 2)

        # The worker learns a team change from the directory's events, not a 30 s re-read.
        moved = await system.directory.UpdateAgent(
            dpb.UpdateAgentRequest(
                agent=dpb.Agent(name="agents/w1", team="teams/night"),
                update_mask=FieldMask(paths=["team"]),
                idempotency_key="move-w1",
            )
        )
        assert moved.team == "teams/night"

        async def seen_by_every_connection() -> set[tuple[str, int]]:
            got = await asyncio.gather(
                *(
                    s.GetAvailability(pb.GetAvailabilityRequest(name="agents/w1/availability"))
                    for s in stubs
                )
            )
            return {(g.team, g.version) for g in got}

        # Every write, whichever process took it, reaches the primary's projection.
        final = {("teams/night", CONNECTIONS)}
        assert await eventually(seen_by_every_connection, lambda t: t == final, timeout=10) == final
    finally:
        for open_channel in channels:
            await open_channel.close()


@pytest.mark.own_clock
async def test_a_dead_worker_is_replaced_and_the_primary_takes_its_workers_down(
    system: System, service_process: SpawnService
) -> None:
    await system.add_team("day")
    await system.add_agent("w2", "day")
    await system.known_to_availability("w2")
    await system.availability.stop()
    primary, port = start_pair(system, service_process)
    first = await one_worker(primary, port)
    os.kill(first, signal.SIGKILL)
    second = await eventually(
        lambda: children_of(primary.pid), lambda p: len(p) == 1 and p[0] != first
    )
    token = system.minter.token("admin", "admin")
    async with channel(f"127.0.0.1:{port}", token, own_connection=True) as ch:
        reply = await pb_grpc.AvailabilityServiceStub(ch).SetStatus(
            set_status("w2", pb.AGENT_STATUS_MEETING, "after-restart"), timeout=10
        )
        assert reply.version == 1
    primary.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(primary.wait, 30) == 0
    assert await gone(second[0])


async def test_a_worker_stops_when_its_primary_is_killed(
    system: System, service_process: SpawnService
) -> None:
    await system.availability.stop()
    primary, port = start_pair(system, service_process)
    worker = await one_worker(primary, port)
    primary.send_signal(signal.SIGKILL)
    primary.wait()
    assert await gone(worker, timeout=10)
    async with channel(f"127.0.0.1:{port}", own_connection=True) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await pb_grpc.AvailabilityServiceStub(ch).GetAvailability(
                pb.GetAvailabilityRequest(name="agents/x/availability"), timeout=2
            )
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def board_versions(system: System, agents: list[str]) -> dict[str, int]:
    """Each agent's version on the board view."""
    docs = await store_docs(system, "availability_views", "board")
    rows = {a: r for doc in docs for a, r in bucket_rows(doc).items()}
    return {a: int(rows[a][ROW_VERSION]) if a in rows else 0 for a in agents}


async def recoveries(system: System) -> int:
    return len(await store_docs(system, "availability", "relay_recoveries"))


@pytest.mark.own_clock
async def test_writes_a_killed_worker_acknowledged_reach_the_view(
    system: System, service_process: SpawnService
) -> None:
    """NATS is down, so the events are only in the store; the worker that took some of them is
    SIGKILLed; the primary recovers its relay's horizon and every write reaches the board."""
    agents = [f"k{i:02d}" for i in range(CONNECTIONS)]
    await system.add_team("day")
    for agent in agents:
        await system.add_agent(agent, "day")
    for agent in agents:
        await system.known_to_availability(agent)
    await system.availability.stop()
    primary, port = start_pair(system, service_process)
    worker = await one_worker(primary, port)
    token = system.minter.token("admin", "admin")
    channels = [channel(f"127.0.0.1:{port}", token, own_connection=True) for _ in agents]
    try:
        system.nats.stop()
        for agent, ch in zip(agents, channels, strict=True):
            stub = pb_grpc.AvailabilityServiceStub(ch)
            reply = await stub.SetStatus(set_status(agent, pb.AGENT_STATUS_MEETING, f"m-{agent}"))
            assert reply.version == 1
        os.kill(worker, signal.SIGKILL)
        assert await gone(worker)
    finally:
        for open_channel in channels:
            await open_channel.close()
    system.nats.start()
    expected = dict.fromkeys(agents, 1)
    seen = await eventually(lambda: board_versions(system, agents), lambda v: v == expected, 60)
    assert seen == expected
    assert await recoveries(system) >= 1  # the dead worker's relay, recovered by the primary


@pytest.mark.own_clock
async def test_a_retry_on_another_process_returns_the_first_result(
    system: System, service_process: SpawnService
) -> None:
    """A request, then a later change, then the first request retried over 16 connections,
    so over both processes: every retry answers with the first result and applies nothing."""
    await system.add_team("day")
    await system.add_agent("r1", "day")
    await system.known_to_availability("r1")
    await system.availability.stop()
    primary, port = start_pair(system, service_process)
    await one_worker(primary, port)
    token = system.minter.token("admin", "admin")
    address = f"127.0.0.1:{port}"
    channels = [channel(address, token, own_connection=True) for _ in range(CONNECTIONS)]
    stubs = [pb_grpc.AvailabilityServiceStub(c) for c in channels]
    lunch = set_status("r1", pb.AGENT_STATUS_LUNCH, "lunch-once")
    try:
        first = await stubs[0].SetStatus(lunch)
        later = await stubs[1].SetStatus(set_status("r1", pb.AGENT_STATUS_BREAK, "break-after"))
        retries = [await stub.SetStatus(lunch) for stub in stubs]
        await eventually(lambda: audit_processes(system), lambda p: len(p) == 2)
    finally:
        for open_channel in channels:
            await open_channel.close()
    assert (first.version, later.version) == (1, 2)
    assert all(r == first for r in retries)
    on_board = await eventually(lambda: board_versions(system, ["r1"]), lambda v: v["r1"] > 1)
    assert on_board == {"r1": 2}
    assert await stored_events(system, "r1") == 2


async def stored_events(system: System, agent: str) -> int:
    return len(await store_docs(system, "availability", "events", {"aggregate_id": agent}))
