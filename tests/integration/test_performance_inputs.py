"""Scheduling's rosters and training's completions reach the scorecards (real services)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from wfm.availability.v1 import availability_service_pb2 as apb
from wfm.performance.v1 import performance_service_pb2 as pb
from wfm.scheduling.v1 import directory_service_pb2 as dpb
from wfm.scheduling.v1 import roster_service_pb2 as rpb
from wfm.training.v1 import training_service_pb2 as tpb

from tests import roster_helpers as h
from tests.conftest import System
from tests.integration.test_performance_api import _case, _limits
from tests.training_helpers import training_clock_at
from wfm_runtime.testing import eventually
from wfm_runtime.timefmt import to_timestamp, utc_now

pytestmark = pytest.mark.integration


def _spec(day: str, start: str = "08:00", minutes: int = 540) -> rpb.ShiftSpec:
    return rpb.ShiftSpec(
        roster_date=day,
        start_local_time=start,
        length_minutes=minutes,
        anchor=rpb.ANCHOR_CLIENT,
        activities=[h.BREAK, h.LUNCH],
    )


async def _roster_team(system: System, *agents: str) -> Any:
    assert system.performance is not None
    roster = h.roster_stub(system)
    await h.add_team(system)
    await h.add_site(roster, {})
    for agent in agents:
        await h.add_agent(system, agent)
    directory = system.performance.directory
    for agent in agents:
        await eventually(lambda a=agent: directory.agent(a))  # type: ignore[misc]
    return roster


async def _day(system: System, agent: str, day: str) -> pb.Metrics:
    assert system.perf is not None
    card = await system.perf.GetScorecard(
        pb.GetScorecardRequest(
            name=f"agents/{agent}/scorecard", period=pb.Period(start_date=day, end_date=day)
        )
    )
    return card.metrics


async def test_published_shifts_count_and_a_moved_or_cancelled_one_recomputes_its_days(
    perf_system: System,
) -> None:
    system = perf_system
    roster = await _roster_team(system, "asha")
    await roster.AssignShift(
        rpb.AssignShiftRequest(
            agent="agents/asha", shift_id="s1", shift=_spec("2026-02-09"), idempotency_key="a1"
        )
    )
    await roster.PublishWeek(
        rpb.PublishWeekRequest(
            team=f"teams/{h.TEAM}", week_start="2026-02-09", idempotency_key="p1"
        )
    )
    # 540 minutes less the unpaid 30-minute lunch; never logged in: a no-show, all absent.
    day8 = await eventually(
        lambda: _day(system, "asha", "2026-02-09"), lambda m: m.scheduled_hours == 8.5
    )
    assert (day8.absenteeism_percent, day8.no_shows, day8.adherence_percent) == (100, 1, 0)

    # A draft shift is not scheduled time.
    await roster.AssignShift(
        rpb.AssignShiftRequest(
            agent="agents/asha", shift_id="s2", shift=_spec("2026-02-16"), idempotency_key="a2"
        )
    )
    await roster.UpdateShift(
        rpb.UpdateShiftRequest(
            name="agents/asha/shifts/s1",
            shift=_spec("2026-02-10", "09:00", 480),
            idempotency_key="m1",
        )
    )
    await eventually(lambda: _day(system, "asha", "2026-02-10"), lambda m: m.scheduled_hours == 7.5)
    left = await _day(system, "asha", "2026-02-09")
    assert not left.HasField("absenteeism_percent") and left.scheduled_hours == 0
    assert (await _day(system, "asha", "2026-02-16")).scheduled_hours == 0

    await roster.CancelShift(
        rpb.CancelShiftRequest(name="agents/asha/shifts/s1", reason="swap", idempotency_key="c1")
    )
    cancelled = await eventually(
        lambda: _day(system, "asha", "2026-02-10"), lambda m: m.scheduled_hours == 0
    )
    assert cancelled.no_shows == 0


async def test_approved_leave_is_not_absence(perf_system: System) -> None:
    system = perf_system
    roster = await _roster_team(system, "ravi")
    await roster.AssignShift(
        rpb.AssignShiftRequest(
            agent="agents/ravi", shift_id="s1", shift=_spec("2026-02-12"), idempotency_key="a1"
        )
    )
    await roster.PublishWeek(
        rpb.PublishWeekRequest(
            team=f"teams/{h.TEAM}", week_start="2026-02-09", idempotency_key="p1"
        )
    )
    await eventually(
        lambda: _day(system, "ravi", "2026-02-12"), lambda m: m.absenteeism_percent == 100
    )
    asked = await roster.RequestLeave(
        rpb.RequestLeaveRequest(
            agent="agents/ravi",
            leave_request_id="l1",
            leave_request=rpb.LeaveRequest(
                kind=rpb.LEAVE_KIND_SICK, start_date="2026-02-12", end_date="2026-02-12"
            ),
            idempotency_key="l1",
        )
    )
    await roster.ApproveLeave(rpb.ApproveLeaveRequest(name=asked.name, idempotency_key="ok"))
    on_leave = await eventually(
        lambda: _day(system, "ravi", "2026-02-12"),
        lambda m: not m.HasField("absenteeism_percent"),
    )
    # Scheduling cancels the shift the leave covers: not scheduled, not a no-show, not absent.
    assert (on_leave.scheduled_hours, on_leave.no_shows) == (0, 0)


async def test_training_completions_count_and_an_expired_certification_is_flagged(
    perf_system: System,
) -> None:
    system = perf_system
    assert system.perf is not None
    await h.add_team(system)
    for agent in ("asha", "ravi"):
        await h.add_agent(system, agent)
        await system.known_to_training(agent)
    trainer = system.training_as("trainer-1", "trainer")
    hr = system.training_as("hr-1", "hr")
    await trainer.CreateCourse(
        tpb.CreateCourseRequest(
            course_id="fibre",
            course=tpb.Course(
                title="Fibre troubleshooting",
                category=tpb.COURSE_CATEGORY_CLIENT_SPECIFIC,
                client="acme",
                credit_minutes=240,
                technical=True,
                competency="fibre-support",
                competency_level=tpb.COMPETENCY_LEVEL_COMPETENT,
                validity_days=30,
            ),
            idempotency_key="course",
        )
    )
    start = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)  # 09:30 IST; expired 30 days later
    await trainer.CreateSession(
        tpb.CreateSessionRequest(
            session_id="jan",
            session=tpb.Session(
                course="courses/fibre",
                start_time=to_timestamp(start),
                end_time=to_timestamp(start + timedelta(hours=4)),
                time_zone="Asia/Kolkata",
                trainer="trainer-1",
                capacity=5,
                delivery=tpb.DELIVERY_CLASSROOM,
            ),
            idempotency_key="session",
        )
    )
    await hr.EnrollAgents(
        tpb.EnrollAgentsRequest(session="sessions/jan", agents=["agents/asha"], idempotency_key="e")
    )
    # The months are fixed ones in the past, and check-in is open only around the class's time:
    # the trainer checks the class in at 09:25 IST that day.
    with training_clock_at(start - timedelta(minutes=5)):
        await trainer.StartSession(
            tpb.StartSessionRequest(name="sessions/jan", idempotency_key="go")
        )
    await trainer.RecordCompletion(
        tpb.RecordCompletionRequest(
            name="sessions/jan/enrollments/asha",
            completion=tpb.Completion(
                completion_time=to_timestamp(start + timedelta(hours=4)),
                attended_minutes=210,
                score=90,
                passed=True,
            ),
            idempotency_key="done",
        )
    )
    day = await eventually(
        lambda: _day(system, "asha", "2026-01-05"), lambda m: m.training_hours > 0
    )
    assert (day.training_hours, day.technical_training_hours) == (3.5, 3.5)
    assert day.technical_trainings_completed == 1

    async def flags(start_date: str, end_date: str) -> list[tuple[str, str, float]]:
        assert system.perf is not None
        listed = await system.perf.ListRedFlags(
            pb.ListRedFlagsRequest(
                team=f"teams/{h.TEAM}",
                period=pb.Period(start_date=start_date, end_date=end_date),
            )
        )
        return [(f.agent, f.metric, f.value) for f in listed.red_flags]

    # Valid through January; expired (only Asha's) by the end of February.
    assert await flags("2026-01-01", "2026-01-31") == []
    assert await flags("2026-02-01", "2026-02-28") == [
        ("agents/asha", "certification_expired", 1.0)
    ]
    # The completion's batch checked January, when it was still valid: no event. A case in
    # February makes the check look at February: expired, so a team leader is told, once.
    assert system.performance is not None
    events = system.performance.runtime.store
    assert await events.get("red_flag", "asha--2026-01--certification_expired", 1) is None
    for agent in ("ravi", "asha"):  # Ravi's first: checked before Asha's event appears
        await system.perf.RecordCase(
            pb.RecordCaseRequest(
                case_id=f"feb-{agent}", case=_case(agent, datetime(2026, 2, 10, 15, tzinfo=UTC)),
                idempotency_key=f"feb-{agent}",
            )
        )  # fmt: skip
    raised = await eventually(
        lambda: events.get("red_flag", "asha--2026-02--certification_expired", 1)
    )
    assert raised is not None and raised.event_type == "wfm.performance.v1.RedFlagRaised"
    assert await events.get("red_flag", "ravi--2026-02--certification_expired", 1) is None


async def _publish_shift_at(roster: Any, agent: str, start: datetime, key: str) -> str:
    """A 9-hour shift (no activities) starting at `start` on a UTC client clock, published;
    returns its roster date."""
    day = start.date()
    await roster.AssignShift(
        rpb.AssignShiftRequest(
            agent=f"agents/{agent}",
            shift_id=key,
            shift=rpb.ShiftSpec(
                roster_date=day.isoformat(),
                start_local_time=f"{start:%H:%M}",
                length_minutes=540,
                anchor=rpb.ANCHOR_CLIENT,
            ),
            idempotency_key=f"assign-{key}",
        )
    )
    monday = day - timedelta(days=day.weekday())
    await roster.PublishWeek(
        rpb.PublishWeekRequest(
            team="teams/today", week_start=monday.isoformat(), idempotency_key=f"publish-{key}"
        )
    )
    return day.isoformat()


async def test_a_day_still_going_counts_only_up_to_now(perf_system: System) -> None:
    """Asha's shift began an hour ago and she has just logged in: an hour late, not a
    no-show, and minutes (not the rest of the shift) logged in. Ravi's shift starts in two
    hours: planned, but nobody is absent from it yet."""
    system, perf = perf_system, perf_system.perf
    assert perf is not None and system.performance is not None
    await system.add_team("today", zone="UTC")
    roster = h.roster_stub(system)
    await h.add_site(roster, {})
    for agent in ("asha", "ravi"):
        await system.add_agent(agent, "today")
        await eventually(lambda a=agent: system.performance.directory.agent(a))  # type: ignore[misc]
    now = utc_now().replace(second=0, microsecond=0)
    asha_day = await _publish_shift_at(roster, "asha", now - timedelta(hours=1), "asha")
    ravi_day = await _publish_shift_at(roster, "ravi", now + timedelta(hours=2), "ravi")
    await system.known_to_availability("asha")
    await system.avail.SetStatus(
        apb.SetStatusRequest(
            name="agents/asha/availability",
            status=apb.AGENT_STATUS_AVAILABLE,
            idempotency_key="in",
        )
    )

    asha = await eventually(lambda: _day(system, "asha", asha_day), lambda m: m.late_logins == 1)
    assert asha.no_shows == 0 and asha.scheduled_hours == 9
    assert 0 < asha.logged_in_hours < 0.25  # filed whole, it would be about 8 hours
    assert 75 < asha.absenteeism_percent < 100  # the hour before she came, of the time so far
    explained = await perf.ExplainMetric(
        pb.ExplainMetricRequest(
            name="agents/asha/scorecard",
            period=pb.Period(start_date=asha_day, end_date=asha_day),
            metric="logged_in_hours",
        )
    )
    assert explained.segments and all(
        s.end_time.ToDatetime(UTC) <= utc_now() for s in explained.segments
    )
    assert explained.value <= asha.logged_in_hours + 0.01
    # A whole calendar month reads the month's roll-up, and still takes the day back to now.
    first = date.fromisoformat(asha_day).replace(day=1)
    last = (first + timedelta(days=31)).replace(day=1) - timedelta(days=1)
    month = await perf.GetScorecard(
        pb.GetScorecardRequest(
            name="agents/asha/scorecard",
            period=pb.Period(start_date=first.isoformat(), end_date=last.isoformat()),
        )
    )
    assert 0 < month.metrics.logged_in_hours < 0.25 and month.metrics.no_shows == 0

    ravi = await eventually(lambda: _day(system, "ravi", ravi_day), lambda m: m.scheduled_hours > 0)
    assert ravi.scheduled_hours == 9 and ravi.no_shows == 0
    assert not ravi.HasField("absenteeism_percent") and not ravi.HasField("adherence_percent")


async def test_time_alone_raises_a_red_flag_at_the_next_sweep(perf_system: System) -> None:
    """Omar's shift is tomorrow: publishing it flags nobody, as nothing of it has happened.
    An hour into it, with no input at all, the watch's sweep finds him absent and raises the
    absenteeism flag (once)."""
    system, perf = perf_system, perf_system.perf
    assert perf is not None and system.performance is not None
    await system.add_team("today", zone="UTC")
    roster = h.roster_stub(system)
    await h.add_site(roster, {})
    await system.add_agent("omar", "today")
    await eventually(lambda: system.performance.directory.agent("omar"))  # type: ignore[union-attr]
    await _limits(perf, "today", max_absenteeism_percent=5)
    start = (utc_now() + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    day = await _publish_shift_at(roster, "omar", start, "omar")
    await eventually(lambda: _day(system, "omar", day), lambda m: m.scheduled_hours == 9)
    events, watch = system.performance.runtime.store, system.performance.watch
    flag = f"omar--{start:%Y-%m}--absenteeism_percent"
    assert await events.get("red_flag", flag, 1) is None

    async def sweep(at: datetime) -> int:
        # A sweep while any consumer is behind checks nothing (the checks wait for it), so on
        # a loaded machine the test waits for the consumers first, as the next sweep would.
        await eventually(lambda: watch.held, lambda held: not held)
        return await watch.sweep(at)

    assert await sweep(start - timedelta(hours=1)) >= 1  # looked at, nothing due yet
    assert await events.get("red_flag", flag, 1) is None
    await sweep(start + timedelta(hours=1))
    raised = await events.get("red_flag", flag, 1)
    assert raised is not None and raised.event_type == "wfm.performance.v1.RedFlagRaised"
    await sweep(start + timedelta(hours=2))
    assert await events.get("red_flag", flag, 2) is None


async def _training_hours(system: System, agent: str, first: str, last: str) -> float:
    assert system.perf is not None
    card = await system.perf.GetScorecard(
        pb.GetScorecardRequest(
            name=f"agents/{agent}/scorecard", period=pb.Period(start_date=first, end_date=last)
        )
    )
    return card.metrics.training_hours


async def test_a_class_in_a_night_shift_counts_on_its_roster_date_across_a_month_end(
    perf_system: System,
) -> None:
    """Meera's class starts at 01:00 IST on 1 February, during the US night shift of 31
    January (18:30-03:30 IST): once that shift is published, its hours count on 31 January,
    in January's figures (hers, the team's, the drill-down), as her other figures that night."""
    system = perf_system
    assert system.perf is not None
    roster = await _roster_team(system, "meera")
    await system.known_to_training("meera")
    trainer = system.training_as("trainer-1", "trainer")
    hr = system.training_as("hr-1", "hr")
    await trainer.CreateCourse(
        tpb.CreateCourseRequest(
            course_id="night-fibre",
            course=tpb.Course(
                title="Fibre at night",
                category=tpb.COURSE_CATEGORY_CLIENT_SPECIFIC,
                client="acme",
                credit_minutes=120,
                technical=True,
            ),
            idempotency_key="course",
        )
    )
    start = datetime(2026, 1, 31, 19, 30, tzinfo=UTC)  # 01:00 IST on 1 February
    await trainer.CreateSession(
        tpb.CreateSessionRequest(
            session_id="late",
            session=tpb.Session(
                course="courses/night-fibre",
                start_time=to_timestamp(start),
                end_time=to_timestamp(start + timedelta(hours=2)),
                time_zone="Asia/Kolkata",
                trainer="trainer-1",
                capacity=5,
                delivery=tpb.DELIVERY_CLASSROOM,
            ),
            idempotency_key="session",
        )
    )
    await hr.EnrollAgents(
        tpb.EnrollAgentsRequest(
            session="sessions/late", agents=["agents/meera"], idempotency_key="e"
        )
    )
    with training_clock_at(start - timedelta(minutes=5)):
        await trainer.StartSession(
            tpb.StartSessionRequest(name="sessions/late", idempotency_key="go")
        )
    await trainer.RecordCompletion(
        tpb.RecordCompletionRequest(
            name="sessions/late/enrollments/meera",
            completion=tpb.Completion(
                completion_time=to_timestamp(start + timedelta(hours=2)),
                attended_minutes=120,
                score=80,
                passed=True,
            ),
            idempotency_key="done",
        )
    )
    # No shift yet: Pune's calendar date, 1 February.
    await eventually(
        lambda: _training_hours(system, "meera", "2026-02-01", "2026-02-01"), lambda h: h == 2
    )

    # 08:00-17:00 New York (EST) on 31 January: 13:00-22:00 UTC, around the class.
    await roster.AssignShift(
        rpb.AssignShiftRequest(
            agent="agents/meera", shift_id="s1", shift=_spec("2026-01-31"), idempotency_key="a1"
        )
    )
    await roster.PublishWeek(
        rpb.PublishWeekRequest(
            team=f"teams/{h.TEAM}", week_start="2026-01-26", idempotency_key="p1"
        )
    )
    day = await eventually(
        lambda: _day(system, "meera", "2026-01-31"), lambda m: m.training_hours == 2
    )
    assert day.scheduled_hours == 8.5 and day.technical_trainings_completed == 1
    # The two days are written one after the other: 1 February may lag 31 January a moment.
    await eventually(
        lambda: _training_hours(system, "meera", "2026-02-01", "2026-02-01"), lambda h: h == 0
    )
    # Whole months (read from the month documents, rolled up after the days) and the team's
    # pooled figures.
    await eventually(
        lambda: _training_hours(system, "meera", "2026-02-01", "2026-02-28"), lambda h: h == 0
    )
    assert await _training_hours(system, "meera", "2026-01-01", "2026-01-31") == 2
    for first, last, hours in (("2026-01-01", "2026-01-31", 2), ("2026-02-01", "2026-02-28", 0)):
        team = await system.perf.GetTeamSummary(
            pb.GetTeamSummaryRequest(
                team=f"teams/{h.TEAM}", period=pb.Period(start_date=first, end_date=last)
            )
        )
        assert team.metrics.technical_training_hours == hours
    explained = await system.perf.ExplainMetric(
        pb.ExplainMetricRequest(
            name="agents/meera/scorecard",
            period=pb.Period(start_date="2026-01-31", end_date="2026-02-01"),
            metric="training_hours",
        )
    )
    assert [(t.completion_id, t.roster_date, t.hours) for t in explained.trainings] == [
        ("courses/night-fibre|sessions/late", "2026-01-31", 2.0)
    ]


async def test_a_relocated_agents_classes_follow_the_agents_clock_and_a_retake_counts_too(
    perf_system: System,
) -> None:
    """Nina fails a course in New York at 22:00 on 5 January (03:00 UTC on the 6th) and passes
    it on another session two hours later, then moves to Pune, where both instants are on 6
    January. No shift covers them: both classes count on Pune's 6 January, with a case
    resolved between them, not one on New York's 5th; and the retake is an entry of its own."""
    system = perf_system
    assert system.perf is not None and system.performance is not None
    new_york, pune = "America/New_York", "Asia/Kolkata"
    await h.add_team(system)
    await system.directory.CreateAgent(
        dpb.CreateAgentRequest(
            agent_id="nina",
            idempotency_key="agent-nina",
            agent=dpb.Agent(
                display_name="Nina",
                team=f"teams/{h.TEAM}",
                site="pune",
                time_zone=new_york,
                contract_type=dpb.CONTRACT_TYPE_FULL_TIME,
                weekly_minutes=45 * 60,
                annual_leave_days=29,
            ),
        )
    )
    await eventually(
        lambda: system.training.directory.agent("nina"),
        lambda a: a is not None and a.time_zone == new_york,
    )
    trainer = system.training_as("trainer-1", "trainer")
    hr = system.training_as("hr-1", "hr")
    await trainer.CreateCourse(
        tpb.CreateCourseRequest(
            course_id="refresh",
            course=tpb.Course(
                title="Fibre refresher",
                category=tpb.COURSE_CATEGORY_CLIENT_SPECIFIC,
                client="acme",
                credit_minutes=60,
                technical=True,
            ),
            idempotency_key="course",
        )
    )
    first = datetime(2026, 1, 6, 3, 0, tzinfo=UTC)  # 22:00 on the 5th in New York
    for session_id, start, passed in (
        ("try-1", first, False),
        ("try-2", first + timedelta(hours=2), True),
    ):
        await trainer.CreateSession(
            tpb.CreateSessionRequest(
                session_id=session_id,
                session=tpb.Session(
                    course="courses/refresh",
                    start_time=to_timestamp(start),
                    end_time=to_timestamp(start + timedelta(hours=1)),
                    time_zone=new_york,
                    trainer="trainer-1",
                    capacity=5,
                    delivery=tpb.DELIVERY_VIRTUAL,
                ),
                idempotency_key=f"session-{session_id}",
            )
        )
        await hr.EnrollAgents(
            tpb.EnrollAgentsRequest(
                session=f"sessions/{session_id}",
                agents=["agents/nina"],
                idempotency_key=f"e-{session_id}",
            )
        )
        with training_clock_at(start - timedelta(minutes=5)):
            await trainer.StartSession(
                tpb.StartSessionRequest(
                    name=f"sessions/{session_id}", idempotency_key=f"go-{session_id}"
                )
            )
        await trainer.RecordCompletion(
            tpb.RecordCompletionRequest(
                name=f"sessions/{session_id}/enrollments/nina",
                completion=tpb.Completion(
                    completion_time=to_timestamp(start + timedelta(hours=1)),
                    attended_minutes=60,
                    score=80 if passed else 40,
                    passed=passed,
                ),
                idempotency_key=f"done-{session_id}",
            )
        )
    # Recorded on New York's clock: the fail on the 5th, the pass on the 6th.
    await eventually(
        lambda: _training_hours(system, "nina", "2026-01-05", "2026-01-06"), lambda h: h == 2
    )

    agent = await system.directory.GetAgent(dpb.GetAgentRequest(name="agents/nina"))
    await system.directory.UpdateAgent(
        dpb.UpdateAgentRequest(
            agent=dpb.Agent(name="agents/nina", version=agent.version, time_zone=pune),
            update_mask=FieldMask(paths=["time_zone"]),
            idempotency_key="moved",
        )
    )
    directory = system.performance.directory
    await eventually(lambda: directory.zone_of("nina"), lambda zone: zone == pune)
    await system.perf.RecordCase(
        pb.RecordCaseRequest(
            case_id="between",
            case=_case("nina", first + timedelta(hours=1, minutes=30)),
            idempotency_key="between",
        )
    )
    day = await eventually(
        lambda: _day(system, "nina", "2026-01-06"), lambda m: m.cases_resolved == 1
    )
    assert (day.training_hours, day.technical_trainings_completed) == (2.0, 2.0)
    explained = await system.perf.ExplainMetric(
        pb.ExplainMetricRequest(
            name="agents/nina/scorecard",
            period=pb.Period(start_date="2026-01-05", end_date="2026-01-06"),
            metric="training_hours",
        )
    )
    assert [(t.completion_id, t.roster_date, t.hours) for t in explained.trainings] == [
        ("courses/refresh|sessions/try-1", "2026-01-06", 1.0),
        ("courses/refresh|sessions/try-2", "2026-01-06", 1.0),
    ]
