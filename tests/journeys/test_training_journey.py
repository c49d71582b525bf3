"""Journey: the training team runs a client-specific technical course for a Pune team.

The team (agents in Asia/Kolkata) serves the client acme-telecom. A trainer creates the
client's technical course (fibre support, Competent, recertified yearly, required for the
client) and two sessions of it, the second in another room 45 minutes after the first (both
start within minutes of the test: a session can only be checked in around its scheduled
time). HR enrolls the whole team in the first: it fills and waitlists. One agent withdraws and
the first waitlisted agent gets the seat; the one still waiting moves to the second session
with the agent who withdrew. The trainer starts both sessions and records completions (one
fails). Transcripts, technical hours and competency levels come out right, and the team leader
sees who is still due and the team's summary.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from wfm.training.v1 import training_service_pb2 as pb

from tests.conftest import System
from tests.training_helpers import starting_soon
from wfm_runtime.testing import eventually
from wfm_runtime.timefmt import to_timestamp

pytestmark = pytest.mark.journey

TEAM = "pune-acme"
AGENTS = ["asha", "ravi", "meera", "kiran", "neha"]
# Two four-hour classes, the second starting 45 minutes after the first; check-in is open for
# both from the start of the test (an hour before each start) until they end.
FIRST = starting_soon()
SECOND = FIRST + timedelta(minutes=45)
AFTER_CLASSES = SECOND + timedelta(hours=4)  # both classes' results are dated by then
KOLKATA = ZoneInfo("Asia/Kolkata")


def _session(sid: str, start: datetime) -> pb.CreateSessionRequest:
    return pb.CreateSessionRequest(
        session_id=sid,
        session=pb.Session(
            course="courses/acme-fibre",
            start_time=to_timestamp(start),
            end_time=to_timestamp(start + timedelta(hours=4)),
            time_zone="Asia/Kolkata",
            trainer="trainer-1" if sid == "first" else "trainer-2",
            capacity=3,
            delivery=pb.DELIVERY_CLASSROOM,
        ),
        idempotency_key=f"create-{sid}",
    )


def _done(sid: str, agent: str, minutes: int, score: int) -> pb.RecordCompletionRequest:
    return pb.RecordCompletionRequest(
        name=f"sessions/{sid}/enrollments/{agent}",
        completion=pb.Completion(
            completion_time=to_timestamp(
                (FIRST if sid == "first" else SECOND) + timedelta(hours=4)
            ),
            attended_minutes=minutes,
            score=score,
            passed=score >= 70,
        ),
        idempotency_key=f"done-{sid}-{agent}",
    )


async def test_training_team_runs_a_client_course(system: System) -> None:
    await system.add_team(TEAM, client="acme-telecom")
    for agent in AGENTS:
        await system.add_agent(agent, TEAM, zone="Asia/Kolkata")
    for agent in AGENTS:
        await system.known_to_training(agent)
    trainer = system.training_as("trainer-1", "trainer")
    hr = system.training_as("hr-1", "hr")
    leader = system.training_as("tl-1", "team_leader", teams=(TEAM,))

    course = await trainer.CreateCourse(
        pb.CreateCourseRequest(
            course_id="acme-fibre",
            course=pb.Course(
                title="Acme fibre troubleshooting",
                category=pb.COURSE_CATEGORY_CLIENT_SPECIFIC,
                client="acme-telecom",
                credit_minutes=240,
                technical=True,
                competency="fibre-support",
                competency_level=pb.COMPETENCY_LEVEL_COMPETENT,
                validity_days=365,
                required_for_clients=["acme-telecom"],
            ),
            idempotency_key="course-1",
        )
    )
    assert course.name == "courses/acme-fibre"
    await trainer.CreateSession(_session("first", FIRST))
    await trainer.CreateSession(_session("second", SECOND))

    # Before any training, every agent is due the client's required course.
    due = await leader.ListDue(pb.ListDueRequest(team=f"teams/{TEAM}", as_of_time=_ts(FIRST)))
    assert {(d.agent, d.reason) for d in due.due} == {
        (f"agents/{a}", pb.DUE_REASON_REQUIRED) for a in AGENTS
    }

    # HR enrolls the whole team: three seats, then the waitlist in order.
    enrolled = await hr.EnrollAgents(
        pb.EnrollAgentsRequest(
            session="sessions/first",
            agents=[f"agents/{a}" for a in AGENTS],
            idempotency_key="enroll-team",
        )
    )
    assert [(e.agent, e.state, e.waitlist_position) for e in enrolled.enrollments] == [
        ("agents/asha", pb.ENROLLMENT_STATE_ENROLLED, 0),
        ("agents/ravi", pb.ENROLLMENT_STATE_ENROLLED, 0),
        ("agents/meera", pb.ENROLLMENT_STATE_ENROLLED, 0),
        ("agents/kiran", pb.ENROLLMENT_STATE_WAITLISTED, 1),
        ("agents/neha", pb.ENROLLMENT_STATE_WAITLISTED, 2),
    ]

    # Ravi withdraws himself; Kiran, first in line, gets the seat; Neha is now first.
    ravi = system.training_as("ravi", "agent")
    await ravi.WithdrawEnrollment(
        pb.WithdrawEnrollmentRequest(
            name="sessions/first/enrollments/ravi", idempotency_key="ravi-out"
        )
    )
    roster = (await hr.GetSession(pb.GetSessionRequest(name="sessions/first"))).roster
    assert [(e.agent, e.state, e.waitlist_position) for e in roster] == [
        ("agents/asha", pb.ENROLLMENT_STATE_ENROLLED, 0),
        ("agents/ravi", pb.ENROLLMENT_STATE_WITHDRAWN, 0),
        ("agents/meera", pb.ENROLLMENT_STATE_ENROLLED, 0),
        ("agents/kiran", pb.ENROLLMENT_STATE_ENROLLED, 0),
        ("agents/neha", pb.ENROLLMENT_STATE_WAITLISTED, 1),
    ]

    # Neha leaves the waitlist for the second session; Ravi takes it too.
    await hr.WithdrawEnrollment(
        pb.WithdrawEnrollmentRequest(
            name="sessions/first/enrollments/neha", idempotency_key="neha-out"
        )
    )
    second = await hr.EnrollAgents(
        pb.EnrollAgentsRequest(
            session="sessions/second",
            agents=["agents/neha", "agents/ravi"],
            idempotency_key="enroll-second",
        )
    )
    assert {e.state for e in second.enrollments} == {pb.ENROLLMENT_STATE_ENROLLED}

    # Check-in, then completions: Meera fails; everyone else passes.
    await trainer.StartSession(
        pb.StartSessionRequest(name="sessions/first", idempotency_key="go-first")
    )
    await trainer.StartSession(
        pb.StartSessionRequest(name="sessions/second", idempotency_key="go-second")
    )
    for sid, agent, minutes, score in [
        ("first", "asha", 240, 92),
        ("first", "meera", 180, 55),
        ("first", "kiran", 240, 81),
        ("second", "neha", 240, 77),
        ("second", "ravi", 210, 70),
    ]:
        await trainer.RecordCompletion(_done(sid, agent, minutes, score))

    asha = await system.training_as("asha", "agent").GetTranscript(
        pb.GetTranscriptRequest(name="agents/asha/transcript", as_of_time=_ts(AFTER_CLASSES))
    )
    assert [(c.course, c.session, c.passed, c.attended_minutes) for c in asha.completions] == [
        ("courses/acme-fibre", "sessions/first", True, 240)
    ]
    local = FIRST.astimezone(KOLKATA)
    assert asha.completions[0].session_start_agent_local.local_time == local.isoformat()
    assert [(p.period, p.training_minutes, p.technical_minutes) for p in asha.periods] == [
        (f"{local:%Y-%m}", 240, 240)
    ]
    assert asha.totals.technical_trainings_completed == 1
    assert [(c.competency, c.level, c.evidence_session) for c in asha.competencies] == [
        ("fibre-support", pb.COMPETENCY_LEVEL_COMPETENT, "sessions/first")
    ]
    (cert,) = asha.certifications
    assert cert.expire_time.ToDatetime(UTC) == FIRST + timedelta(hours=4, days=365)
    assert list(asha.due) == []

    meera = await leader.GetTranscript(pb.GetTranscriptRequest(name="agents/meera/transcript"))
    assert (meera.totals.training_minutes, meera.totals.technical_minutes) == (180, 180)
    assert meera.totals.technical_trainings_completed == 0
    assert list(meera.competencies) == [] and list(meera.certifications) == []

    # Only Meera is still due the required course; a year on, the passes come up for renewal.
    # (the due list reads the projected views: it follows the writes within moments)
    now_due = await eventually(
        lambda: leader.ListDue(
            pb.ListDueRequest(team=f"teams/{TEAM}", as_of_time=_ts(AFTER_CLASSES))
        ),
        lambda r: len(r.due) == 1,
    )
    assert [(d.agent, d.reason) for d in now_due.due] == [("agents/meera", pb.DUE_REASON_REQUIRED)]
    # 30 days before the first class's certifications expire, to the instant: theirs are due
    # for renewal, the second class's (passed 45 minutes later) not yet.
    later = FIRST + timedelta(hours=4, days=365 - 30)
    renewals = await hr.ListDue(  # by client: every team serving it (HR, not a team leader)
        pb.ListDueRequest(client="acme-telecom", within_days=30, as_of_time=_ts(later))
    )
    assert {(d.agent, d.reason) for d in renewals.due} == {
        ("agents/asha", pb.DUE_REASON_EXPIRING),
        ("agents/kiran", pb.DUE_REASON_EXPIRING),
        ("agents/meera", pb.DUE_REASON_REQUIRED),
    }  # neha and ravi passed 45 minutes later: not yet within 30 days

    summary = await eventually(
        lambda: leader.GetTeamTrainingSummary(
            pb.GetTeamTrainingSummaryRequest(name=f"teams/{TEAM}/trainingSummary")
        ),
        lambda s: s.completions == 5,
    )
    assert (summary.agents, summary.passed, summary.failed) == (5, 4, 1)
    assert summary.pass_rate == pytest.approx(0.8)
    assert summary.training_minutes == summary.technical_minutes == 240 + 180 + 240 + 240 + 210


def _ts(value: datetime) -> Timestamp:
    return to_timestamp(value)
