"""Journey: a scheduler rosters a Pune team on US hours across the US DST change and a holiday.

The team works US Eastern business hours (08:00-17:00 New York) from Pune, Asia/Kolkata. The
scheduler builds the fortnight Monday 2027-03-08 to Sunday 2027-03-21: US clocks go forward on
Sunday 14 March, so the shift that starts at 18:30 IST in the first week starts at 17:30 IST in
the second (IST has no DST). Wednesday 10 March is a public holiday on the Pune site's calendar
(Id-ul-Fitr, expected date). The scheduler checks the plan with a dry run, assigns around the
holiday, sets the coverage requirement and publishes both weeks. An agent reads her published
roster and requests two days of annual leave; the scheduler approves, which cancels her shifts
on those days. The roster, paid hours, leave balance and coverage come out right, seen by the
agent, the scheduler and the team leader.
"""

from __future__ import annotations

from typing import Any

import pytest
from wfm.scheduling.v1 import roster_service_pb2 as rpb

from tests import roster_helpers as h
from tests.conftest import System
from wfm_runtime.testing import eventually

pytestmark = pytest.mark.journey

AGENTS = ["asha", "ravi", "meera"]
TEAM = f"teams/{h.TEAM}"
PAID = 9 * 60 - 30  # a 9-hour shift with an unpaid 30-minute lunch


def _shift_starts(roster: rpb.AgentRoster) -> dict[str, tuple[str, str]]:
    return {
        d.roster_date: (s.start_agent_local.local_time, s.start_client_local.local_time)
        for d in roster.days
        for s in d.shifts
    }


async def _team_site_and_pattern(system: System, scheduler: Any) -> None:
    await h.add_team(system)
    for agent in AGENTS:
        await h.add_agent(system, agent)
    await h.add_site(scheduler, {"2027-03-10": "Id-ul-Fitr (expected)"})
    await h.add_night_pattern(scheduler)


async def test_scheduler_builds_publishes_and_adjusts_a_fortnight(system: System) -> None:
    scheduler = h.roster_stub(system, "sched-1", "scheduler")
    await _team_site_and_pattern(system, scheduler)

    # 1. A dry run of the whole fortnight shows the holiday for every agent and saves nothing.
    whole = rpb.BulkAssignShiftsRequest(
        shift_pattern="shiftPatterns/us-day",
        agents=[f"agents/{a}" for a in AGENTS],
        start_date="2027-03-08",
        end_date="2027-03-21",
        dry_run=True,
        idempotency_key="dry",
    )
    dry = await scheduler.BulkAssignShifts(whole)
    assert [{v.type for v in a.violations} for a in dry.assignments] == [{"PUBLIC_HOLIDAY"}] * 3
    assert all("2027-03-10" in a.violations[0].description for a in dry.assignments)

    # 2. So the scheduler assigns around the holiday: two bulk runs, every agent accepted.
    for n, (first, last) in enumerate([("2027-03-08", "2027-03-09"), ("2027-03-11", "2027-03-21")]):
        done = await scheduler.BulkAssignShifts(
            rpb.BulkAssignShiftsRequest(
                shift_pattern="shiftPatterns/us-day",
                agents=[f"agents/{a}" for a in AGENTS],
                start_date=first,
                end_date=last,
                idempotency_key=f"bulk-{n}",
            )
        )
        assert done.refused_agents == 0
    # 3. Two agents needed on every US business half-hour, Monday to Friday.
    need = [2 if 16 <= i < 34 else 0 for i in range(48)]
    for day in ("mon", "tue", "wed", "thu", "fri"):
        await scheduler.SetCoverageRequirement(
            rpb.SetCoverageRequirementRequest(
                team=TEAM, weekday=day, interval_minutes=30, required=need, idempotency_key=day
            )
        )
    for monday in ("2027-03-08", "2027-03-15"):
        published = await scheduler.PublishWeek(
            rpb.PublishWeekRequest(team=TEAM, week_start=monday, idempotency_key=f"pub-{monday}")
        )
        assert published.published_shifts == (12 if monday == "2027-03-08" else 15)

    # 4. The agent sees her nine published shifts: 08:00 in New York throughout, 18:30 IST
    #    before the US change and 17:30 IST after it.
    asha = h.roster_stub(system, "asha", "agent")
    fortnight = rpb.GetAgentRosterRequest(
        agent="agents/asha", start_date="2027-03-08", end_date="2027-03-21"
    )
    mine = await eventually(
        lambda: asha.GetAgentRoster(fortnight), lambda r: len(_shift_starts(r)) == 9
    )
    starts = _shift_starts(mine)
    assert "2027-03-10" not in starts
    assert starts["2027-03-12"] == ("2027-03-12T18:30:00+05:30", "2027-03-12T08:00:00-05:00")
    assert starts["2027-03-15"] == ("2027-03-15T17:30:00+05:30", "2027-03-15T08:00:00-04:00")
    assert mine.paid_minutes == 9 * PAID

    # 5. She asks for Wednesday and Thursday of week two off; the scheduler approves.
    asked = await asha.RequestLeave(
        rpb.RequestLeaveRequest(
            agent="agents/asha",
            leave_request_id="holi-trip",
            leave_request=rpb.LeaveRequest(
                kind=rpb.LEAVE_KIND_ANNUAL, start_date="2027-03-17", end_date="2027-03-18"
            ),
            idempotency_key="leave-1",
        )
    )
    assert (asked.state, asked.allowance_days) == (rpb.LEAVE_STATE_REQUESTED, 2.0)
    waiting = await eventually(
        lambda: scheduler.ListLeaveRequests(
            rpb.ListLeaveRequestsRequest(team=TEAM, state=rpb.LEAVE_STATE_REQUESTED)
        ),
        lambda page: len(page.leave_requests) == 1,
    )
    assert waiting.leave_requests[0].name == asked.name
    approved = await scheduler.ApproveLeave(
        rpb.ApproveLeaveRequest(name=asked.name, idempotency_key="approve-1")
    )
    assert approved.state == rpb.LEAVE_STATE_APPROVED

    # 6. Her roster loses exactly those two shifts; the hours and balance follow.
    after = await eventually(
        lambda: asha.GetAgentRoster(fortnight), lambda r: r.paid_minutes == 7 * PAID
    )
    cancelled = [
        d.roster_date for d in after.days for s in d.shifts if s.state == rpb.SHIFT_STATE_CANCELLED
    ]
    assert cancelled == ["2027-03-17", "2027-03-18"]
    assert [leave.state for leave in after.leave_requests] == [rpb.LEAVE_STATE_APPROVED]
    balance = await asha.GetLeaveBalance(rpb.GetLeaveBalanceRequest(agent="agents/asha", year=2027))
    assert (balance.allowance_days, balance.public_holidays) == (29, 1)
    assert (balance.taken_days, balance.pending_days, balance.remaining_days) == (2.0, 0.0, 26.0)

    # 7. The team leader's week two: paid hours per agent against the contract.
    leader = h.roster_stub(system, "tl-1", "team_leader", teams=(h.TEAM,))
    # (Team rosters and coverage read the views: eventually consistent, typically within ms.)
    week = await eventually(
        lambda: leader.GetTeamRoster(rpb.GetTeamRosterRequest(team=TEAM, week_start="2027-03-15")),
        lambda w: sum(a.paid_minutes for a in w.agents) == 13 * PAID,  # members show at once
    )
    hours = {a.agent: (a.paid_minutes, a.weekly_minutes) for a in week.agents}
    assert hours == {
        "agents/asha": (3 * PAID, 45 * 60),
        "agents/meera": (5 * PAID, 45 * 60),
        "agents/ravi": (5 * PAID, 45 * 60),
    }

    # 8. Coverage: on her leave day two agents cover the requirement except at their break
    #    (10:00 New York, 15 minutes: half an interval each) and lunch (12:00-12:30).
    wednesday = await leader.GetCoverage(
        rpb.GetCoverageRequest(team=TEAM, start_date="2027-03-17", end_date="2027-03-17")
    )
    by_time = {c.start_client_local.local_time[11:16]: c for c in wednesday.intervals}
    assert len(wednesday.intervals) == 48
    assert (by_time["08:00"].required, by_time["08:00"].scheduled) == (2, 2.0)
    assert (by_time["10:00"].scheduled, by_time["10:00"].gap) == (1.0, 1.0)
    assert (by_time["12:00"].scheduled, by_time["12:00"].gap) == (0.0, 2.0)
    assert by_time["17:00"].required == 0 and by_time["17:00"].scheduled == 0.0
    # The holiday is uncovered; the US change day has 46 half-hours.
    holiday = await leader.GetCoverage(
        rpb.GetCoverageRequest(team=TEAM, start_date="2027-03-10", end_date="2027-03-10")
    )
    assert {(c.required, c.gap) for c in holiday.intervals if c.required} == {(2, 2.0)}
    sunday = await scheduler.GetCoverage(
        rpb.GetCoverageRequest(team=TEAM, start_date="2027-03-14", end_date="2027-03-14")
    )
    assert len(sunday.intervals) == 46
