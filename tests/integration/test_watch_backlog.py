"""A watcher that stops reading holds at most WFM_WATCH_BACKLOG changes in the service, and
when it reads again it gets the board as it is now, then the changes after it."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import TypeAlias

import grpc
import pytest
from wfm.availability.v1 import availability_service_pb2 as pb
from wfm.availability.v1 import availability_service_pb2_grpc as pb_grpc

from tests.conftest import Nats, System, start_system, stop_system
from wfm_runtime.livefeed import Backlog
from wfm_runtime.testing import TokenMinter, eventually

pytestmark = pytest.mark.integration

BOUND = 20
READ_TIMEOUT_S = 30
AGENTS = ["s1", "s2", "s3"]
STATUSES = [pb.AGENT_STATUS_AVAILABLE, pb.AGENT_STATUS_ON_CONTACT, pb.AGENT_STATUS_BREAK]
# The stalled client: no window growth (BDP probing) and a small per-stream window, so the
# service's `yield` blocks after a few dozen changes instead of megabytes of them.
STALLED_CLIENT = [
    ("grpc.http2.bdp_probe", 0),
    ("grpc.http2.lookahead_bytes", 1024),
]


@pytest.fixture
async def system(
    mongo_url: str, nats: Nats, minter: TokenMinter, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[System]:
    """The system with a small backlog per watcher, set as in production (the environment)."""
    monkeypatch.setenv("WFM_WATCH_BACKLOG", str(BOUND))
    running = await start_system(mongo_url, nats, minter)
    try:
        yield running
    finally:
        await stop_system(running)


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


async def _the_watcher(system: System) -> Backlog[bytes]:
    """The service's backlog of the one open watch (once the service has opened it)."""
    api = system.availability.api
    assert api is not None
    for _ in range(READ_TIMEOUT_S * 10):
        if api.watchers:
            (backlog,) = api.watchers
            return backlog
        await asyncio.sleep(0.1)
    raise AssertionError("the service has no open watch")


async def test_a_stalled_watcher_holds_at_most_the_bound_then_resyncs(system: System) -> None:
    await _floor(system)
    changes = Changes(system)
    stream = _watch(system, STALLED_CLIENT)
    try:
        first = await _read(stream)
        assert first.WhichOneof("event") == "snapshot"
        backlog = await _the_watcher(system)

        # The client reads nothing while the floor keeps changing: the service's `yield`
        # blocks once the transport's windows are full, and changes wait in the backlog.
        made = 0
        while backlog.overflows < 3:
            await changes.make(AGENTS[made % len(AGENTS)])
            await changes.make("x1")  # another team's: not on this board, still delivered
            made += 1
            assert len(backlog) <= BOUND
            assert made < 2000, "the watcher never fell behind"
        assert backlog.high_water <= BOUND
        assert backlog.dropped > BOUND

        # The board as it is now, once the view has every change.
        await eventually(
            lambda: _board(system),
            lambda b: all(b[a].version == v for a, v in changes.last.items() if a in b),
        )
        board = await _board(system)

        # Reading again: what was already on its way (changes), then the board as it is now.
        message = await _read(stream)
        before = 0
        while message.WhichOneof("event") == "change":
            before += 1
            message = await _read(stream)
        assert message.WhichOneof("event") == "snapshot"
        assert before < made  # most changes were dropped, not sent late
        assert {a.agent_id: a for a in message.snapshot.availabilities} == board

        # ... then the changes made after it, and no other snapshot.
        later = await changes.make("s2")
        message = await _read(stream)
        assert message.WhichOneof("event") == "change"
        assert message.change == later
    finally:
        stream.cancel()


async def test_a_reading_watcher_gets_every_change_and_no_resync(system: System) -> None:
    await _floor(system)
    changes = Changes(system)
    stream = _watch(system)
    try:
        first = await _read(stream)
        assert first.WhichOneof("event") == "snapshot"
        backlog = await _the_watcher(system)
        count = 5 * BOUND  # far more than the bound, made as fast as they commit

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
        assert (backlog.overflows, backlog.dropped) == (0, 0)
        assert backlog.high_water < BOUND
    finally:
        stream.cancel()
    api = system.availability.api
    assert api is not None
    await eventually(lambda: _value(api.watchers), lambda w: w == ())  # unsubscribed


async def _value(value: tuple[Backlog[bytes], ...]) -> tuple[Backlog[bytes], ...]:
    return value
