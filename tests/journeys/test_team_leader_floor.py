"""Journey: a Pune team working US customers through one shift start, seen by its team leader.

An admin registers the team (client in New York) and three agents (home zone Asia/Kolkata).
The team leader opens the live board; agents log in and work contacts; one takes a break.
The leader sees every change on the board, lists who is on break, and reviews an agent's
history with time in state and productive time, in IST and in the client's Eastern time.
"""

from __future__ import annotations

import asyncio

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from wfm.availability.v1 import availability_service_pb2 as pb

from tests.conftest import System
from wfm_runtime.testing import eventually
from wfm_runtime.timefmt import to_timestamp, utc_now

pytestmark = pytest.mark.journey

AGENTS = ["asha", "ravi", "meera"]


async def test_team_leader_follows_the_floor(system: System) -> None:
    await system.add_team("pune-us-night", zone="America/New_York")
    for agent in AGENTS:
        await system.add_agent(agent, "pune-us-night", zone="Asia/Kolkata")
    for agent in AGENTS:
        await system.known_to_availability(agent)
    shift_start = utc_now()

    board = system.avail.WatchAvailability(pb.WatchAvailabilityRequest(team="teams/pune-us-night"))
    snapshot = (await asyncio.wait_for(board.read(), 10)).snapshot
    assert {a.agent_id for a in snapshot.availabilities} == set(AGENTS)
    assert all(a.status == pb.AGENT_STATUS_OFFLINE for a in snapshot.availabilities)

    moves = [
        ("asha", pb.AGENT_STATUS_AVAILABLE),
        ("ravi", pb.AGENT_STATUS_AVAILABLE),
        ("meera", pb.AGENT_STATUS_AVAILABLE),
        ("asha", pb.AGENT_STATUS_ON_CONTACT),
        ("asha", pb.AGENT_STATUS_AFTER_CONTACT_WORK),
        ("ravi", pb.AGENT_STATUS_BREAK),
        ("asha", pb.AGENT_STATUS_AVAILABLE),
    ]
    for n, (agent, status) in enumerate(moves):
        await system.avail.SetStatus(
            pb.SetStatusRequest(
                name=f"agents/{agent}/availability",
                status=status,
                idempotency_key=f"move-{n}",
                reason_code="SCHEDULED_BREAK" if status == pb.AGENT_STATUS_BREAK else "",
            )
        )
        await asyncio.sleep(0.02)

    live: dict[str, pb.Availability] = {a.agent_id: a for a in snapshot.availabilities}
    for _ in moves:
        change = (await asyncio.wait_for(board.read(), 10)).change
        live[change.agent_id] = change
    board.cancel()
    assert live["asha"].status == pb.AGENT_STATUS_AVAILABLE and live["asha"].version == 4
    assert live["ravi"].status == pb.AGENT_STATUS_BREAK
    assert live["ravi"].reason_code == "SCHEDULED_BREAK" and not live["ravi"].productive
    assert live["ravi"].since_agent_local.local_time.endswith("+05:30")
    assert live["ravi"].since_client_local.abbreviation in {"EST", "EDT"}

    on_break = await eventually(
        lambda: system.avail.ListAvailability(
            pb.ListAvailabilityRequest(team="teams/pune-us-night", status=pb.AGENT_STATUS_BREAK)
        ),
        lambda r: [a.agent_id for a in r.availabilities] == ["ravi"],
    )
    assert on_break.availabilities[0].version == 2

    await eventually(
        lambda: system.availability.views.states(["asha"]),
        lambda s: "asha" in s and s["asha"].version == 4,
    )
    history = await system.avail.GetStatusHistory(
        pb.GetStatusHistoryRequest(
            name="agents/asha/availability",
            start_time=to_timestamp(shift_start),
            end_time=Timestamp(seconds=to_timestamp(utc_now()).seconds + 8 * 3600),
        )
    )
    assert [s.status for s in history.segments] == [
        pb.AGENT_STATUS_AVAILABLE,
        pb.AGENT_STATUS_ON_CONTACT,
        pb.AGENT_STATUS_AFTER_CONTACT_WORK,
        pb.AGENT_STATUS_AVAILABLE,
    ]
    assert all(s.productive for s in history.segments)
    assert history.productive_duration == history.covered_duration
    totals = {t.status: t.duration.ToTimedelta() for t in history.totals}
    assert set(totals) == {
        pb.AGENT_STATUS_AVAILABLE,
        pb.AGENT_STATUS_ON_CONTACT,
        pb.AGENT_STATUS_AFTER_CONTACT_WORK,
    }
    assert sum(totals.values(), start=totals[pb.AGENT_STATUS_AVAILABLE] * 0) == (
        history.covered_duration.ToTimedelta()
    )
