"""AvailabilityService and DirectoryService over gRPC against the real servers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from wfm.availability.v1 import availability_service_pb2 as pb
from wfm.scheduling.v1 import directory_service_pb2 as dpb

from tests.conftest import System
from wfm_runtime.testing import eventually
from wfm_runtime.timefmt import to_timestamp, utc_now

pytestmark = pytest.mark.integration


async def _team_with_agents(system: System, team: str, agents: list[str]) -> None:
    await system.add_team(team)
    for agent in agents:
        await system.add_agent(agent, team)
    for agent in agents:
        await system.known_to_availability(agent)


def _set(agent: str, status: pb.AgentStatus.ValueType, key: str) -> pb.SetStatusRequest:
    return pb.SetStatusRequest(
        name=f"agents/{agent}/availability", status=status, idempotency_key=key
    )


async def test_list_filters_by_team_and_status_across_pages(system: System) -> None:
    await _team_with_agents(system, "night", [f"n{i}" for i in range(5)])
    await _team_with_agents(system, "day", ["d1", "d2"])
    for i in range(5):
        status = pb.AGENT_STATUS_AVAILABLE if i % 2 == 0 else pb.AGENT_STATUS_BREAK
        await system.avail.SetStatus(_set(f"n{i}", status, f"k{i}"))
    await eventually(lambda: system.availability.views.states(["n4"]), lambda s: "n4" in s)

    seen: list[str] = []
    token = ""
    while True:
        page = await system.avail.ListAvailability(
            pb.ListAvailabilityRequest(team="teams/night", page_size=2, page_token=token)
        )
        assert len(page.availabilities) <= 2
        seen += [a.agent_id for a in page.availabilities]
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"n{i}" for i in range(5)]

    available = await system.avail.ListAvailability(
        pb.ListAvailabilityRequest(team="teams/night", status=pb.AGENT_STATUS_AVAILABLE)
    )
    assert [a.agent_id for a in available.availabilities] == ["n0", "n2", "n4"]
    everyone = await system.avail.ListAvailability(pb.ListAvailabilityRequest(page_size=100))
    assert {a.agent_id for a in everyone.availabilities} == {*seen, "d1", "d2"}
    never_set = next(a for a in everyone.availabilities if a.agent_id == "d1")
    assert never_set.version == 0 and never_set.status == pb.AGENT_STATUS_OFFLINE


# Generous: the machine is shared, but a hang must end as a failure.
READ_TIMEOUT_S = 30


async def test_watch_starts_with_snapshot_then_streams_team_changes(system: System) -> None:
    await _team_with_agents(system, "night", ["w1", "w2"])
    await _team_with_agents(system, "day", ["x1"])
    await system.avail.SetStatus(_set("w1", pb.AGENT_STATUS_AVAILABLE, "w1-1"))
    await eventually(lambda: system.availability.views.states(["w1"]), lambda s: "w1" in s)

    stream = system.avail.WatchAvailability(pb.WatchAvailabilityRequest(team="teams/night"))
    try:
        # Bounded reads: a stream that never answers fails the test instead of hanging it.
        first = await asyncio.wait_for(stream.read(), READ_TIMEOUT_S)
        assert first.WhichOneof("event") == "snapshot"
        board = {a.agent_id: a for a in first.snapshot.availabilities}
        assert set(board) == {"w1", "w2"}
        assert board["w1"].status == pb.AGENT_STATUS_AVAILABLE

        await system.avail.SetStatus(_set("x1", pb.AGENT_STATUS_LUNCH, "x1-1"))  # another team
        await system.avail.SetStatus(_set("w2", pb.AGENT_STATUS_ON_CONTACT, "w2-1"))
        change = await asyncio.wait_for(stream.read(), READ_TIMEOUT_S)
        assert change.WhichOneof("event") == "change"
        assert change.change.agent_id == "w2"
        assert change.change.status == pb.AGENT_STATUS_ON_CONTACT
        assert change.change.since_agent_local.time_zone == "Asia/Kolkata"
    finally:
        stream.cancel()


async def test_history_gives_contiguous_segments_and_totals(system: System) -> None:
    await _team_with_agents(system, "night", ["h1"])
    start = utc_now()
    for i, status in enumerate(
        [
            pb.AGENT_STATUS_AVAILABLE,
            pb.AGENT_STATUS_ON_CONTACT,
            pb.AGENT_STATUS_AFTER_CONTACT_WORK,
            pb.AGENT_STATUS_BREAK,
        ]
    ):
        await system.avail.SetStatus(_set("h1", status, f"h-{i}"))
        await asyncio.sleep(0.05)
    await eventually(
        lambda: system.availability.views.states(["h1"]),
        lambda s: "h1" in s and s["h1"].version == 4,
    )
    end = Timestamp(seconds=to_timestamp(utc_now()).seconds + 3600)
    history = await system.avail.GetStatusHistory(
        pb.GetStatusHistoryRequest(
            name="agents/h1/availability", start_time=to_timestamp(start), end_time=end
        )
    )
    statuses = [s.status for s in history.segments]
    assert statuses == [
        pb.AGENT_STATUS_AVAILABLE,
        pb.AGENT_STATUS_ON_CONTACT,
        pb.AGENT_STATUS_AFTER_CONTACT_WORK,
        pb.AGENT_STATUS_BREAK,
    ]
    for earlier, later in zip(history.segments, history.segments[1:], strict=False):
        assert earlier.end_time == later.start_time
    assert history.segments[-1].ongoing
    productive = sum(
        s.duration.ToTimedelta().total_seconds() for s in history.segments if s.productive
    )
    assert history.productive_duration.ToTimedelta().total_seconds() == pytest.approx(productive)
    assert history.segments[0].start_client_local.time_zone == "America/New_York"


async def test_history_shows_a_status_taken_again_in_one_instant_as_one_segment(
    system: System,
) -> None:
    await _team_with_agents(system, "night", ["h2"])
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    changes = [
        (0, "AVAILABLE", ""),
        (60, "LUNCH", ""),  # overtaken in the same millisecond by the next change
        (60, "AVAILABLE", ""),
        (90, "AVAILABLE", "VIP_QUEUE"),
        (120, "BREAK", ""),
    ]
    # As the board projection writes them (the view is what GetStatusHistory reads).
    await system.availability.views.transitions.insert_many(
        [
            {
                "_id": f"h2/{version:012d}",
                "agent_id": "h2",
                "version": version,
                "status": status,
                "reason_code": reason,
                "at": start + timedelta(minutes=minutes),
            }
            for version, (minutes, status, reason) in enumerate(changes, start=1)
        ]
    )
    history = await system.avail.GetStatusHistory(
        pb.GetStatusHistoryRequest(
            name="agents/h2/availability",
            start_time=to_timestamp(start),
            end_time=to_timestamp(start + timedelta(hours=3)),
        )
    )
    assert [(s.status, s.reason_code, s.duration.ToTimedelta()) for s in history.segments] == [
        (pb.AGENT_STATUS_AVAILABLE, "", timedelta(minutes=90)),
        (pb.AGENT_STATUS_AVAILABLE, "VIP_QUEUE", timedelta(minutes=30)),
        (pb.AGENT_STATUS_BREAK, "", timedelta(minutes=60)),
    ]
    assert {t.status: t.duration.ToTimedelta() for t in history.totals} == {
        pb.AGENT_STATUS_AVAILABLE: timedelta(minutes=120),
        pb.AGENT_STATUS_BREAK: timedelta(minutes=60),
    }
    assert history.productive_duration.ToTimedelta() == timedelta(minutes=120)
    assert history.covered_duration.ToTimedelta() == timedelta(hours=3)


async def test_directory_create_get_update_list(system: System) -> None:
    await system.add_team("uk-wfh", zone="Europe/London")
    await system.add_agent("p1", "uk-wfh", zone="Europe/London")
    agent = await system.directory.GetAgent(dpb.GetAgentRequest(name="agents/p1"))
    assert agent.version == 1 and agent.team == "teams/uk-wfh"

    update = dpb.UpdateAgentRequest(
        agent=dpb.Agent(
            name="agents/p1",
            version=1,
            contract_type=dpb.CONTRACT_TYPE_PART_TIME,
            weekly_minutes=1800,
        ),
        update_mask=FieldMask(paths=["contract_type", "weekly_minutes"]),
        idempotency_key="u1",
    )
    updated = await system.directory.UpdateAgent(update)
    assert updated.version == 2 and updated.contract_type == dpb.CONTRACT_TYPE_PART_TIME
    assert await system.directory.UpdateAgent(update) == updated  # retried: same answer

    update.idempotency_key = "u2"
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await system.directory.UpdateAgent(update)
    assert stale.value.code() == grpc.StatusCode.ABORTED

    with pytest.raises(grpc.aio.AioRpcError) as duplicate:
        await system.directory.CreateAgent(
            dpb.CreateAgentRequest(
                agent_id="p1",
                idempotency_key="again",
                agent=dpb.Agent(
                    display_name="p1",
                    team="teams/uk-wfh",
                    time_zone="Europe/London",
                    contract_type=dpb.CONTRACT_TYPE_FULL_TIME,
                    weekly_minutes=2400,
                ),
            )
        )
    assert duplicate.value.code() == grpc.StatusCode.ALREADY_EXISTS

    with pytest.raises(grpc.aio.AioRpcError) as no_team:
        await system.directory.CreateAgent(
            dpb.CreateAgentRequest(
                agent_id="p2",
                idempotency_key="p2",
                agent=dpb.Agent(
                    display_name="p2",
                    team="teams/nowhere",
                    time_zone="Europe/London",
                    contract_type=dpb.CONTRACT_TYPE_FULL_TIME,
                    weekly_minutes=2400,
                ),
            )
        )
    assert no_team.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    listed = await eventually(
        lambda: system.directory.ListAgents(dpb.ListAgentsRequest(team="teams/uk-wfh")),
        lambda r: len(r.agents) == 1 and r.agents[0].version == 2,
    )
    assert listed.agents[0].name == "agents/p1"
    teams = await system.directory.ListTeams(dpb.ListTeamsRequest())
    assert [t.name for t in teams.teams] == ["teams/uk-wfh"]
