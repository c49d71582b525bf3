"""GetTeamAdherence, real-time adherence, over gRPC against the real services: a published
shift covering now, statuses set through the availability service, the team leader's view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import grpc
import pytest
from wfm.availability.v1 import availability_service_pb2 as apb
from wfm.performance.v1 import performance_service_pb2 as pb
from wfm.scheduling.v1 import roster_service_pb2 as rpb

from tests import roster_helpers as h
from tests.conftest import System
from tests.integration.test_performance_api import _team
from wfm_runtime.testing import eventually
from wfm_runtime.timefmt import utc_now

pytestmark = pytest.mark.integration

PUNE = ZoneInfo("Asia/Kolkata")
IN, OUT = pb.ADHERENCE_STATE_IN_ADHERENCE, pb.ADHERENCE_STATE_OUT_OF_ADHERENCE
NOT_SCHEDULED = pb.ADHERENCE_STATE_NOT_SCHEDULED


async def _shift_around_now(system: System, agent: str) -> datetime:
    """A published four-hour shift on the agent's clock that began on the last quarter hour
    more than an hour ago; returns its start."""
    start = (utc_now() - timedelta(hours=1)).astimezone(PUNE)
    start = start.replace(minute=start.minute // 15 * 15, second=0, microsecond=0)
    roster = h.roster_stub(system)
    await roster.AssignShift(
        rpb.AssignShiftRequest(
            agent=f"agents/{agent}",
            shift_id="now",
            shift=rpb.ShiftSpec(
                roster_date=start.date().isoformat(),
                start_local_time=f"{start:%H:%M}",
                length_minutes=240,
                anchor=rpb.ANCHOR_AGENT,
            ),
            idempotency_key=f"assign-{agent}",
        )
    )
    monday = start.date() - timedelta(days=start.weekday())
    await roster.PublishWeek(
        rpb.PublishWeekRequest(
            team="teams/rta", week_start=monday.isoformat(), idempotency_key=f"pub-{agent}"
        )
    )
    return start.astimezone(UTC)


async def _set(system: System, agent: str, status: apb.AgentStatus.ValueType, key: str) -> datetime:
    reply = await system.avail.SetStatus(
        apb.SetStatusRequest(
            name=f"agents/{agent}/availability", status=status, idempotency_key=key
        )
    )
    return reply.since.ToDatetime(UTC)


async def test_who_is_out_of_adherence_now_and_since_when(perf_system: System) -> None:
    system, perf = perf_system, perf_system.perf
    assert perf is not None
    await _team(system, "rta", ["on-shift", "late", "day-off"])
    for agent in ("on-shift", "late", "day-off"):
        await system.known_to_availability(agent)
    starts = {agent: await _shift_around_now(system, agent) for agent in ("on-shift", "late")}
    await _set(system, "on-shift", apb.AGENT_STATUS_AVAILABLE, "a1")
    went = await _set(system, "on-shift", apb.AGENT_STATUS_BREAK, "a2")  # not a break in the plan
    await _set(system, "day-off", apb.AGENT_STATUS_AVAILABLE, "d1")

    leader = system.perf_as("tl-1", "team_leader", teams=("rta",))

    async def board() -> dict[str, pb.AgentAdherence]:
        found = await leader.GetTeamAdherence(
            pb.GetTeamAdherenceRequest(name="teams/rta/adherence")
        )
        return {row.agent.removeprefix("agents/"): row for row in found.agents}

    rows = await eventually(
        board,
        lambda rows: (
            rows.get("on-shift") is not None
            and rows["on-shift"].status == "BREAK"
            and rows["late"].scheduled_activity == "WORK"
            # The last change: the board may show the others before it (seen on a busy machine).
            and rows["day-off"].status == "AVAILABLE"
        ),
    )
    assert list(rows) == ["day-off", "late", "on-shift"]
    on_shift = rows["on-shift"]
    assert (on_shift.scheduled_activity, on_shift.state) == ("WORK", OUT)
    # The state began with the status change (the service keeps instants to the millisecond).
    assert abs(on_shift.state_since.ToDatetime(UTC) - went) < timedelta(milliseconds=1)
    assert on_shift.status_since.ToDatetime(UTC) == on_shift.state_since.ToDatetime(UTC)
    assert on_shift.scheduled_start_time.ToDatetime(UTC) == starts["on-shift"]
    assert on_shift.scheduled_end_time.ToDatetime(UTC) == starts["on-shift"] + timedelta(hours=4)
    assert on_shift.scheduled_end_agent_local.abbreviation == "IST"
    assert on_shift.state_since_client_local.time_zone == "America/New_York"
    late = rows["late"]  # never logged in: out of adherence since the shift began
    assert (late.status, late.HasField("status_since"), late.state) == ("OFFLINE", False, OUT)
    assert late.state_since.ToDatetime(UTC) == starts["late"]
    day_off = rows["day-off"]  # working with no shift: nothing to adhere to
    assert (day_off.status, day_off.scheduled_activity, day_off.state) == (
        "AVAILABLE",
        "",
        NOT_SCHEDULED,
    )

    await _set(system, "on-shift", apb.AGENT_STATUS_AVAILABLE, "a3")  # back to work
    back = await eventually(board, lambda rows: rows["on-shift"].status == "AVAILABLE")
    assert back["on-shift"].state == IN
    whole = await perf.GetTeamAdherence(pb.GetTeamAdherenceRequest(name="teams/rta/adherence"))
    assert whole.out_of_adherence_count == 1  # only the agent who never logged in


async def test_unknown_team_bad_name_and_other_teams_leader_are_refused(
    perf_system: System,
) -> None:
    perf = perf_system.perf
    assert perf is not None
    await _team(perf_system, "rta", ["x1"])
    for name, code in [
        ("teams/nope/adherence", grpc.StatusCode.NOT_FOUND),
        ("teams/rta", grpc.StatusCode.INVALID_ARGUMENT),
        ("", grpc.StatusCode.INVALID_ARGUMENT),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await perf.GetTeamAdherence(pb.GetTeamAdherenceRequest(name=name))
        assert err.value.code() == code, name
    elsewhere = perf_system.perf_as("tl-2", "team_leader", teams=("day",))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await elsewhere.GetTeamAdherence(pb.GetTeamAdherenceRequest(name="teams/rta/adherence"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    agent = perf_system.perf_as("x1", "agent")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await agent.GetTeamAdherence(pb.GetTeamAdherenceRequest(name="teams/rta/adherence"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
