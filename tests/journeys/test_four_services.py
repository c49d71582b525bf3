"""Journey across all four services: a Pune team on the US night shift for a week.

Scheduling builds and publishes the roster and approves leave, training records a technical
course, performance takes 200 cases over gRPC, and every scorecard figure is checked against
the hand-computed one. Availability's SetStatus stamps the current time (it has no explicit
times), so the week's status changes are availability's own StatusChanged events (encoded by
its store) fed to the running performance service's status projector (the seam it consumes).

The week: Mon 9 - Sun 15 November 2026. Shifts Mon-Fri 08:00-17:00 New York (13:00-22:00 UTC,
18:30-03:30 IST), a paid 15-minute break at 15:00 UTC and an unpaid lunch at 17:00 UTC:
540 minutes scheduled, 510 paid, 495 productive.
- asha: logs in 10 minutes late on Tuesday; 70 cases, 1 SLA breach.
- ravi: no-show on Wednesday, back from Thursday's break 10 minutes late; 60 cases, 4 breaches.
- meera: approved sick leave on Friday (scheduling cancels that shift), a technical course
  (4 hours) on Saturday; 70 cases, no breach.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from wfm.events.v1.envelope_pb2 import EventEnvelope
from wfm.performance.v1 import performance_service_pb2 as pb
from wfm.scheduling.v1 import roster_service_pb2 as rpb
from wfm.training.v1 import training_service_pb2 as tpb

from services.availability import domain as availability
from services.availability import store as availability_store
from services.performance import views
from tests import roster_helpers as h
from tests.conftest import System
from tests.integration.test_performance_api import _case
from tests.training_helpers import training_clock_at
from wfm_runtime.events import new_envelope
from wfm_runtime.testing import eventually
from wfm_runtime.timefmt import to_timestamp

pytestmark = pytest.mark.journey

AGENTS = ["asha", "ravi", "meera"]
MONDAY = date(2026, 11, 9)
PERIOD = pb.Period(start_date="2026-11-09", end_date="2026-11-15")
WORKED = {  # the days each agent works (weekday numbers, Monday = 0)
    "asha": [0, 1, 2, 3, 4],
    "ravi": [0, 1, 3, 4],  # Wednesday: no-show
    "meera": [0, 1, 2, 3],  # Friday: sick leave
}
CASES = {"asha": (70, 1), "ravi": (60, 4), "meera": (70, 0)}  # (cases, SLA breaches)


def utc(day: int, hh: int, mm: int = 0) -> datetime:
    """An instant on the day `day` of the week (Monday = 0), in UTC."""
    return datetime.combine(MONDAY + timedelta(days=day), datetime.min.time(), UTC) + timedelta(
        hours=hh, minutes=mm
    )


def _night(agent: str, day: int) -> list[tuple[datetime, str]]:
    """One night's status changes, with the agent's deviations."""
    login = utc(day, 13, 10 if (agent, day) == ("asha", 1) else 0)
    back_from_break = utc(day, 15, 25 if (agent, day) == ("ravi", 3) else 15)
    return [
        (login, "AVAILABLE"),
        (utc(day, 15), "BREAK"),
        (back_from_break, "AVAILABLE"),
        (utc(day, 17), "LUNCH"),
        (utc(day, 17, 30), "AVAILABLE"),
        (utc(day, 22), "OFFLINE"),
    ]


def _status_events(agent: str) -> list[EventEnvelope]:
    steps = [step for day in WORKED[agent] for step in _night(agent, day)]
    events, previous = [], availability.Status.OFFLINE
    for version, (moment, status) in enumerate(steps, start=1):
        change = availability.StatusChanged(
            agent, f"teams/{h.TEAM}", availability.Status(status), "", moment, previous, None, ""
        )
        previous = change.status
        events.append(
            new_envelope(
                producer="availability",
                aggregate_type=availability_store.AGGREGATE,
                aggregate_id=agent,
                version=version,
                payload=availability_store.encode(change),
                occurred_at=moment,
            )
        )
    return events


async def _cases() -> AsyncIterator[pb.RecordCasesRequest]:
    for agent, (count, breaches) in CASES.items():
        days = WORKED[agent]
        for k in range(count):
            day = days[k % len(days)]
            resolved = utc(day, 13, 30) + timedelta(minutes=5 * (k // len(days)))
            case = _case(
                agent, resolved, handle_s=300, sla_met=k >= breaches, fcr=k % 10 != 0,
                csat=4 if k % 2 == 0 else 5,
            )  # fmt: skip
            yield pb.RecordCasesRequest(
                case_id=f"{agent}-{k}", case=case, idempotency_key=f"case-{agent}-{k}"
            )


async def _roster(system: System) -> None:
    roster = h.roster_stub(system)
    await h.add_site(roster, {})
    await h.add_night_pattern(roster)
    bulk = await h.assign_us_day_week(roster, *AGENTS, week_start="2026-11-09", key="bulk")
    assert bulk.assigned_shifts == 15
    await roster.PublishWeek(
        rpb.PublishWeekRequest(team=f"teams/{h.TEAM}", week_start="2026-11-09", idempotency_key="p")
    )
    sick = await roster.RequestLeave(
        rpb.RequestLeaveRequest(
            agent="agents/meera",
            leave_request_id="flu",
            leave_request=rpb.LeaveRequest(
                kind=rpb.LEAVE_KIND_SICK, start_date="2026-11-13", end_date="2026-11-13"
            ),
            idempotency_key="flu",
        )
    )
    await roster.ApproveLeave(rpb.ApproveLeaveRequest(name=sick.name, idempotency_key="ok"))


async def _training(system: System) -> None:
    trainer = system.training_as("trainer-1", "trainer")
    await trainer.CreateCourse(
        tpb.CreateCourseRequest(
            course_id="acme-fibre",
            course=tpb.Course(
                title="Acme fibre troubleshooting",
                category=tpb.COURSE_CATEGORY_CLIENT_SPECIFIC,
                client="acme",
                credit_minutes=240,
                technical=True,
            ),
            idempotency_key="course",
        )
    )
    start = utc(5, 4)  # Saturday 09:30 IST
    await trainer.CreateSession(
        tpb.CreateSessionRequest(
            session_id="sat",
            session=tpb.Session(
                course="courses/acme-fibre",
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
    hr = system.training_as("hr-1", "hr")
    await hr.EnrollAgents(
        tpb.EnrollAgentsRequest(
            session="sessions/sat", agents=["agents/meera"], idempotency_key="e"
        )
    )
    # The week is a fixed one in the past, and check-in is open only around the class's time:
    # the trainer checks the class in at 09:25 IST that Saturday.
    with training_clock_at(start - timedelta(minutes=5)):
        await trainer.StartSession(
            tpb.StartSessionRequest(name="sessions/sat", idempotency_key="go")
        )
    await trainer.RecordCompletion(
        tpb.RecordCompletionRequest(
            name="sessions/sat/enrollments/meera",
            completion=tpb.Completion(
                completion_time=to_timestamp(start + timedelta(hours=4)),
                attended_minutes=240,
                score=88,
                passed=True,
            ),
            idempotency_key="done",
        )
    )


# Hand-computed (minutes): a shift is 540 scheduled activity minutes, 510 paid, 495 productive.
EXPECTED = {
    "asha": {
        "scheduled_hours": 5 * 510 / 60,
        "logged_in_hours": (5 * 540 - 10) / 60,
        "absenteeism_percent": 100 * 10 / (5 * 495),
        "late_logins": 1,
        "no_shows": 0,
        "adherence_percent": 100 * (5 * 540 - 10) / (5 * 540),
        "conformance_percent": 100 * (5 * 495 - 10) / (5 * 495),
        "occupancy_percent": 0,
        "cases_resolved": 70,
        "cases_resolved_per_day": 70 / 5,
        "sla_compliance_percent": 100 * 69 / 70,
        "first_contact_resolution_percent": 100 * 63 / 70,
    },
    "ravi": {
        "scheduled_hours": 5 * 510 / 60,  # the missed Wednesday is still scheduled
        "logged_in_hours": 4 * 540 / 60,  # the overrun break is logged in
        "absenteeism_percent": 100 * 495 / (5 * 495),
        "late_logins": 0,  # a no-show is not a late log-in
        "no_shows": 1,
        "adherence_percent": 100 * (4 * 540 - 10) / (5 * 540),
        "conformance_percent": 100 * (4 * 495 - 10) / (5 * 495),
        "occupancy_percent": 0,
        "cases_resolved": 60,
        "cases_resolved_per_day": 60 / 5,  # Wednesday was scheduled: an active day
        "sla_compliance_percent": 100 * 56 / 60,
        "first_contact_resolution_percent": 100 * 54 / 60,
    },
    "meera": {
        "scheduled_hours": 4 * 510 / 60,  # Friday's shift was cancelled by the leave
        "logged_in_hours": 4 * 540 / 60,
        "absenteeism_percent": 0,
        "late_logins": 0,
        "no_shows": 0,
        "adherence_percent": 100,
        "conformance_percent": 100,
        "occupancy_percent": 0,
        "training_hours": 4,
        "technical_training_hours": 4,
        "technical_trainings_completed": 1,
        "cases_resolved": 70,
        "cases_resolved_per_day": 70 / 4,
        "sla_compliance_percent": 100,
        "first_contact_resolution_percent": 100 * 63 / 70,
    },
}
EVERY_CASE = {
    "average_handle_time_seconds": 300,  # 240 talk + 20 hold + 40 after-contact work
    "average_time_to_resolution_seconds": 20 * 60,
    "csat_average": 4.5,  # alternately 4 and 5
}


async def test_a_night_shift_week_across_the_four_services(perf_system: System) -> None:
    system, perf = perf_system, perf_system.perf
    assert perf is not None and system.performance is not None
    await h.add_team(system)
    for agent in AGENTS:
        await h.add_agent(system, agent)
    for agent in AGENTS:
        await eventually(lambda a=agent: system.performance.directory.agent(a))  # type: ignore[misc]
        await system.known_to_training(agent)
    await perf.SetRedFlagThresholds(
        pb.SetRedFlagThresholdsRequest(
            thresholds=pb.RedFlagThresholds(
                name=f"teams/{h.TEAM}/redFlagThresholds",
                max_absenteeism_percent=5,
                min_adherence_percent=90,
                min_sla_compliance_percent=95,
                max_late_logins=0,
            ),
            idempotency_key="limits",
        )
    )
    # Statuses first: the roster arriving after the days were computed recomputes them.
    statuses = views.StatusProjection(system.performance.book)
    for agent in AGENTS:
        await statuses.apply(_status_events(agent))
    await statuses.caught_up()
    await _roster(system)
    await _training(system)
    recorded = await perf.RecordCases(_cases())
    assert (recorded.recorded_count, recorded.failed_count) == (200, 0)

    async def cards() -> dict[str, pb.Metrics]:
        assert perf is not None
        listed = await perf.ListScorecards(
            pb.ListScorecardsRequest(team=f"teams/{h.TEAM}", period=PERIOD, page_size=10)
        )
        return {c.agent.removeprefix("agents/"): c.metrics for c in listed.scorecards}

    def settled(found: dict[str, pb.Metrics]) -> bool:
        return (
            set(found) == set(AGENTS)
            and all(
                found[a].scheduled_hours == pytest.approx(EXPECTED[a]["scheduled_hours"])
                and found[a].cases_resolved == EXPECTED[a]["cases_resolved"]
                for a in AGENTS
            )
            and found["meera"].training_hours == 4
        )

    found = await eventually(cards, settled, timeout=20)
    for agent, expected in EXPECTED.items():
        for metric, value in {**expected, **EVERY_CASE}.items():
            assert getattr(found[agent], metric) == pytest.approx(value, abs=1e-4), (agent, metric)
        if agent != "meera":
            assert not found[agent].HasField("training_hours") or found[agent].training_hours == 0

    summary = await perf.GetTeamSummary(
        pb.GetTeamSummaryRequest(team=f"teams/{h.TEAM}", period=PERIOD)
    )
    assert summary.metrics.cases_resolved == 200
    assert summary.metrics.sla_compliance_percent == pytest.approx(100 * 195 / 200)
    # Weighted by time, not averaged per agent: 505 absent minutes over 14 productive shifts.
    assert summary.metrics.absenteeism_percent == pytest.approx(100 * 505 / (14 * 495), abs=1e-4)

    flags = await perf.ListRedFlags(pb.ListRedFlagsRequest(team=f"teams/{h.TEAM}", period=PERIOD))
    assert sorted((f.agent, f.metric) for f in flags.red_flags) == [
        ("agents/asha", "late_logins"),
        ("agents/ravi", "absenteeism_percent"),
        ("agents/ravi", "adherence_percent"),
        ("agents/ravi", "sla_compliance_percent"),
    ]
