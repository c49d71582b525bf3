"""Journey: an agent's own day, every call made as the agent (role agent, their own token).

Asha works from Pune (Asia/Kolkata) on a team serving a New York client: the US day,
08:00-17:00 Eastern, is her night, 18:30-03:30 IST (January: no US daylight saving). Her
teammate Ravi is on the same team. Through the day Asha:

1. reads the week the scheduler published for her, on her clock and on the client's, each
   shift running past her midnight (nothing before it was published);
2. works a stretch of her shift (available, on a contact, after-contact work, a break with a
   reason, available again, logged off) and reads her status and her history back: time in
   each state and productive time;
3. asks for a whole day and for two hours of annual leave, sees both pending in her list and
   balance; the scheduler approves the day: her balance and her roster follow;
4. is booked by the training team on a technical course for her client, checked in and passed;
   her transcript shows the hours, the competency, the certification's expiry and what is still
   due;
5. reads her scorecard once the admin (the only role that may) records her cases, and asks
   which cases are behind a figure;
6. and at every step is refused (PERMISSION_DENIED) Ravi's roster, status, leave, enrollment,
   transcript and scorecard, reading or changing them, and nothing of Ravi's changes.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from wfm.availability.v1 import availability_service_pb2 as apb
from wfm.performance.v1 import performance_service_pb2 as ppb
from wfm.scheduling.v1 import roster_service_pb2 as rpb
from wfm.training.v1 import training_service_pb2 as tpb

from tests import roster_helpers as h
from tests.conftest import System
from tests.integration.test_performance_api import _case
from tests.training_helpers import starting_soon
from wfm_runtime.testing import eventually
from wfm_runtime.timefmt import to_timestamp, utc_now

pytestmark = pytest.mark.journey

ME, MATE = "asha", "ravi"
TEAM = f"teams/{h.TEAM}"
KOLKATA = ZoneInfo("Asia/Kolkata")
WEEK = "2027-01-04"  # Monday; shifts Monday to Friday, 13:00-22:00 UTC
PAID = 9 * 60 - 30  # a 9-hour shift with an unpaid 30-minute lunch
DENIED = grpc.StatusCode.PERMISSION_DENIED
# A two-hour technical class, starting minutes from now: check-in is open around it.
CLASS = starting_soon()
AFTER_CLASS = CLASS + timedelta(hours=2)


def _ts(value: datetime) -> Timestamp:
    return to_timestamp(value)


async def _denied(call: Any) -> None:
    code, _, message = await h.refusal(call)
    assert code == DENIED, message


def _week(agent: str) -> rpb.GetAgentRosterRequest:
    return rpb.GetAgentRosterRequest(
        agent=f"agents/{agent}", start_date=WEEK, end_date="2027-01-10"
    )


def _shifts(roster: rpb.AgentRoster) -> dict[str, rpb.Shift]:
    return {d.roster_date: s for d in roster.days for s in d.shifts}


async def test_an_agent_in_pune_works_her_day_on_her_own_token(perf_system: System) -> None:
    system = perf_system
    assert system.performance is not None and system.perf is not None
    scheduler = h.roster_stub(system, "sched-1", "scheduler")
    await h.add_team(system)
    for agent in (ME, MATE):
        await h.add_agent(system, agent)
    await h.add_site(scheduler, {})
    await h.add_night_pattern(scheduler)
    for agent in (ME, MATE):
        await system.known_to_availability(agent)
        await system.known_to_training(agent)
        await eventually(lambda a=agent: system.performance.directory.agent(a))  # type: ignore[misc]

    # Asha's own stubs, one per service, all with her token (sub asha, role agent).
    my_status, _ = system.as_caller(ME, "agent")
    my_roster = h.roster_stub(system, ME, "agent")
    my_training = system.training_as(ME, "agent")
    my_perf = system.perf_as(ME, "agent")
    mate_status, _ = system.as_caller(MATE, "agent")
    mate_roster = h.roster_stub(system, MATE, "agent")

    await _roster(scheduler, my_roster)
    await _availability(system, my_status, mate_status)
    await _leave(scheduler, my_roster, mate_roster)
    await _training(system, my_training)
    await _scorecard(system, my_perf)


async def _roster(scheduler: Any, mine: Any) -> None:
    """1. The scheduler plans and publishes her week; she reads it on both clocks."""
    planned = await h.assign_us_day_week(scheduler, ME, MATE, week_start=WEEK, key="week")
    assert planned.assigned_shifts == 10
    # Drafts are the scheduler's: Asha sees her week only once it is published.
    assert _shifts(await mine.GetAgentRoster(_week(ME))) == {}
    published = await scheduler.PublishWeek(
        rpb.PublishWeekRequest(team=TEAM, week_start=WEEK, idempotency_key="publish")
    )
    assert published.published_shifts == 10

    roster = await eventually(
        lambda: mine.GetAgentRoster(_week(ME)), lambda r: len(_shifts(r)) == 5
    )
    shifts = _shifts(roster)
    assert sorted(shifts) == ["2027-01-04", "2027-01-05", "2027-01-06", "2027-01-07", "2027-01-08"]
    monday = shifts["2027-01-04"]
    assert monday.state == rpb.SHIFT_STATE_PUBLISHED
    # Her night starts at 18:30 IST and ends after her midnight, at 03:30 IST on Tuesday...
    assert (monday.start_agent_local.local_time, monday.end_agent_local.local_time) == (
        "2027-01-04T18:30:00+05:30",
        "2027-01-05T03:30:00+05:30",
    )
    assert monday.start_agent_local.abbreviation == "IST"
    # ...which is the client's Monday, 08:00-17:00 in New York.
    assert (monday.start_client_local.local_time, monday.end_client_local.local_time) == (
        "2027-01-04T08:00:00-05:00",
        "2027-01-04T17:00:00-05:00",
    )
    assert monday.end_client_local.abbreviation == "EST"
    assert (monday.paid_minutes, roster.paid_minutes) == (PAID, 5 * PAID)
    # Every night of the week is the same: it ends on her next calendar day.
    assert {
        day: (s.start_agent_local.local_time[11:], s.end_agent_local.local_time)
        for day, s in shifts.items()
    } == {
        f"2027-01-0{d}": ("18:30:00+05:30", f"2027-01-0{d + 1}T03:30:00+05:30") for d in range(4, 9)
    }

    # Ravi's roster is not hers to read, nor the team's; nor may she cancel his shift.
    await _denied(mine.GetAgentRoster(_week(MATE)))
    await _denied(mine.GetTeamRoster(rpb.GetTeamRosterRequest(team=TEAM, week_start=WEEK)))
    ravi = await scheduler.GetAgentRoster(_week(MATE))
    tuesday = _shifts(ravi)["2027-01-05"]
    await _denied(mine.CancelShift(rpb.CancelShiftRequest(name=tuesday.name, idempotency_key="x")))
    ravi_after = await scheduler.GetAgentRoster(_week(MATE))
    assert ravi_after == ravi and tuesday.state == rpb.SHIFT_STATE_PUBLISHED
    assert ravi.paid_minutes == 5 * PAID


async def _availability(system: System, mine: Any, mate: Any) -> None:
    """2. She works a stretch of her shift and reads her status and history back."""
    # Ravi logs in first (his own token); Asha's attempt to change him is refused below.
    ravi_in = await mate.SetStatus(
        apb.SetStatusRequest(
            name=f"agents/{MATE}/availability",
            status=apb.AGENT_STATUS_AVAILABLE,
            idempotency_key="ravi-in",
        )
    )
    started = utc_now() - timedelta(seconds=1)
    moves = [
        (apb.AGENT_STATUS_AVAILABLE, ""),
        (apb.AGENT_STATUS_ON_CONTACT, ""),
        (apb.AGENT_STATUS_AFTER_CONTACT_WORK, ""),
        (apb.AGENT_STATUS_BREAK, "SCHEDULED_BREAK"),
        (apb.AGENT_STATUS_AVAILABLE, ""),
        (apb.AGENT_STATUS_OFFLINE, ""),
    ]
    for n, (status, reason) in enumerate(moves, start=1):
        done = await mine.SetStatus(
            apb.SetStatusRequest(
                name=f"agents/{ME}/availability",
                status=status,
                reason_code=reason,
                idempotency_key=f"me-{n}",
            )
        )
        assert (done.status, done.reason_code, done.version) == (status, reason, n)
        await asyncio.sleep(0.05)  # each state lasts a moment: a zero-length one is no segment

    now = await mine.GetAvailability(apb.GetAvailabilityRequest(name=f"agents/{ME}/availability"))
    assert (now.status, now.version, now.productive) == (apb.AGENT_STATUS_OFFLINE, 6, False)
    assert (now.team, now.since_agent_local.time_zone) == (TEAM, "Asia/Kolkata")
    assert now.since_agent_local.local_time.endswith("+05:30")
    assert now.since_client_local.time_zone == "America/New_York"
    assert now.since_client_local.abbreviation in {"EST", "EDT"}

    history = await eventually(
        lambda: mine.GetStatusHistory(
            apb.GetStatusHistoryRequest(
                name=f"agents/{ME}/availability",
                start_time=_ts(started),
                end_time=_ts(utc_now() + timedelta(hours=1)),
            )
        ),
        lambda r: len(r.segments) == len(moves),
    )
    assert [(s.status, s.reason_code) for s in history.segments] == moves
    assert [s.productive for s in history.segments] == [True, True, True, False, True, False]
    assert [s.ongoing for s in history.segments] == [False] * 5 + [True]
    assert history.segments[3].start_agent_local.local_time.endswith("+05:30")
    lasted = [s.duration.ToTimedelta() for s in history.segments]
    assert all(d >= timedelta(milliseconds=40) for d in lasted[:-1])
    totals = {t.status: t.duration.ToTimedelta() for t in history.totals}
    assert totals[apb.AGENT_STATUS_AVAILABLE] == lasted[0] + lasted[4]
    assert totals[apb.AGENT_STATUS_BREAK] == lasted[3]
    productive = lasted[0] + lasted[1] + lasted[2] + lasted[4]
    assert history.productive_duration.ToTimedelta() == productive
    assert history.covered_duration.ToTimedelta() == sum(lasted, timedelta())

    # Ravi's status: not hers to change, nor to read.
    await _denied(
        mine.SetStatus(
            apb.SetStatusRequest(
                name=f"agents/{MATE}/availability",
                status=apb.AGENT_STATUS_OFFLINE,
                idempotency_key="log-ravi-out",
            )
        )
    )
    await _denied(
        mine.GetAvailability(apb.GetAvailabilityRequest(name=f"agents/{MATE}/availability"))
    )
    await _denied(
        mine.GetStatusHistory(
            apb.GetStatusHistoryRequest(
                name=f"agents/{MATE}/availability",
                start_time=_ts(started),
                end_time=_ts(utc_now()),
            )
        )
    )
    await _denied(mine.ListAvailability(apb.ListAvailabilityRequest(team=TEAM)))
    ravi = await system.avail.GetAvailability(
        apb.GetAvailabilityRequest(name=f"agents/{MATE}/availability")
    )
    assert (ravi.status, ravi.version) == (apb.AGENT_STATUS_AVAILABLE, ravi_in.version)


async def _leave(scheduler: Any, mine: Any, mate: Any) -> None:
    """3. Whole-day and hourly annual leave: pending, then one approved."""
    day_off = await mine.RequestLeave(
        rpb.RequestLeaveRequest(
            agent=f"agents/{ME}",
            leave_request_id="friday",
            leave_request=rpb.LeaveRequest(
                kind=rpb.LEAVE_KIND_ANNUAL, start_date="2027-01-08", end_date="2027-01-08"
            ),
            idempotency_key="leave-friday",
        )
    )
    # Two hours at the start of Wednesday night: 18:30-20:30 IST, 08:00-10:00 New York.
    hours_start = datetime(2027, 1, 6, 13, 0, tzinfo=UTC)
    hours = await mine.RequestLeave(
        rpb.RequestLeaveRequest(
            agent=f"agents/{ME}",
            leave_request_id="wednesday-hours",
            leave_request=rpb.LeaveRequest(
                kind=rpb.LEAVE_KIND_ANNUAL,
                start_time=_ts(hours_start),
                end_time=_ts(hours_start + timedelta(hours=2)),
                note="bank appointment",
            ),
            idempotency_key="leave-hours",
        )
    )
    assert (day_off.state, day_off.allowance_days) == (rpb.LEAVE_STATE_REQUESTED, 1.0)
    # Two hours of a 9-hour contract day (45 h over five working days).
    assert (hours.state, hours.allowance_days) == (rpb.LEAVE_STATE_REQUESTED, 0.22)
    assert hours.start_agent_local.local_time == "2027-01-06T18:30:00+05:30"

    listed = await mine.ListLeaveRequests(rpb.ListLeaveRequestsRequest(agent=f"agents/{ME}"))
    assert {(r.name, r.state) for r in listed.leave_requests} == {
        (day_off.name, rpb.LEAVE_STATE_REQUESTED),
        (hours.name, rpb.LEAVE_STATE_REQUESTED),
    }
    balance = rpb.GetLeaveBalanceRequest(agent=f"agents/{ME}", year=2027)
    before = await mine.GetLeaveBalance(balance)
    assert (before.allowance_days, before.taken_days, before.pending_days) == (29, 0.0, 1.22)
    assert before.remaining_days == 29.0

    # She cannot decide her own leave; the scheduler approves the day.
    await _denied(mine.ApproveLeave(rpb.ApproveLeaveRequest(name=hours.name, idempotency_key="me")))
    approved = await scheduler.ApproveLeave(
        rpb.ApproveLeaveRequest(name=day_off.name, idempotency_key="approve-friday")
    )
    assert approved.state == rpb.LEAVE_STATE_APPROVED

    after = await mine.GetLeaveBalance(balance)
    assert (after.taken_days, after.pending_days, after.remaining_days) == (1.0, 0.22, 28.0)
    states = await mine.ListLeaveRequests(rpb.ListLeaveRequestsRequest(agent=f"agents/{ME}"))
    assert {r.name: r.state for r in states.leave_requests} == {
        day_off.name: rpb.LEAVE_STATE_APPROVED,
        hours.name: rpb.LEAVE_STATE_REQUESTED,
    }
    # The approval cancelled her Friday shift; she still sees it, as cancelled.
    roster = await eventually(
        lambda: mine.GetAgentRoster(_week(ME)), lambda r: r.paid_minutes == 4 * PAID
    )
    friday = _shifts(roster)["2027-01-08"]
    assert (friday.state, friday.cancel_reason) == (rpb.SHIFT_STATE_CANCELLED, "leave friday")

    # Ravi's leave is his: she can neither ask for it, read it, nor withdraw it.
    his = await mate.RequestLeave(
        rpb.RequestLeaveRequest(
            agent=f"agents/{MATE}",
            leave_request_id="monday",
            leave_request=rpb.LeaveRequest(
                kind=rpb.LEAVE_KIND_ANNUAL, start_date="2027-01-04", end_date="2027-01-04"
            ),
            idempotency_key="ravi-leave",
        )
    )
    await _denied(
        mine.RequestLeave(
            rpb.RequestLeaveRequest(
                agent=f"agents/{MATE}",
                leave_request_id="forged",
                leave_request=rpb.LeaveRequest(
                    kind=rpb.LEAVE_KIND_ANNUAL, start_date="2027-01-05", end_date="2027-01-09"
                ),
                idempotency_key="forged",
            )
        )
    )
    await _denied(mine.CancelLeave(rpb.CancelLeaveRequest(name=his.name, idempotency_key="undo")))
    await _denied(mine.ListLeaveRequests(rpb.ListLeaveRequestsRequest(agent=f"agents/{MATE}")))
    await _denied(mine.ListLeaveRequests(rpb.ListLeaveRequestsRequest(team=TEAM)))
    await _denied(
        mine.GetLeaveBalance(rpb.GetLeaveBalanceRequest(agent=f"agents/{MATE}", year=2027))
    )
    ravis = await scheduler.ListLeaveRequests(rpb.ListLeaveRequestsRequest(agent=f"agents/{MATE}"))
    assert [(r.name, r.state) for r in ravis.leave_requests] == [
        (his.name, rpb.LEAVE_STATE_REQUESTED)
    ]
    ravi_balance = await scheduler.GetLeaveBalance(
        rpb.GetLeaveBalanceRequest(agent=f"agents/{MATE}", year=2027)
    )
    assert (ravi_balance.pending_days, ravi_balance.taken_days) == (1.0, 0.0)


async def _training(system: System, mine: Any) -> None:
    """4. Booked on her client's technical course, checked in, passed: her transcript."""
    trainer = system.training_as("trainer-1", "trainer")
    courses: list[tuple[str, str, dict[str, Any]]] = [
        (
            "acme-fibre",
            "Acme fibre troubleshooting",
            {
                "credit_minutes": 120,
                "technical": True,
                "competency": "fibre-support",
                "competency_level": tpb.COMPETENCY_LEVEL_COMPETENT,
                "validity_days": 365,
            },
        ),
        ("acme-privacy", "Acme data privacy", {"credit_minutes": 60}),
    ]
    for course_id, title, fields in courses:
        await trainer.CreateCourse(
            tpb.CreateCourseRequest(
                course_id=course_id,
                course=tpb.Course(
                    title=title,
                    category=tpb.COURSE_CATEGORY_CLIENT_SPECIFIC,
                    client="acme",
                    required_for_clients=["acme"],
                    **fields,
                ),
                idempotency_key=f"course-{course_id}",
            )
        )
    await trainer.CreateSession(
        tpb.CreateSessionRequest(
            session_id="fibre-1",
            session=tpb.Session(
                course="courses/acme-fibre",
                start_time=_ts(CLASS),
                end_time=_ts(AFTER_CLASS),
                time_zone="Asia/Kolkata",
                trainer="trainer-1",
                capacity=10,
                delivery=tpb.DELIVERY_CLASSROOM,
            ),
            idempotency_key="session",
        )
    )
    booked = await trainer.EnrollAgents(
        tpb.EnrollAgentsRequest(
            session="sessions/fibre-1",
            agents=[f"agents/{ME}", f"agents/{MATE}"],
            idempotency_key="book",
        )
    )
    assert {e.state for e in booked.enrollments} == {tpb.ENROLLMENT_STATE_ENROLLED}

    # Booked: her transcript lists the place, and both client courses as still due.
    ahead = await mine.GetTranscript(tpb.GetTranscriptRequest(name=f"agents/{ME}/transcript"))
    assert [(b.session, b.start_agent_local.local_time) for b in ahead.bookings] == [
        ("sessions/fibre-1", CLASS.astimezone(KOLKATA).isoformat())
    ]
    assert {(d.course, d.reason, d.booked_session) for d in ahead.due} == {
        ("courses/acme-fibre", tpb.DUE_REASON_REQUIRED, "sessions/fibre-1"),
        ("courses/acme-privacy", tpb.DUE_REASON_REQUIRED, ""),
    }
    mine_listed = await eventually(  # the session roster view: it follows within moments
        lambda: mine.ListEnrollments(tpb.ListEnrollmentsRequest(agent=f"agents/{ME}")),
        lambda r: len(r.enrollments) == 1,
    )
    assert [(e.session, e.state) for e in mine_listed.enrollments] == [
        ("sessions/fibre-1", tpb.ENROLLMENT_STATE_ENROLLED)
    ]

    # Ravi's place is his: she may not give it up for him, nor book him elsewhere.
    await _denied(
        mine.WithdrawEnrollment(
            tpb.WithdrawEnrollmentRequest(
                name=f"sessions/fibre-1/enrollments/{MATE}", idempotency_key="drop-ravi"
            )
        )
    )
    await _denied(
        mine.EnrollAgents(
            tpb.EnrollAgentsRequest(
                session="sessions/fibre-1", agents=[f"agents/{MATE}"], idempotency_key="re-book"
            )
        )
    )
    # Nor may she record her own result.
    await _denied(
        mine.RecordCompletion(
            tpb.RecordCompletionRequest(
                name=f"sessions/fibre-1/enrollments/{ME}",
                completion=tpb.Completion(
                    completion_time=_ts(AFTER_CLASS), attended_minutes=120, score=100, passed=True
                ),
                idempotency_key="self-graded",
            )
        )
    )

    await trainer.StartSession(
        tpb.StartSessionRequest(name="sessions/fibre-1", idempotency_key="go")
    )
    for agent, score in [(ME, 88), (MATE, 64)]:
        await trainer.RecordCompletion(
            tpb.RecordCompletionRequest(
                name=f"sessions/fibre-1/enrollments/{agent}",
                completion=tpb.Completion(
                    completion_time=_ts(AFTER_CLASS),
                    attended_minutes=120,
                    score=score,
                    passed=score >= 70,
                ),
                idempotency_key=f"done-{agent}",
            )
        )

    mine_now = await mine.GetTranscript(
        tpb.GetTranscriptRequest(name=f"agents/{ME}/transcript", as_of_time=_ts(AFTER_CLASS))
    )
    assert [(c.course, c.score, c.passed, c.attended_minutes) for c in mine_now.completions] == [
        ("courses/acme-fibre", 88, True, 120)
    ]
    local = CLASS.astimezone(KOLKATA)
    assert [(p.period, p.training_minutes, p.technical_minutes) for p in mine_now.periods] == [
        (f"{local:%Y-%m}", 120, 120)
    ]
    assert (mine_now.totals.training_minutes, mine_now.totals.technical_trainings_completed) == (
        120,
        1,
    )
    assert [(c.competency, c.level) for c in mine_now.competencies] == [
        ("fibre-support", tpb.COMPETENCY_LEVEL_COMPETENT)
    ]
    (cert,) = mine_now.certifications
    assert cert.expire_time.ToDatetime(UTC) == AFTER_CLASS + timedelta(days=365)
    assert cert.expire_agent_local.local_time == (
        (AFTER_CLASS + timedelta(days=365)).astimezone(KOLKATA).isoformat()
    )
    # Still due: the privacy course she has not taken. A year on, the fibre pass expires.
    assert [(d.course, d.reason) for d in mine_now.due] == [
        ("courses/acme-privacy", tpb.DUE_REASON_REQUIRED)
    ]
    assert list(mine_now.bookings) == []
    renewal = await mine.GetTranscript(
        tpb.GetTranscriptRequest(
            name=f"agents/{ME}/transcript",
            as_of_time=_ts(AFTER_CLASS + timedelta(days=350)),
        )
    )
    assert {(d.course, d.reason) for d in renewal.due} == {
        ("courses/acme-fibre", tpb.DUE_REASON_EXPIRING),
        ("courses/acme-privacy", tpb.DUE_REASON_REQUIRED),
    }

    # Ravi's training record is not hers to read.
    await _denied(mine.GetTranscript(tpb.GetTranscriptRequest(name=f"agents/{MATE}/transcript")))
    await _denied(mine.ListEnrollments(tpb.ListEnrollmentsRequest(agent=f"agents/{MATE}")))
    await _denied(mine.ListEnrollments(tpb.ListEnrollmentsRequest(session="sessions/fibre-1")))
    session = await trainer.GetSession(tpb.GetSessionRequest(name="sessions/fibre-1"))
    assert {(e.agent, e.state) for e in session.roster} == {
        (f"agents/{ME}", tpb.ENROLLMENT_STATE_COMPLETED),
        (f"agents/{MATE}", tpb.ENROLLMENT_STATE_FAILED),
    }


async def _scorecard(system: System, mine: Any) -> None:
    """5. Her cases, recorded by the admin, on her scorecard."""
    admin = system.perf
    assert admin is not None
    resolved = utc_now() - timedelta(hours=2)
    day = resolved.astimezone(KOLKATA).date()
    period = ppb.Period(start_date=(day - timedelta(days=1)).isoformat(), end_date=day.isoformat())
    for n, (agent, handle_s, sla_met, csat) in enumerate(
        [(ME, 300, True, 5), (ME, 420, True, 4), (ME, 600, False, 3), (MATE, 300, True, 2)]
    ):
        await admin.RecordCase(
            ppb.RecordCaseRequest(
                case_id=f"case-{n}",
                case=_case(agent, resolved, handle_s=handle_s, sla_met=sla_met, csat=csat),
                idempotency_key=f"case-{n}",
            )
        )
    # She may not record a case, not even her own.
    await _denied(
        mine.RecordCase(
            ppb.RecordCaseRequest(
                case_id="case-self", case=_case(ME, resolved, csat=5), idempotency_key="self"
            )
        )
    )

    card_request = ppb.GetScorecardRequest(name=f"agents/{ME}/scorecard", period=period)
    card = await eventually(
        lambda: mine.GetScorecard(card_request), lambda c: c.metrics.cases_resolved == 3
    )
    assert (card.agent, card.team) == (f"agents/{ME}", TEAM)
    assert card.metrics.average_handle_time_seconds == pytest.approx(440.0)
    assert card.metrics.sla_compliance_percent == pytest.approx(200 / 3)
    assert card.metrics.csat_average == pytest.approx(4.0)
    explained = await mine.ExplainMetric(
        ppb.ExplainMetricRequest(
            name=f"agents/{ME}/scorecard", period=period, metric="cases_resolved"
        )
    )
    assert sorted(c.name for c in explained.cases) == [
        "cases/case-0",
        "cases/case-1",
        "cases/case-2",
    ]

    # Ravi's scorecard is not hers, nor the team's list.
    other = ppb.GetScorecardRequest(name=f"agents/{MATE}/scorecard", period=period)
    await _denied(mine.GetScorecard(other))
    await _denied(
        mine.ExplainMetric(
            ppb.ExplainMetricRequest(
                name=f"agents/{MATE}/scorecard", period=period, metric="csat_average"
            )
        )
    )
    await _denied(mine.ListScorecards(ppb.ListScorecardsRequest(team=TEAM, period=period)))
    ravi = await admin.GetScorecard(other)
    assert (ravi.metrics.cases_resolved, ravi.metrics.csat_average) == (1, 2.0)
    # The refused self-recorded case changed nothing.
    assert (await mine.GetScorecard(card_request)).metrics.cases_resolved == 3
