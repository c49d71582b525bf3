"""RosterService over gRPC against the real servers: rules, dry runs, bulk, leave, guarantees."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import grpc
import pytest
from google.protobuf import field_mask_pb2
from wfm.scheduling.v1 import directory_service_pb2 as dpb
from wfm.scheduling.v1 import roster_service_pb2 as rpb

from services.scheduling import rostertime as rt
from services.scheduling.store import DirectoryStore
from tests import roster_helpers as h
from tests.conftest import System
from wfm_runtime.testing import eventually

pytestmark = pytest.mark.integration


def _spec(day: str, start: str = "08:00", minutes: int = 540, **kw: object) -> rpb.ShiftSpec:
    return rpb.ShiftSpec(
        roster_date=day,
        start_local_time=start,
        length_minutes=minutes,
        anchor=rpb.ANCHOR_CLIENT,
        activities=[h.BREAK, h.LUNCH],
        **kw,  # type: ignore[arg-type]
    )


async def _setup(system: System, *agents: str) -> object:
    roster = h.roster_stub(system)
    await h.add_team(system)
    await h.add_site(roster, {"2027-03-10": "Holiday"})
    for agent in agents:
        await h.add_agent(system, agent)
    return roster


async def test_assign_shows_both_clocks_and_rules_are_listed_together(system: System) -> None:
    roster = await _setup(system, "asha")
    done = await roster.AssignShift(  # type: ignore[attr-defined]
        rpb.AssignShiftRequest(
            agent="agents/asha", shift_id="s1", shift=_spec("2027-03-08"), idempotency_key="k1"
        )
    )
    shift = done.shifts[0]
    assert shift.start_client_local.local_time == "2027-03-08T08:00:00-05:00"
    assert shift.start_agent_local.local_time == "2027-03-08T18:30:00+05:30"
    assert shift.end_agent_local.local_time == "2027-03-09T03:30:00+05:30"
    assert (shift.elapsed_minutes, shift.paid_minutes) == (540, 510)
    assert shift.state == rpb.SHIFT_STATE_DRAFT and done.schedule_version == 1

    clash = rpb.AssignShiftRequest(
        agent="agents/asha",
        shift_id="s2",
        shift=_spec("2027-03-08", "10:00", 600),  # overlaps, runs past 17:00 NY
        idempotency_key="k2",
    )
    code, details, _ = await h.refusal(roster.AssignShift(clash))  # type: ignore[attr-defined]
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert h.rule_types(details) == ["OPERATING_HOURS", "OVERLAP"]
    clash.dry_run = True
    dry = await roster.AssignShift(clash)  # type: ignore[attr-defined]
    assert dry.dry_run and sorted(v.type for v in dry.violations) == ["OPERATING_HOURS", "OVERLAP"]
    # Nothing was saved by the refusal or the dry run: version 1, one shift.
    await eventually(
        lambda: system.scheduling.roster_views.store.schedule("asha"), lambda s: s.version == 1
    )
    again = await roster.AssignShift(  # type: ignore[attr-defined]
        rpb.AssignShiftRequest(
            agent="agents/asha", shift_id="s1", shift=_spec("2027-03-08"), idempotency_key="k1"
        )
    )
    assert again == done  # the retry returns the first result


async def test_holiday_needs_an_override_and_spring_forward_is_refused(system: System) -> None:
    roster = await _setup(system, "asha")
    holiday = rpb.AssignShiftRequest(
        agent="agents/asha", shift_id="h", shift=_spec("2027-03-10"), idempotency_key="h1"
    )
    code, details, _ = await h.refusal(roster.AssignShift(holiday))  # type: ignore[attr-defined]
    assert h.rule_types(details) == ["PUBLIC_HOLIDAY"]
    holiday.shift.overrides.append("PUBLIC_HOLIDAY")
    holiday.idempotency_key = "h2"
    assert (await roster.AssignShift(holiday)).shifts[0].overrides == ["PUBLIC_HOLIDAY"]  # type: ignore[attr-defined]

    gap = rpb.AssignShiftRequest(
        agent="agents/asha",
        shift_id="g",
        shift=rpb.ShiftSpec(
            roster_date="2027-03-14",
            start_local_time="02:30",
            length_minutes=60,
            anchor=rpb.ANCHOR_CLIENT,
        ),
        idempotency_key="g1",
    )
    code, details, message = await h.refusal(roster.AssignShift(gap))  # type: ignore[attr-defined]
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "2027-03-14 02:30 does not exist in America/New_York" in message


async def test_stale_version_is_aborted_and_bad_input_changes_nothing(system: System) -> None:
    roster = await _setup(system, "asha")
    await roster.AssignShift(  # type: ignore[attr-defined]
        rpb.AssignShiftRequest(
            agent="agents/asha", shift_id="s1", shift=_spec("2027-03-08"), idempotency_key="k1"
        )
    )
    stale = rpb.AssignShiftRequest(
        agent="agents/asha",
        shift_id="s2",
        shift=_spec("2027-03-09"),
        idempotency_key="k2",
        expected_version=7,
    )
    code, _, _ = await h.refusal(roster.AssignShift(stale))  # type: ignore[attr-defined]
    assert code == grpc.StatusCode.ABORTED
    bad = rpb.AssignShiftRequest(
        agent="agents/asha",
        shift_id="bad id",
        shift=rpb.ShiftSpec(
            roster_date="2027-02-30",
            start_local_time="25:00",
            length_minutes=99_999,
            anchor=42,  # type: ignore[arg-type]
            activities=[rpb.Activity(kind=9, offset_minutes=-1, length_minutes=0)],  # type: ignore[arg-type]
            overrides=["OVERLAP"],
        ),
        idempotency_key="",
    )
    code, details, _ = await h.refusal(roster.AssignShift(bad))  # type: ignore[attr-defined]
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    fields = {
        v.field for d in details if hasattr(d, "field_violations") for v in d.field_violations
    }
    assert {
        "shift_id",
        "shift.roster_date",
        "shift.start_local_time",
        "shift.length_minutes",
        "shift.anchor",
        "shift.activities[0].kind",
        "shift.activities[0]",
        "shift.overrides",
        "idempotency_key",
    } <= fields
    code, _, _ = await h.refusal(
        roster.AssignShift(  # type: ignore[attr-defined]
            rpb.AssignShiftRequest(
                agent="agents/ghost", shift_id="s", shift=_spec("2027-03-08"), idempotency_key="x"
            )
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND
    roster_now = await roster.GetAgentRoster(  # type: ignore[attr-defined]
        rpb.GetAgentRosterRequest(
            agent="agents/asha", start_date="2027-03-01", end_date="2027-03-31"
        )
    )
    assert roster_now.schedule_version == 1


async def test_concurrent_changes_to_one_agent_cannot_both_pass(system: System) -> None:
    roster = await _setup(system, "asha")
    # Two different shifts that overlap each other, sent at once through two connections.
    other = h.roster_stub(system, "sched-2")
    results = await asyncio.gather(
        roster.AssignShift(  # type: ignore[attr-defined]
            rpb.AssignShiftRequest(
                agent="agents/asha", shift_id="a", shift=_spec("2027-03-08"), idempotency_key="a"
            )
        ),
        other.AssignShift(
            rpb.AssignShiftRequest(
                agent="agents/asha",
                shift_id="b",
                shift=_spec("2027-03-08", "09:00", 480),
                idempotency_key="b",
            )
        ),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(refused) == 1 and refused[0].code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_bulk_assignment_reports_each_agent_and_never_half_applies(system: System) -> None:
    roster = await _setup(system, "asha", "ravi")
    await h.add_agent(system, "pt", weekly_minutes=20 * 60, part_time=True)
    await h.add_night_pattern(roster)
    bulk = rpb.BulkAssignShiftsRequest(
        shift_pattern="shiftPatterns/us-day",
        agents=["agents/asha", "agents/ravi", "agents/pt", "agents/ghost"],
        start_date="2027-03-01",
        end_date="2027-03-07",
        idempotency_key="bulk-1",
    )
    done = await roster.BulkAssignShifts(bulk)  # type: ignore[attr-defined]
    by_agent = {a.agent: a for a in done.assignments}
    assert len(by_agent["agents/asha"].shifts) == 5 and not by_agent["agents/asha"].violations
    assert {v.type for v in by_agent["agents/pt"].violations} == {"WEEKLY_HOURS"}
    assert by_agent["agents/ghost"].error
    assert (done.assigned_shifts, done.refused_agents) == (10, 2)
    part_timer = await roster.GetAgentRoster(  # type: ignore[attr-defined]
        rpb.GetAgentRosterRequest(agent="agents/pt", start_date="2027-03-01", end_date="2027-03-07")
    )
    assert list(part_timer.days) == []  # refused as a whole: not the first two days either
    retry = await roster.BulkAssignShifts(bulk)  # type: ignore[attr-defined]
    assert retry.assigned_shifts == 10  # each agent's change is replayed, not repeated


async def test_agents_see_only_their_own_published_shifts(system: System) -> None:
    roster = await _setup(system, "asha", "ravi")
    for n, day in enumerate(["2027-03-08", "2027-03-15"]):
        await roster.AssignShift(  # type: ignore[attr-defined]
            rpb.AssignShiftRequest(
                agent="agents/asha", shift_id=f"s{n}", shift=_spec(day), idempotency_key=f"k{n}"
            )
        )
    published = await roster.PublishWeek(  # type: ignore[attr-defined]
        rpb.PublishWeekRequest(team=f"teams/{h.TEAM}", week_start="2027-03-08", idempotency_key="p")
    )
    assert (published.published_shifts, list(published.agents)) == (1, ["agents/asha"])
    asha = h.roster_stub(system, "asha", "agent")
    window = rpb.GetAgentRosterRequest(
        agent="agents/asha", start_date="2027-03-01", end_date="2027-03-31"
    )

    async def visible() -> list[str]:
        seen = await asha.GetAgentRoster(window)
        return [s.name for d in seen.days for s in d.shifts]

    assert await eventually(visible, lambda names: names == ["agents/asha/shifts/s0"])
    code, _, _ = await h.refusal(h.roster_stub(system, "ravi", "agent").GetAgentRoster(window))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, _, _ = await h.refusal(
        asha.AssignShift(
            rpb.AssignShiftRequest(
                agent="agents/asha", shift_id="x", shift=_spec("2027-03-09"), idempotency_key="x"
            )
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED


async def test_move_cancel_deny_hourly_leave_and_holiday_years(system: System) -> None:
    roster = await _setup(system, "asha")
    await roster.AssignShift(  # type: ignore[attr-defined]
        rpb.AssignShiftRequest(
            agent="agents/asha", shift_id="s1", shift=_spec("2027-03-08"), idempotency_key="k1"
        )
    )
    moved = await roster.UpdateShift(  # type: ignore[attr-defined]
        rpb.UpdateShiftRequest(
            name="agents/asha/shifts/s1",
            shift=_spec("2027-03-09", "09:00", 480),
            idempotency_key="m1",
            expected_version=1,
        )
    )
    shift = moved.shifts[0]
    assert (shift.roster_date, shift.start_client_local.local_time[11:16]) == (
        "2027-03-09",
        "09:00",
    )
    assert moved.schedule_version == 2
    # Moving onto the holiday is refused with the rule, and changes nothing.
    code, details, _ = await h.refusal(
        roster.UpdateShift(  # type: ignore[attr-defined]
            rpb.UpdateShiftRequest(
                name="agents/asha/shifts/s1", shift=_spec("2027-03-10"), idempotency_key="m2"
            )
        )
    )
    assert h.rule_types(details) == ["PUBLIC_HOLIDAY"]
    cancelled = await roster.CancelShift(  # type: ignore[attr-defined]
        rpb.CancelShiftRequest(name="agents/asha/shifts/s1", reason="swap", idempotency_key="c1")
    )
    assert (cancelled.state, cancelled.cancel_reason) == (rpb.SHIFT_STATE_CANCELLED, "swap")
    code, _, _ = await h.refusal(
        roster.CancelShift(  # type: ignore[attr-defined]
            rpb.CancelShiftRequest(name="agents/asha/shifts/nope", idempotency_key="c2")
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND

    # Two hours of leave in the middle of a shift: not annual, so no allowance; denied.
    await roster.AssignShift(  # type: ignore[attr-defined]
        rpb.AssignShiftRequest(
            agent="agents/asha", shift_id="s2", shift=_spec("2027-03-11"), idempotency_key="k2"
        )
    )
    hours = rpb.LeaveRequest(kind=rpb.LEAVE_KIND_OTHER, note="dentist")
    hours.start_time.FromJsonString("2027-03-11T15:00:00Z")
    hours.end_time.FromJsonString("2027-03-11T17:00:00Z")
    asked = await roster.RequestLeave(  # type: ignore[attr-defined]
        rpb.RequestLeaveRequest(
            agent="agents/asha", leave_request_id="l1", leave_request=hours, idempotency_key="l1"
        )
    )
    assert asked.start_agent_local.local_time == "2027-03-11T20:30:00+05:30"
    assert asked.allowance_days == 0
    denied = await roster.DenyLeave(  # type: ignore[attr-defined]
        rpb.DenyLeaveRequest(name=asked.name, reason="peak day", idempotency_key="d1")
    )
    assert (denied.state, denied.decision_reason) == (rpb.LEAVE_STATE_DENIED, "peak day")
    code, details, _ = await h.refusal(
        roster.ApproveLeave(rpb.ApproveLeaveRequest(name=asked.name, idempotency_key="a1"))  # type: ignore[attr-defined]
    )
    assert h.rule_types(details) == ["LEAVE_DECIDED"]

    # Setting 2028's holidays keeps 2027's.
    site = await roster.SetPublicHolidays(  # type: ignore[attr-defined]
        rpb.SetPublicHolidaysRequest(
            site="sites/pune",
            year=2028,
            public_holidays=[rpb.PublicHoliday(date="2028-01-26", display_name="Republic Day")],
            idempotency_key="y2028",
        )
    )
    assert [d.date for d in site.public_holidays] == ["2027-03-10", "2028-01-26"]
    code, _, _ = await h.refusal(
        roster.SetPublicHolidays(  # type: ignore[attr-defined]
            rpb.SetPublicHolidaysRequest(
                site="sites/pune",
                year=2028,
                public_holidays=[rpb.PublicHoliday(date="2029-01-26")],
                idempotency_key="bad-year",
            )
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT


async def test_annual_leave_takes_only_the_contracts_working_days(system: System) -> None:
    """Nine days off, Saturday to the next Sunday, are five working days for a Monday-Friday
    contract (no working days named), seven once the contract works Wednesday to Sunday."""
    roster = await _setup(system, "asha")
    asked = await roster.RequestLeave(  # type: ignore[attr-defined]
        rpb.RequestLeaveRequest(
            agent="agents/asha",
            leave_request_id="l1",
            leave_request=rpb.LeaveRequest(
                kind=rpb.LEAVE_KIND_ANNUAL, start_date="2027-03-13", end_date="2027-03-21"
            ),
            idempotency_key="l1",
        )
    )
    assert asked.allowance_days == 5.0
    year = rpb.GetLeaveBalanceRequest(agent="agents/asha", year=2027)
    balance = await roster.GetLeaveBalance(year)  # type: ignore[attr-defined]
    assert (balance.public_holidays, balance.pending_days, balance.remaining_days) == (1, 5, 28)

    agent = await system.directory.UpdateAgent(
        dpb.UpdateAgentRequest(
            agent=dpb.Agent(name="agents/asha", working_days=[7, 3, 4, 5, 6]),
            update_mask=field_mask_pb2.FieldMask(paths=["working_days"]),
            idempotency_key="wed-to-sun",
        )
    )
    assert list(agent.working_days) == [3, 4, 5, 6, 7]
    balance = await roster.GetLeaveBalance(year)  # type: ignore[attr-defined]
    assert (balance.pending_days, balance.remaining_days) == (7, 28)  # the 10th is a Wednesday
    approved = await roster.ApproveLeave(  # type: ignore[attr-defined]
        rpb.ApproveLeaveRequest(name=asked.name, idempotency_key="a1")
    )
    assert approved.allowance_days == 7.0
    balance = await roster.GetLeaveBalance(year)  # type: ignore[attr-defined]
    assert (balance.taken_days, balance.remaining_days) == (7, 21)


async def test_a_contract_change_does_not_re_price_past_holidays(system: System) -> None:
    """Registered Monday-Friday, changed to Sunday-Thursday today: a Friday holiday before the
    change stays deducted from the allowance, a Friday after it is a rest day, a Sunday after
    it is a working day. The views (rebuilt too) keep the dates of the change."""
    today = rt.local_date(datetime.now(UTC), "Asia/Kolkata")
    past_friday = today - timedelta(days=1 + (today.isoweekday() + 1) % 7)  # yesterday or before
    later = today + timedelta(days=3)  # the change takes effect tomorrow (or the day after)
    future_friday = later + timedelta(days=(5 - later.isoweekday()) % 7)
    future_sunday = later + timedelta(days=(7 - later.isoweekday()) % 7)
    assert (past_friday.isoweekday(), future_friday.isoweekday()) == (5, 5)
    roster = h.roster_stub(system)
    await h.add_team(system)
    await h.add_site(
        roster, {str(d): "Holiday" for d in (past_friday, future_friday, future_sunday)}
    )
    await h.add_agent(system, "asha")
    years = sorted({d.year for d in (past_friday, future_friday, future_sunday)})

    async def holidays() -> dict[int, int]:
        return {
            year: (
                await roster.GetLeaveBalance(
                    rpb.GetLeaveBalanceRequest(agent="agents/asha", year=year)
                )
            ).public_holidays
            for year in years
        }

    def count(*days: date) -> dict[int, int]:
        return {year: sum(1 for d in days if d.year == year) for year in years}

    assert await holidays() == count(past_friday, future_friday)
    await system.directory.UpdateAgent(
        dpb.UpdateAgentRequest(
            agent=dpb.Agent(name="agents/asha", working_days=[7, 1, 2, 3, 4]),
            update_mask=field_mask_pb2.FieldMask(paths=["working_days"]),
            idempotency_key="sun-to-thu",
        )
    )
    assert await holidays() == count(past_friday, future_sunday)
    # The agents view holds the history the balance reads, and a rebuild reproduces it.
    views = system.scheduling.views
    directory = DirectoryStore(views.teams, views.agents)
    viewed = await eventually(
        lambda: directory.agent("asha"), lambda a: a is not None and a.version == 2
    )
    assert viewed is not None
    assert [days for _, days in viewed.working_days_history] == [(), (1, 2, 3, 4, 7)]
    await system.scheduling.runtime.rebuild_views()
    assert await directory.agent("asha") == viewed


async def test_views_rebuild_to_the_same_state_and_availability_keeps_working(
    system: System,
) -> None:
    roster = await _setup(system, "asha", "ravi")
    await h.add_night_pattern(roster)
    await h.assign_us_day_week(roster, "asha", "ravi")
    views = system.scheduling.roster_views

    async def rosters() -> dict[str, int]:
        from wfm_runtime import mongo

        return {d["_id"]: d["version"] for d in await mongo.find_all(views.rosters, {})}

    before = await eventually(rosters, lambda r: r == {"asha": 1, "ravi": 1})
    history = await eventually(lambda: views.team_schedules(h.TEAM), lambda s: len(s) == 2)
    await system.scheduling.runtime.rebuild_views()
    assert await rosters() == before
    assert await views.team_schedules(h.TEAM) == history
    # The availability service ignores roster events and still learns new agents.
    await h.add_agent(system, "meera")
    await system.known_to_availability("meera")


async def test_team_rules_can_change_and_apply_to_the_next_change(system: System) -> None:
    from google.protobuf.field_mask_pb2 import FieldMask
    from wfm.scheduling.v1 import directory_service_pb2 as dpb

    roster = await _setup(system, "asha")
    shorter = dpb.UpdateTeamRequest(
        team=dpb.Team(
            name=f"teams/{h.TEAM}",
            version=1,
            operating_hours=[
                dpb.OperatingWindow(iso_weekday=d, open_local_time="09:00", length_minutes=480)
                for d in range(1, 8)
            ],
            min_rest_minutes=12 * 60,
        ),
        update_mask=FieldMask(paths=["operating_hours", "min_rest_minutes"]),
        idempotency_key="u1",
    )
    team = await system.directory.UpdateTeam(shorter)
    assert (team.version, team.min_rest_minutes) == (2, 720)
    assert await system.directory.UpdateTeam(shorter) == team  # retried: same answer
    shorter.idempotency_key = "u2"
    code, _, _ = await h.refusal(system.directory.UpdateTeam(shorter))
    assert code == grpc.StatusCode.ABORTED  # version 1 is stale now
    code, details, _ = await h.refusal(
        roster.AssignShift(  # type: ignore[attr-defined]
            rpb.AssignShiftRequest(
                agent="agents/asha", shift_id="s", shift=_spec("2027-03-08"), idempotency_key="k"
            )
        )
    )
    assert h.rule_types(details) == ["OPERATING_HOURS"]
    # The availability service learns the new display name too (TeamUpdated).
    rename = dpb.UpdateTeamRequest(
        team=dpb.Team(name=f"teams/{h.TEAM}", display_name="Pune nights"),
        update_mask=FieldMask(paths=["display_name"]),
        idempotency_key="u3",
    )
    await system.directory.UpdateTeam(rename)
    await eventually(
        system.availability.views.all_teams,
        lambda teams: [t.display_name for t in teams] == ["Pune nights"],
    )


async def test_requirement_from_a_forecast_with_erlang_c(system: System) -> None:
    roster = await _setup(system)
    contacts = [100 if i == 16 else 0 for i in range(48)]
    made = await roster.SetCoverageRequirement(  # type: ignore[attr-defined]
        rpb.SetCoverageRequirementRequest(
            team=f"teams/{h.TEAM}",
            date="2027-03-08",
            interval_minutes=30,
            forecast=rpb.Forecast(
                contacts=contacts,
                average_handle_seconds=180,
                service_level=0.8,
                target_answer_seconds=20,
            ),
            idempotency_key="f1",
        )
    )
    assert made.required[16] == 14 and sum(made.required) == 14
    coverage = await eventually(
        lambda: roster.GetCoverage(  # type: ignore[attr-defined]
            rpb.GetCoverageRequest(
                team=f"teams/{h.TEAM}", start_date="2027-03-08", end_date="2027-03-08"
            )
        ),
        lambda c: [i.required for i in c.intervals][16] == 14,
    )
    assert len(coverage.intervals) == 48  # the view serves the derived requirement
    code, _, _ = await h.refusal(
        roster.SetCoverageRequirement(  # type: ignore[attr-defined]
            rpb.SetCoverageRequirementRequest(
                team=f"teams/{h.TEAM}",
                weekday="mon",
                interval_minutes=30,
                required=[1] * 48,
                forecast=rpb.Forecast(contacts=[1], service_level=float("nan")),
                idempotency_key="f2",
            )
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT


async def test_leave_requests_of_a_team_page_by_name_and_filter_by_state(system: System) -> None:
    roster = await _setup(system, "asha", "ravi")
    for agent in ("asha", "ravi"):
        for n in (1, 2):
            await roster.RequestLeave(  # type: ignore[attr-defined]
                rpb.RequestLeaveRequest(
                    agent=f"agents/{agent}",
                    leave_request_id=f"l{n}",
                    leave_request=rpb.LeaveRequest(
                        kind=rpb.LEAVE_KIND_SICK,
                        start_date=f"2027-04-0{n}",
                        end_date=f"2027-04-0{n}",
                    ),
                    idempotency_key=f"{agent}-{n}",
                )
            )
    await roster.DenyLeave(  # type: ignore[attr-defined]
        rpb.DenyLeaveRequest(name="agents/ravi/leaveRequests/l1", reason="x", idempotency_key="d")
    )
    leader = h.roster_stub(system, "tl-1", "team_leader", teams=(h.TEAM,))

    async def pending() -> list[str]:
        names, token = [], ""
        while True:
            page = await leader.ListLeaveRequests(
                rpb.ListLeaveRequestsRequest(
                    team=f"teams/{h.TEAM}",
                    state=rpb.LEAVE_STATE_REQUESTED,
                    page_size=2,
                    page_token=token,
                )
            )
            names += [r.name for r in page.leave_requests]
            token = page.next_page_token
            if not token:
                return names

    assert await eventually(
        pending,
        lambda names: (
            names
            == [
                "agents/asha/leaveRequests/l1",
                "agents/asha/leaveRequests/l2",
                "agents/ravi/leaveRequests/l2",
            ]
        ),
    )
    code, _, _ = await h.refusal(
        h.roster_stub(system, "tl-2", "team_leader", teams=("other",)).ListLeaveRequests(
            rpb.ListLeaveRequestsRequest(team=f"teams/{h.TEAM}")
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED

    own = h.roster_stub(system, "ravi", "agent")  # an agent lists their own requests
    ravis = await own.ListLeaveRequests(rpb.ListLeaveRequestsRequest(agent="agents/ravi"))
    assert [(r.name, r.state) for r in ravis.leave_requests] == [
        ("agents/ravi/leaveRequests/l1", rpb.LEAVE_STATE_DENIED),
        ("agents/ravi/leaveRequests/l2", rpb.LEAVE_STATE_REQUESTED),
    ]
    for refused, expected in [
        (own.ListLeaveRequests(rpb.ListLeaveRequestsRequest(agent="agents/asha")), "PERMISSION"),
        (own.ListLeaveRequests(rpb.ListLeaveRequestsRequest(team=f"teams/{h.TEAM}")), "PERMISSION"),
        (roster.ListLeaveRequests(rpb.ListLeaveRequestsRequest()), "team"),  # type: ignore[attr-defined]
        (
            roster.ListLeaveRequests(  # type: ignore[attr-defined]
                rpb.ListLeaveRequestsRequest(team=f"teams/{h.TEAM}", agent="agents/ravi")
            ),
            "agent",
        ),
        (roster.ListLeaveRequests(rpb.ListLeaveRequestsRequest(agent="agents/ghost")), "NOT_FOUND"),  # type: ignore[attr-defined]
    ]:
        code, details, _ = await h.refusal(refused)
        if expected == "PERMISSION":
            assert code == grpc.StatusCode.PERMISSION_DENIED
        elif expected == "NOT_FOUND":
            assert code == grpc.StatusCode.NOT_FOUND
        else:
            fields = [v.field for d in details for v in getattr(d, "field_violations", [])]
            assert code == grpc.StatusCode.INVALID_ARGUMENT and fields == [expected]
