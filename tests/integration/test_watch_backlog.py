"""A watcher that stops reading holds a bounded backlog in the service (every change up to a
limit, then one per agent), and when it reads again it gets each agent's newest change; one
that keeps up gets every change."""

from __future__ import annotations

import asyncio
import itertools
from typing import TypeAlias

import grpc
import pytest
from wfm.availability.v1 import availability_service_pb2 as pb
from wfm.availability.v1 import availability_service_pb2_grpc as pb_grpc
from wfm.events.v1.envelope_pb2 import EventEnvelope

from tests.conftest import System
from wfm_runtime.livefeed import Backlog
from wfm_runtime.testing import eventually

pytestmark = pytest.mark.integration

READ_TIMEOUT_S = 30
LIMIT = 10  # the stalled watcher's: changes kept in order before only the newest are
AGENTS = ["s1", "s2", "s3"]
STATUSES = [pb.AGENT_STATUS_AVAILABLE, pb.AGENT_STATUS_ON_CONTACT, pb.AGENT_STATUS_BREAK]
# The stalled client: no window growth (BDP probing) and a small per-stream window, so the
# service's `yield` blocks after a few dozen changes instead of megabytes of them.
STALLED_CLIENT = [
    ("grpc.http2.bdp_probe", 0),
    ("grpc.http2.lookahead_bytes", 1024),
]


async def _floor(system: System) -> None:
    await system.add_team("night")
    await system.add_team("day")
    for agent in AGENTS:
        await system.add_agent(agent, "night")
    await system.add_agent("x1", "day")
    for agent in [*AGENTS, "x1"]:
        await system.known_to_availability(agent)


class Changes:
    """Status changes made one after another, each agent cycling through STATUSES."""

    def __init__(self, system: System) -> None:
        self._system = system
        self._serial = itertools.count()
        self.last: dict[str, int] = {}  # agent -> version of its last change

    async def make(self, agent: str) -> pb.Availability:
        version = self.last.get(agent, 0)
        made = await self._system.avail.SetStatus(
            pb.SetStatusRequest(
                name=f"agents/{agent}/availability",
                status=STATUSES[version % len(STATUSES)],  # never the status it has
                idempotency_key=f"change-{next(self._serial)}",
            )
        )
        assert made.version == version + 1
        self.last[agent] = made.version
        return made


async def _board(system: System) -> dict[str, pb.Availability]:
    listed = await system.avail.ListAvailability(
        pb.ListAvailabilityRequest(team="teams/night", page_size=100)
    )
    return {a.agent_id: a for a in listed.availabilities}


Stream: TypeAlias = grpc.aio.UnaryStreamCall[
    pb.WatchAvailabilityRequest, pb.WatchAvailabilityResponse
]


async def _read(stream: Stream) -> pb.WatchAvailabilityResponse:
    message = await asyncio.wait_for(stream.read(), READ_TIMEOUT_S)
    assert isinstance(message, pb.WatchAvailabilityResponse), "the stream ended"
    return message


def _watch(system: System, options: list[tuple[str, int]] | None = None) -> Stream:
    """A team leader's watch of the night team, on a connection of its own."""
    ch = grpc.aio.insecure_channel(
        f"127.0.0.1:{system.availability.port}",
        options=[("grpc.use_local_subchannel_pool", 1), *(options or [])],
    )
    system.channels.append(ch)
    token = system.minter.token("tl-7", "team_leader", teams=("night",))
    return pb_grpc.AvailabilityServiceStub(ch).WatchAvailability(
        pb.WatchAvailabilityRequest(team="teams/night"),
        metadata=(("authorization", f"Bearer {token}"),),
    )


async def _the_watcher(system: System) -> Backlog[EventEnvelope]:
    """The service's backlog of the one open watch (once the service has opened it)."""
    api = system.availability.api
    assert api is not None
    for _ in range(READ_TIMEOUT_S * 10):
        if api.watchers:
            (backlog,) = api.watchers
            return backlog
        await asyncio.sleep(0.1)
    raise AssertionError("the service has no open watch")


async def test_a_stalled_watcher_holds_one_change_per_agent_then_gets_the_newest(
    system: System,
) -> None:
    await _floor(system)
    changes = Changes(system)
    stream = _watch(system, STALLED_CLIENT)
    try:
        first = await _read(stream)
        assert first.WhichOneof("event") == "snapshot"
        board = {a.agent_id: a for a in first.snapshot.availabilities}
        backlog = await _the_watcher(system)
        backlog.fifo_limit = LIMIT

        # The client reads nothing while the floor keeps changing: the service's `yield`
        # blocks once the transport's windows are full, and changes wait in the backlog.
        made = 0
        while backlog.skipped < 100:
            await changes.make(AGENTS[made % len(AGENTS)])
            await changes.make("x1")  # another team's: not on this board, still delivered
            made += 1
            assert len(backlog) <= LIMIT  # whatever the stall
            assert made < 2000, "the watcher never fell behind"

        # Reading again: changes only (what was on its way, then each agent's newest), each
        # agent's versions rising, until every agent shows its last change.
        received: dict[str, list[int]] = {a: [] for a in AGENTS}
        while any(not v or v[-1] < changes.last[a] for a, v in received.items()):
            message = await _read(stream)
            assert message.WhichOneof("event") == "change"
            board[message.change.agent_id] = message.change
            received[message.change.agent_id].append(message.change.version)
        for versions in received.values():
            assert versions == sorted(set(versions))
        assert sum(map(len, received.values())) < made  # the states in between were skipped
        # What the client now shows is the board as it is.
        await eventually(
            lambda: _board(system),
            lambda b: all(b[a].version == changes.last[a] for a in AGENTS),
        )
        assert board == await _board(system)

        # ... and it carries on with every later change.
        later = await changes.make("s2")
        message = await _read(stream)
        assert message.WhichOneof("event") == "change"
        assert message.change == later
    finally:
        stream.cancel()


async def test_a_reading_watcher_gets_every_change(system: System) -> None:
    await _floor(system)
    changes = Changes(system)
    stream = _watch(system)
    try:
        first = await _read(stream)
        assert first.WhichOneof("event") == "snapshot"
        backlog = await _the_watcher(system)
        count = 100

        async def reader() -> list[pb.WatchAvailabilityResponse]:
            return [await _read(stream) for _ in range(count)]

        reading = asyncio.create_task(reader())
        made = []
        for i in range(count):
            made.append(await changes.make(AGENTS[i % len(AGENTS)]))
            await changes.make("x1")  # another team's: delivered, not sent
        received = await reading
        assert [m.WhichOneof("event") for m in received] == ["change"] * count
        assert [m.change for m in received] == made
        assert (backlog.skipped, backlog.behind) == (0, False)
    finally:
        stream.cancel()
    api = system.availability.api
    assert api is not None
    await eventually(lambda: _value(api.watchers), lambda w: w == ())  # unsubscribed


async def _value(
    value: tuple[Backlog[EventEnvelope], ...],
) -> tuple[Backlog[EventEnvelope], ...]:
    return value
