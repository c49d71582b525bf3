"""Journey: the training team runs a client-specific technical course for a Pune team.

The team (agents in Asia/Kolkata) serves the client acme-telecom. A trainer creates the
client's technical course (fibre support, Competent, recertified yearly, required for the
client) and two sessions. HR enrolls the whole team in the first: it fills and waitlists. One
agent withdraws and the first waitlisted agent gets the seat; the one still waiting moves to
the second session with the agent who withdrew. The trainer starts both sessions and records
completions (one fails). Transcripts, technical hours and competency levels come out right,
and the team leader sees who is still due and the team's summary.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from wfm.training.v1 import training_service_pb2 as pb

from tests.conftest import System
from wfm_runtime.testing import eventually
from wfm_runtime.timefmt import to_timestamp

pytestmark = pytest.mark.journey

TEAM = "pune-acme"
AGENTS = ["asha", "ravi", "meera", "kiran", "neha"]
# 09:30-13:30 IST on 1 and 8 December: late at night on 30 Nov / 7 Dec in New York.
FIRST = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
SECOND = datetime(2026, 12, 8, 4, 0, tzinfo=UTC)


def _session(sid: str, start: datetime) -> pb.CreateSessionRequest:
    return pb.CreateSessionRequest(
        session_id=sid,
        session=pb.Session(
            course="courses/acme-fibre",
            start_time=to_timestamp(start),
            end_time=to_timestamp(start + timedelta(hours=4)),
            time_zone="Asia/Kolkata",
            trainer="trainer-1",
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
                (FIRST if sid == "dec-01" else SECOND) + timedelta(hours=4)
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
    await trainer.CreateSession(_session("dec-01", FIRST))
    await trainer.CreateSession(_session("dec-08", SECOND))

    # Before any training, every agent is due the client's required course.
    due = await leader.ListDue(pb.ListDueRequest(team=f"teams/{TEAM}", as_of_time=_ts(FIRST)))
    assert {(d.agent, d.reason) for d in due.due} == {
        (f"agents/{a}", pb.DUE_REASON_REQUIRED) for a in AGENTS
    }

    # HR enrolls the whole team: three seats, then the waitlist in order.
    enrolled = await hr.EnrollAgents(
        pb.EnrollAgentsRequest(
            session="sessions/dec-01",
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
            name="sessions/dec-01/enrollments/ravi", idempotency_key="ravi-out"
        )
    )
    roster = (await hr.GetSession(pb.GetSessionRequest(name="sessions/dec-01"))).roster
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
            name="sessions/dec-01/enrollments/neha", idempotency_key="neha-out"
        )
    )
    second = await hr.EnrollAgents(
        pb.EnrollAgentsRequest(
            session="sessions/dec-08",
            agents=["agents/neha", "agents/ravi"],
            idempotency_key="enroll-dec-08",
        )
    )
    assert {e.state for e in second.enrollments} == {pb.ENROLLMENT_STATE_ENROLLED}

    # Check-in, then completions: Meera fails; everyone else passes.
    await trainer.StartSession(
        pb.StartSessionRequest(name="sessions/dec-01", idempotency_key="go1")
    )
    await trainer.StartSession(
        pb.StartSessionRequest(name="sessions/dec-08", idempotency_key="go8")
    )
    for sid, agent, minutes, score in [
        ("dec-01", "asha", 240, 92),
        ("dec-01", "meera", 180, 55),
        ("dec-01", "kiran", 240, 81),
        ("dec-08", "neha", 240, 77),
        ("dec-08", "ravi", 210, 70),
    ]:
        await trainer.RecordCompletion(_done(sid, agent, minutes, score))

    asha = await system.training_as("asha", "agent").GetTranscript(
        pb.GetTranscriptRequest(name="agents/asha/transcript", as_of_time=_ts(FIRST))
    )
    assert [(c.course, c.session, c.passed, c.attended_minutes) for c in asha.completions] == [
        ("courses/acme-fibre", "sessions/dec-01", True, 240)
    ]
    assert asha.completions[0].session_start_agent_local.local_time == "2026-12-01T09:30:00+05:30"
    assert [(p.period, p.training_minutes, p.technical_minutes) for p in asha.periods] == [
        ("2026-12", 240, 240)
    ]
    assert asha.totals.technical_trainings_completed == 1
    assert [(c.competency, c.level, c.evidence_session) for c in asha.competencies] == [
        ("fibre-support", pb.COMPETENCY_LEVEL_COMPETENT, "sessions/dec-01")
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
        lambda: leader.ListDue(pb.ListDueRequest(team=f"teams/{TEAM}", as_of_time=_ts(FIRST))),
        lambda r: len(r.due) == 1,
    )
    assert [(d.agent, d.reason) for d in now_due.due] == [("agents/meera", pb.DUE_REASON_REQUIRED)]
    later = FIRST + timedelta(days=340)
    renewals = await hr.ListDue(  # by client: every team serving it (HR, not a team leader)
        pb.ListDueRequest(client="acme-telecom", within_days=30, as_of_time=_ts(later))
    )
    assert {(d.agent, d.reason) for d in renewals.due} == {
        ("agents/asha", pb.DUE_REASON_EXPIRING),
        ("agents/kiran", pb.DUE_REASON_EXPIRING),
        ("agents/meera", pb.DUE_REASON_REQUIRED),
    }  # neha and ravi passed a week later: not yet within 30 days

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
