"""Section 5 guarantees, each against the real servers: nothing acknowledged is ever lost,
retries apply once, concurrent writers never both win, views are ordered and rebuildable."""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any

import grpc
import pytest
from motor import motor_asyncio
from wfm.availability.v1 import availability_service_pb2 as pb
from wfm.availability.v1 import availability_service_pb2_grpc as pb_grpc

from services.availability import domain
from services.availability import main as availability_main
from services.availability.store import (
    ROW_VERSION,
    board_bucket,
    board_row_to_state,
    bucket_rows,
)
from tests.conftest import SpawnService, System
from wfm_runtime import localservers
from wfm_runtime.service import control_subject
from wfm_runtime.testing import channel as bearer_channel
from wfm_runtime.testing import eventually

pytestmark = pytest.mark.integration

STATUSES = [
    pb.AGENT_STATUS_AVAILABLE,
    pb.AGENT_STATUS_ON_CONTACT,
    pb.AGENT_STATUS_AFTER_CONTACT_WORK,
    pb.AGENT_STATUS_BREAK,
]


def set_status(
    agent: str, status: pb.AgentStatus.ValueType, key: str, expected: int | None = None
) -> pb.SetStatusRequest:
    request = pb.SetStatusRequest(
        name=f"agents/{agent}/availability", status=status, idempotency_key=key
    )
    if expected is not None:
        request.expected_version = expected
    return request


async def board_version(system: System, agent: str) -> int:
    states = await system.availability.views.states([agent])
    return states[agent].version if agent in states else 0


async def stored_events(system: System, agent: str) -> int:
    return int(
        await system.availability.runtime.db["events"].count_documents({"aggregate_id": agent})
    )


async def ready_agent(system: System, agent: str = "a1") -> str:
    await system.add_team("night")
    await system.add_agent(agent, "night")
    await system.known_to_availability(agent)
    return agent


async def test_retry_with_same_key_applies_once_and_returns_first_result(system: System) -> None:
    agent = await ready_agent(system)
    first = await system.avail.SetStatus(set_status(agent, pb.AGENT_STATUS_AVAILABLE, "k-1"))
    await system.avail.SetStatus(set_status(agent, pb.AGENT_STATUS_BREAK, "k-2"))
    retry = await system.avail.SetStatus(set_status(agent, pb.AGENT_STATUS_AVAILABLE, "k-1"))
    assert retry == first  # the first result, not the current state (BREAK, version 2)
    assert await stored_events(system, agent) == 2
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await system.avail.SetStatus(set_status(agent, pb.AGENT_STATUS_LUNCH, "k-1"))
    assert reused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await stored_events(system, agent) == 2


async def test_retried_no_op_does_not_apply_after_later_changes(system: System) -> None:
    agent = await ready_agent(system)
    await system.avail.SetStatus(set_status(agent, pb.AGENT_STATUS_AVAILABLE, "k-1"))
    same = await system.avail.SetStatus(set_status(agent, pb.AGENT_STATUS_AVAILABLE, "k-noop"))
    assert same.version == 1  # already available: nothing recorded
    await system.avail.SetStatus(set_status(agent, pb.AGENT_STATUS_BREAK, "k-2"))
    retry = await system.avail.SetStatus(set_status(agent, pb.AGENT_STATUS_AVAILABLE, "k-noop"))
    assert retry == same  # the answer it had, not a new change back to AVAILABLE
    assert await stored_events(system, agent) == 2
    states = await eventually(
        lambda: system.availability.views.states([agent]),
        lambda s: agent in s and s[agent].version == 2,
    )
    assert states[agent].status == domain.Status.BREAK


async def test_stale_expected_version_is_aborted(system: System) -> None:
    agent = await ready_agent(system)
    await system.avail.SetStatus(set_status(agent, pb.AGENT_STATUS_AVAILABLE, "k-1", expected=0))
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await system.avail.SetStatus(set_status(agent, pb.AGENT_STATUS_BREAK, "k-2", expected=0))
    assert stale.value.code() == grpc.StatusCode.ABORTED
    assert await stored_events(system, agent) == 1


async def test_a_retry_refused_by_the_state_it_made_gets_its_first_result(
    system: System,
) -> None:
    """The retry's expected version is stale because of its own first attempt: still a replay."""
    agent = await ready_agent(system)
    first = await system.avail.SetStatus(
        set_status(agent, pb.AGENT_STATUS_AVAILABLE, "k-1", expected=0)
    )
    retry = await system.avail.SetStatus(
        set_status(agent, pb.AGENT_STATUS_AVAILABLE, "k-1", expected=0)
    )
    assert retry == first and retry.version == 1
    with pytest.raises(grpc.aio.AioRpcError) as refused:  # a new key with that version: refused
        await system.avail.SetStatus(set_status(agent, pb.AGENT_STATUS_BREAK, "k-2", expected=0))
    assert refused.value.code() == grpc.StatusCode.ABORTED
    # The refusal wrote nothing, so its key is still free for the change it asked for.
    again = await system.avail.SetStatus(
        set_status(agent, pb.AGENT_STATUS_BREAK, "k-2", expected=1)
    )
    assert again.version == 2
    assert await stored_events(system, agent) == 2


async def test_concurrent_writers_in_two_processes_never_both_win(system: System) -> None:
    """Two service instances on one store race for the same version: the unique insert decides."""
    agent = await ready_agent(system)
    twin = await availability_main.start(system.settings_for("availability"), port=0)
    channel = bearer_channel(f"127.0.0.1:{twin.port}", system.minter.token("admin", "admin"))
    try:
        await eventually(lambda: twin.directory.agent(agent))
        stubs = [system.avail, pb_grpc.AvailabilityServiceStub(channel)]
        for round_no in range(5):
            version = round_no
            calls = [
                stubs[i % 2].SetStatus(
                    set_status(agent, STATUSES[i % 4], f"r{round_no}-{i}", expected=version)
                )
                for i in range(6)
            ]
            results = await asyncio.gather(*calls, return_exceptions=True)
            oks = [r for r in results if isinstance(r, pb.Availability)]
            losers = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
            writes = [r for r in oks if r.version == version + 1]
            # Exactly one writer commits version+1. Another OK can only be a no-op that asked
            # for the status the agent already had at `version` (it wrote nothing).
            assert len(writes) == 1, results
            assert all(r.version == version for r in oks if r not in writes)
            assert all(e.code() == grpc.StatusCode.ABORTED for e in losers)
        assert await stored_events(system, agent) == 5
    finally:
        await channel.close()
        await twin.stop()


async def test_acknowledged_write_reaches_view_after_nats_outage(system: System) -> None:
    agent = await ready_agent(system)
    system.nats.stop()
    reply = await asyncio.wait_for(
        system.avail.SetStatus(set_status(agent, pb.AGENT_STATUS_ON_CONTACT, "during-outage")), 5
    )
    assert reply.version == 1
    system.nats.start()
    await eventually(lambda: board_version(system, agent), lambda v: v == 1, timeout=30)
    relay = system.availability.runtime.relay
    await relay.wait_settled(timeout=30)  # the relay saw JetStream's ack: nothing held back
    assert relay.settled


async def test_projector_failing_mid_batch_applies_every_event_once(system: System) -> None:
    agent = await ready_agent(system)
    runner = system.availability.runtime.projectors[0]
    projection = runner.projection
    real_apply = projection.apply
    failures = {"left": 2}

    async def crash_after_half(envelopes):
        if failures["left"] and len(envelopes) > 1:
            failures["left"] -= 1
            await real_apply(envelopes[: len(envelopes) // 2])
            raise RuntimeError("projector killed mid-batch")
        await real_apply(envelopes)

    projection.apply = crash_after_half  # type: ignore[method-assign]
    for i in range(40):
        await system.avail.SetStatus(set_status(agent, STATUSES[i % 4], f"burst-{i}"))
    await eventually(lambda: board_version(system, agent), lambda v: v == 40, timeout=30)
    transitions = system.availability.views.transitions
    docs = await transitions.find({"agent_id": agent}).to_list(None)
    assert sorted(d["version"] for d in docs) == list(range(1, 41))


async def test_rebuilt_views_equal_incremental_views(system: System) -> None:
    agents = ["r1", "r2", "r3"]
    await system.add_team("night")
    for agent in agents:
        await system.add_agent(agent, "night")
        await system.known_to_availability(agent)
    for i in range(30):
        await system.avail.SetStatus(set_status(agents[i % 3], STATUSES[i % 4], f"rb-{i}"))
    views = system.availability.views
    await eventually(lambda: board_version(system, "r3"), lambda v: v == 10)
    for runner in system.availability.runtime.projectors:
        await runner.wait_caught_up()
    before = await snapshot(views)
    # The same path `make rebuild-views` takes: a control request over NATS.
    nc = system.availability.runtime.bus.nc
    reply = await nc.request(
        control_subject("availability", "rebuild-views", system.namespace), b"", timeout=60
    )
    assert json.loads(reply.data)["ok"] is True
    assert await snapshot(views) == before


async def snapshot(views: object) -> dict[str, list[dict[str, object]]]:
    result = {}
    for name in ("board", "transitions", "directory_agents", "directory_teams"):
        coll = getattr(
            views, {"directory_agents": "agents", "directory_teams": "teams"}.get(name, name)
        )
        result[name] = sorted(await coll.find({}).to_list(None), key=lambda d: str(d["_id"]))
    return result


@pytest.mark.own_clock
async def test_write_survives_sigkill_before_publish(
    system: System, service_process: SpawnService
) -> None:
    """NATS is down, so the event can only be in the store; the process dies; nothing is lost."""
    agent = await ready_agent(system)
    port = localservers.free_port()
    proc = service_process(system.prefix, port)
    async with bearer_channel(f"127.0.0.1:{port}", system.minter.token("a", "admin")) as channel:
        stub = pb_grpc.AvailabilityServiceStub(channel)
        await eventually(lambda: _known(stub, agent))
        system.nats.stop()
        reply = await stub.SetStatus(set_status(agent, pb.AGENT_STATUS_MEETING, "before-kill"))
        assert reply.version == 1
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    system.nats.start()
    service_process(system.prefix, localservers.free_port())  # recovers the dead relay's horizon
    await eventually(lambda: board_version(system, agent), lambda v: v == 1, timeout=30)


async def _known(stub: pb_grpc.AvailabilityServiceStub, agent: str) -> bool:
    try:
        await stub.GetAvailability(pb.GetAvailabilityRequest(name=f"agents/{agent}/availability"))
    except grpc.aio.AioRpcError:
        return False
    return True


async def test_unreachable_store_is_unavailable_then_recovers(
    system: System, mongo_server: localservers.ManagedProcess | None
) -> None:
    if mongo_server is None:
        pytest.skip("needs the local FerretDB process to stop it")
    agent = await ready_agent(system)
    system.availability.runtime.commands.forget("agent_availability", agent)
    mongo_server.stop()
    try:
        with pytest.raises(grpc.aio.AioRpcError) as down:
            await system.avail.SetStatus(
                set_status(agent, pb.AGENT_STATUS_BREAK, "down"), timeout=10
            )
        assert down.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        mongo_server.start()
    reply = await eventually(lambda: _try_set(system, agent), lambda r: r is not None, timeout=30)
    assert reply is not None and reply.status == pb.AGENT_STATUS_BREAK


async def _try_set(system: System, agent: str) -> pb.Availability | None:
    try:
        return await system.avail.SetStatus(
            set_status(agent, pb.AGENT_STATUS_BREAK, "after"), timeout=5
        )
    except grpc.aio.AioRpcError:
        return None


async def test_watch_without_nats_is_unavailable_not_a_hang(system: System) -> None:
    await ready_agent(system)
    system.nats.stop()
    try:
        await eventually(lambda: _bus_down(system))
        stream = system.avail.WatchAvailability(pb.WatchAvailabilityRequest(), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as down:
            await stream.read()
        assert down.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        system.nats.start()


async def _bus_down(system: System) -> bool:
    return not system.availability.runtime.bus.connected


@pytest.mark.own_clock
async def test_projector_killed_mid_batch_loses_nothing(
    system: System, service_process: SpawnService
) -> None:
    """SIGKILL the only projector while it works through a burst; a new process finishes it."""
    agent = await ready_agent(system)
    await system.availability.runtime.close()  # leave the subprocess as the only projector
    port = localservers.free_port()
    proc = service_process(system.prefix, port)
    async with bearer_channel(f"127.0.0.1:{port}", system.minter.token("a", "admin")) as channel:
        stub = pb_grpc.AvailabilityServiceStub(channel)
        await eventually(lambda: _known(stub, agent))
        for i in range(150):
            await stub.SetStatus(set_status(agent, STATUSES[i % 4], f"kill-{i}"))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    service_process(system.prefix, localservers.free_port())
    client: Any = motor_asyncio.AsyncIOMotorClient(system.mongo_url)
    try:
        views = client[f"{system.prefix}availability_views"]
        bucket = await eventually(
            lambda: views["board"].find_one({"_id": board_bucket(agent)}),
            lambda d: bucket_rows(d).get(agent, [None] * 4)[ROW_VERSION] == 150,
            timeout=40,
        )
        # the 150th status: STATUSES[149 % 4]
        assert board_row_to_state(agent, bucket_rows(bucket)[agent]).status.value == "ON_CONTACT"
        # An event the killed process committed but had not published yet reaches the stream
        # when a live relay recovers the dead one's horizon, possibly after later versions.
        docs = await eventually(
            lambda: views["transitions"].find({"agent_id": agent}).to_list(None),
            lambda found: len(found) >= 150,
            timeout=40,
        )
        assert sorted(d["version"] for d in docs) == list(range(1, 151))
    finally:
        client.close()
