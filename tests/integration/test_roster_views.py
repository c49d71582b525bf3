"""Roster views over gRPC: the coverage view (read-your-writes, rebuilt = incremental)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from wfm.scheduling.v1 import directory_service_pb2 as dpb
from wfm.scheduling.v1 import roster_service_pb2 as rpb

from services.scheduling.roster_store import COVERAGE, SCHEDULE
from tests import roster_helpers as h
from tests.conftest import System
from tests.integration.test_roster_api import _setup, _spec
from tests.replicas import hold_projections
from wfm_runtime import mongo
from wfm_runtime.testing import eventually

pytestmark = pytest.mark.integration

WEEK = {"team": f"teams/{h.TEAM}", "start_date": "2027-03-01", "end_date": "2027-03-07"}


async def _coverage_docs(system: System) -> dict[str, Any]:
    """Both coverage collections: totals (what reads use) and per-agent entries."""
    views = system.scheduling.roster_views
    return {
        f"{coll.name}/{d['_id']}": d
        for coll in views.coverage_views()
        for d in await mongo.find_all(coll, {})
    }


async def test_coverage_view_is_fresh_exact_and_rebuilds_to_the_same_documents(
    system: System,
) -> None:
    roster = await _setup(system, "asha", "ravi")
    await h.add_night_pattern(roster)
    await h.assign_us_day_week(roster, "asha", "ravi")
    await roster.UpdateShift(  # type: ignore[attr-defined]
        rpb.UpdateShiftRequest(
            name="agents/asha/shifts/us-day-20270303",
            shift=_spec("2027-03-03", "09:00", 480),
            idempotency_key="m1",
        )
    )
    await roster.CancelShift(  # type: ignore[attr-defined]
        rpb.CancelShiftRequest(name="agents/ravi/shifts/us-day-20270304", idempotency_key="c1")
    )
    # Read right after the writes: this process's commits count before the view has them.
    fresh = await roster.GetCoverage(rpb.GetCoverageRequest(**WEEK))  # type: ignore[attr-defined]
    productive = sum(i.scheduled for i in fresh.intervals) * 30
    assert productive == 4 * 495 + 435 + 4 * 495  # 9 h minus 45 min; the moved one is 8 h
    wed_0830 = next(
        i for i in fresh.intervals if i.start_client_local.local_time.startswith("2027-03-03T08:30")
    )
    assert wed_0830.scheduled == 1  # asha starts at 09:00 now, ravi is there

    views = system.scheduling.roster_views

    async def projected() -> list[int]:
        return [views.projected.get(("schedule", a), 0) for a in ("asha", "ravi")]

    await eventually(projected, lambda v: v == [2, 2])  # both writes of the last batch done
    docs = await _coverage_docs(system)
    assert {a: e["version"] for d in docs.values() for a, e in d.get("agents", {}).items()} == {
        "asha": 2,
        "ravi": 2,
    }
    assert len(docs) == 2 * 5  # totals and per agent, Mon-Fri (08:00-17:00 New York)
    assert await roster.GetCoverage(rpb.GetCoverageRequest(**WEEK)) == fresh  # type: ignore[attr-defined]
    await system.scheduling.runtime.rebuild_views()
    assert await _coverage_docs(system) == docs
    assert await roster.GetCoverage(rpb.GetCoverageRequest(**WEEK)) == fresh  # type: ignore[attr-defined]


async def test_team_roster_keeps_schedules_projected_while_it_reads_the_view(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The projection may write new schedules after the roster read the view and before it
    asks which of its own commits are still unprojected: each must come from one or the other.
    The projection is held until the view has been read, then let through to the end."""
    roster = await _setup(system, "asha", "ravi")
    await h.add_night_pattern(roster)
    views = system.scheduling.roster_views
    view_read = hold_projections([system.scheduling.runtime], monkeypatch, "scheduling-roster")
    read = views.team_schedules

    async def read_then_let_the_projection_finish(team_id: str) -> Any:
        found = await read(team_id)
        view_read.set()
        await eventually(lambda: all(views.projected.get((SCHEDULE, a)) for a in ("asha", "ravi")))
        return found

    monkeypatch.setattr(views, "team_schedules", read_then_let_the_projection_finish)
    await h.assign_us_day_week(roster, "asha", "ravi")
    week = await roster.GetTeamRoster(  # type: ignore[attr-defined]
        rpb.GetTeamRosterRequest(team=f"teams/{h.TEAM}", week_start="2027-03-01")
    )
    assert view_read.is_set()  # the interleaving under test happened
    assert [(w.agent, len(w.shifts)) for w in week.agents] == [
        ("agents/asha", 5),
        ("agents/ravi", 5),
    ]


async def test_coverage_shows_a_requirement_the_projection_has_not_written_yet(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scheduler who sets a requirement and reads coverage at once sees it: the process
    overlays its own unprojected commits, as it does for schedules. The roster projection is
    held for the whole read, so the view cannot have the requirement yet."""
    roster = await _setup(system)
    released = hold_projections([system.scheduling.runtime], monkeypatch, "scheduling-roster")
    need = [3 if 16 <= i < 20 else 0 for i in range(48)]
    await roster.SetCoverageRequirement(  # type: ignore[attr-defined]
        rpb.SetCoverageRequirementRequest(
            team=f"teams/{h.TEAM}",
            weekday="wed",
            interval_minutes=30,
            required=need,
            idempotency_key="wed-1",
        )
    )
    wednesday = rpb.GetCoverageRequest(
        team=f"teams/{h.TEAM}", start_date="2027-03-03", end_date="2027-03-03"
    )
    held = await roster.GetCoverage(wednesday)  # type: ignore[attr-defined]
    assert not await mongo.find_all(system.scheduling.roster_views.store.requirements, {})
    assert [c.required for c in held.intervals] == need

    released.set()
    views = system.scheduling.roster_views
    await eventually(lambda: views.projected.get((COVERAGE, f"{h.TEAM}@wed"), 0) == 1)
    projected = await roster.GetCoverage(wednesday)  # type: ignore[attr-defined]
    assert [c.required for c in projected.intervals] == need


async def test_leave_list_shows_requests_and_decisions_the_projection_has_not_written_yet(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent who asks for leave, and a scheduler who decides it, see it in their lists at
    once, as GetLeaveBalance and GetAgentRoster do: the list overlays this process's unprojected
    commits on the view. The roster projection is held until the end, so the view has none."""
    scheduler = await _setup(system, "asha", "ravi")
    asha = h.roster_stub(system, "asha", "agent")
    await asha.RequestLeave(  # asha has a view document, ravi none yet: both cases
        rpb.RequestLeaveRequest(
            agent="agents/asha",
            leave_request_id="early",
            leave_request=rpb.LeaveRequest(
                kind=rpb.LEAVE_KIND_ANNUAL, start_date="2027-03-01", end_date="2027-03-01"
            ),
            idempotency_key="early",
        )
    )
    views = system.scheduling.roster_views
    await eventually(lambda: views.projected.get((SCHEDULE, "asha")) == 1)
    released = hold_projections([system.scheduling.runtime], monkeypatch, "scheduling-roster")
    asked = await asha.RequestLeave(
        rpb.RequestLeaveRequest(
            agent="agents/asha",
            leave_request_id="trip",
            leave_request=rpb.LeaveRequest(
                kind=rpb.LEAVE_KIND_ANNUAL, start_date="2027-03-08", end_date="2027-03-09"
            ),
            idempotency_key="trip",
        )
    )
    ravi = h.roster_stub(system, "ravi", "agent")
    his = await ravi.RequestLeave(
        rpb.RequestLeaveRequest(
            agent="agents/ravi",
            leave_request_id="flu",
            leave_request=rpb.LeaveRequest(
                kind=rpb.LEAVE_KIND_SICK, start_date="2027-03-02", end_date="2027-03-02"
            ),
            idempotency_key="flu",
        )
    )
    mine = await asha.ListLeaveRequests(rpb.ListLeaveRequestsRequest(agent="agents/asha"))
    assert [(r.name, r.state) for r in mine.leave_requests] == [
        ("agents/asha/leaveRequests/early", rpb.LEAVE_STATE_REQUESTED),
        (asked.name, rpb.LEAVE_STATE_REQUESTED),
    ]
    await scheduler.ApproveLeave(  # type: ignore[attr-defined]
        rpb.ApproveLeaveRequest(name=asked.name, idempotency_key="ok")
    )
    waiting = await scheduler.ListLeaveRequests(  # type: ignore[attr-defined]
        rpb.ListLeaveRequestsRequest(team=f"teams/{h.TEAM}", state=rpb.LEAVE_STATE_REQUESTED)
    )
    assert [r.name for r in waiting.leave_requests] == [
        "agents/asha/leaveRequests/early",
        his.name,
    ]
    approved = await asha.ListLeaveRequests(
        rpb.ListLeaveRequestsRequest(agent="agents/asha", state=rpb.LEAVE_STATE_APPROVED)
    )
    assert [r.name for r in approved.leave_requests] == [asked.name]
    assert views.projected.get((SCHEDULE, "asha")) == 1  # the view had none of it
    released.set()


async def test_team_roster_pages_over_agents_in_name_order(system: System) -> None:
    roster = await _setup(system, "asha", "meera", "ravi", "zoya")
    await h.add_night_pattern(roster)
    await h.assign_us_day_week(roster, "ravi", "asha", "zoya")
    # meera has no shifts: she is listed all the same, so the scheduler sees her unscheduled.
    ask = rpb.GetTeamRosterRequest(team=f"teams/{h.TEAM}", week_start="2027-03-01", page_size=2)
    first = await roster.GetTeamRoster(ask)  # type: ignore[attr-defined]
    assert [w.agent for w in first.agents] == ["agents/asha", "agents/meera"]
    assert [len(w.shifts) for w in first.agents] == [5, 0] and first.next_page_token
    assert [(w.paid_minutes, w.weekly_minutes > 0) for w in first.agents][1] == (0, True)
    ask.page_token = first.next_page_token
    second = await roster.GetTeamRoster(ask)  # type: ignore[attr-defined]
    assert [w.agent for w in second.agents] == ["agents/ravi", "agents/zoya"]
    assert [len(w.shifts) for w in second.agents] == [5, 5] and not second.next_page_token
    whole = await roster.GetTeamRoster(  # type: ignore[attr-defined]
        rpb.GetTeamRosterRequest(team=f"teams/{h.TEAM}", week_start="2027-03-01")
    )
    assert list(whole.agents) == [*first.agents, *second.agents] and not whole.next_page_token

    other_week = rpb.GetTeamRosterRequest(
        team=f"teams/{h.TEAM}", week_start="2027-03-08", page_token=first.next_page_token
    )
    for bad in (
        other_week,
        rpb.GetTeamRosterRequest(team=f"teams/{h.TEAM}", week_start="2027-03-01", page_size=-1),
    ):
        code, _, _ = await h.refusal(roster.GetTeamRoster(bad))  # type: ignore[attr-defined]
        assert code == grpc.StatusCode.INVALID_ARGUMENT


async def test_agent_roster_serves_shifts_older_than_the_aggregate_window(system: System) -> None:
    # The aggregate keeps 42 days before today (or before the change, if earlier): a Monday
    # nine weeks back and its Tuesday leave it with the next change.
    today = datetime.now(UTC).date()
    k3 = today - timedelta(days=today.weekday())
    k1, k2 = k3 - timedelta(days=63), k3 - timedelta(days=62)
    roster = await _setup(system, "asha")
    for key, day in (("k1", k1), ("k2", k2)):
        await roster.AssignShift(  # type: ignore[attr-defined]
            rpb.AssignShiftRequest(
                agent="agents/asha", shift_id=key, shift=_spec(f"{day}"), idempotency_key=key
            )
        )
    await roster.CancelShift(  # type: ignore[attr-defined]
        rpb.CancelShiftRequest(name="agents/asha/shifts/k2", reason="swap", idempotency_key="c")
    )
    await roster.AssignShift(  # type: ignore[attr-defined]
        rpb.AssignShiftRequest(
            agent="agents/asha", shift_id="k3", shift=_spec(f"{k3}"), idempotency_key="k3"
        )
    )
    held = await eventually(
        lambda: system.scheduling.roster_views.store.schedule("asha"), lambda s: s.version == 4
    )
    assert [s.shift_id for s in held.shifts] == ["k3"]  # the old ones left the aggregate

    def between(first: date, last: date) -> rpb.GetAgentRosterRequest:
        return rpb.GetAgentRosterRequest(
            agent="agents/asha", start_date=f"{first}", end_date=f"{last}"
        )

    async def shown(request: rpb.GetAgentRosterRequest) -> list[tuple[str, int]]:
        got = await roster.GetAgentRoster(request)  # type: ignore[attr-defined]
        return [(s.name.rsplit("/", 1)[1], s.state) for d in got.days for s in d.shifts]

    expected = [("k1", rpb.SHIFT_STATE_DRAFT), ("k2", rpb.SHIFT_STATE_CANCELLED)]
    old_month = between(k1 - timedelta(days=3), k1 + timedelta(days=27))
    assert await eventually(lambda: shown(old_month), lambda s: s == expected)
    wide = between(k1 + timedelta(days=16), k3 + timedelta(days=2))
    assert await shown(wide) == [("k3", rpb.SHIFT_STATE_DRAFT)]
    assert await shown(between(k2, k3 - timedelta(days=1))) == [("k2", rpb.SHIFT_STATE_CANCELLED)]


async def _move(system: System, agent_id: str, team: str) -> None:
    await system.directory.UpdateAgent(
        dpb.UpdateAgentRequest(
            agent=dpb.Agent(name=f"agents/{agent_id}", team=f"teams/{team}"),
            update_mask=field_mask_pb2.FieldMask(paths=["team"]),
            idempotency_key=f"move-{agent_id}-{team}",
        )
    )


async def _team_week(roster: Any, team: str) -> list[tuple[str, list[str]]]:
    week = await roster.GetTeamRoster(
        rpb.GetTeamRosterRequest(team=f"teams/{team}", week_start="2027-03-01")
    )
    return [(w.agent, [s.name.rsplit("/", 1)[1] for s in w.shifts]) for w in week.agents]


async def test_a_shift_updated_after_its_agent_moved_team_stays_with_the_old_team(
    system: System,
) -> None:
    """Asha's week was planned for the New York team; she then joined a London team. Moving
    Wednesday to 09:00 client time is 09:00 in New York, and the shift stays New York's."""
    roster = await _setup(system, "asha")
    await system.directory.CreateTeam(
        dpb.CreateTeamRequest(
            team_id="uk-day",
            idempotency_key="team-uk-day",
            team=dpb.Team(display_name="UK day", client_time_zone="Europe/London"),
        )
    )
    await h.add_night_pattern(roster)
    await h.assign_us_day_week(roster, "asha")
    await _move(system, "asha", "uk-day")
    updated = await roster.UpdateShift(  # type: ignore[attr-defined]
        rpb.UpdateShiftRequest(
            name="agents/asha/shifts/us-day-20270303",
            shift=_spec("2027-03-03", "09:00", 480),
            idempotency_key="m1",
        )
    )
    shift = updated.shifts[0]
    assert shift.team == f"teams/{h.TEAM}"
    assert shift.start_client_local.local_time.startswith("2027-03-03T09:00")
    assert shift.start_client_local.time_zone == "America/New_York"
    wednesday = rpb.GetCoverageRequest(
        team=f"teams/{h.TEAM}", start_date="2027-03-03", end_date="2027-03-03"
    )
    staffed = await roster.GetCoverage(wednesday)  # type: ignore[attr-defined]
    assert sum(i.scheduled for i in staffed.intervals) * 30 == 435  # 8 h minus 45 min

    days = [f"us-day-2027030{d}" for d in range(1, 6)]

    async def both() -> list[Any]:
        return [await _team_week(roster, h.TEAM), await _team_week(roster, "uk-day")]

    assert await eventually(both, lambda w: w == [[("agents/asha", days)], [("agents/asha", [])]])

    # Her own roster shows the week on the client clock of the team it was planned for.
    mine = await roster.GetAgentRoster(  # type: ignore[attr-defined]
        rpb.GetAgentRosterRequest(
            agent="agents/asha", start_date="2027-03-01", end_date="2027-03-05"
        )
    )
    zones = {s.start_client_local.time_zone for d in mine.days for s in d.shifts}
    assert zones == {"America/New_York"}


async def test_team_rosters_follow_a_team_move_before_the_directory_view_does(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Meera (no shifts yet) moves to the UK team: the next team rosters list her under the new
    team and no longer under the old one, although the `agents` view still has her old team
    (the directory projection is held). Asha keeps the old team's week she was planned for."""
    roster = await _setup(system, "asha", "meera")
    await system.directory.CreateTeam(
        dpb.CreateTeamRequest(
            team_id="uk-day",
            idempotency_key="team-uk-day",
            team=dpb.Team(display_name="UK day", client_time_zone="Europe/London"),
        )
    )
    await h.add_night_pattern(roster)
    await h.assign_us_day_week(roster, "asha")
    views = system.scheduling.views
    await eventually(lambda: views.list_agents(h.TEAM, "", 10), lambda a: len(a) == 2)
    released = hold_projections([system.scheduling.runtime], monkeypatch, "scheduling-directory")
    await _move(system, "meera", "uk-day")
    await _move(system, "asha", "uk-day")
    assert [a.agent_id for a in await views.list_agents(h.TEAM, "", 10)] == ["asha", "meera"]
    days = [f"us-day-2027030{d}" for d in range(1, 6)]
    expected = [[("agents/asha", days)], [("agents/asha", []), ("agents/meera", [])]]
    assert [await _team_week(roster, h.TEAM), await _team_week(roster, "uk-day")] == expected

    released.set()
    await eventually(lambda: views.list_agents("uk-day", "", 10), lambda a: len(a) == 2)
    assert [await _team_week(roster, h.TEAM), await _team_week(roster, "uk-day")] == expected


async def test_draft_marks_are_found_by_team_and_week_only(system: System) -> None:
    """PublishWeek's marks (RosterStore.note_drafts): a team whose id extends another's, and
    the weeks either side, are not in the range read for one team's week."""
    store = system.scheduling.roster_views.store
    monday = date(2027, 3, 8)
    await store.note_drafts("asha", {("night", monday), ("night", monday + timedelta(days=7))})
    await store.note_drafts("ben", {("night-b", monday), ("night", monday - timedelta(days=7))})
    await store.note_drafts("chen", {("night", monday)})
    await store.note_drafts("asha", {("night", monday)})  # again: idempotent
    assert sorted(await store.drafted("night", monday)) == ["asha", "chen"]
    assert await store.drafted("night-b", monday) == ["ben"]
    assert await store.drafted("nigh", monday) == []
