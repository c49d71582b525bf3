"""TrainingService over gRPC against the real servers: writes, reads, bad input, roles."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from wfm.training.v1 import training_service_pb2 as pb

from tests.conftest import System
from tests.training_helpers import starting_soon
from wfm_runtime.service import control_subject
from wfm_runtime.testing import eventually, unpack_details
from wfm_runtime.timefmt import to_timestamp, utc_now

pytestmark = pytest.mark.integration

START = datetime(2026, 12, 1, 4, 30, tzinfo=UTC)  # 10:00 in Kolkata
KOLKATA = ZoneInfo("Asia/Kolkata")


def course(code: str = "fibre-101", **fields: Any) -> pb.CreateCourseRequest:
    spec: dict[str, Any] = {
        "title": "Fibre basics",
        "category": pb.COURSE_CATEGORY_TECHNICAL,
        "credit_minutes": 240,
        "technical": True,
        "competency": "fibre",
        "competency_level": pb.COMPETENCY_LEVEL_FOUNDATION,
        "validity_days": 365,
        **fields,
    }
    return pb.CreateCourseRequest(
        course_id=code,
        course=pb.Course(**spec),
        idempotency_key=f"c-{code}",
    )


def session(
    sid: str, code: str = "fibre-101", start: datetime = START, capacity: int = 2
) -> pb.CreateSessionRequest:
    return pb.CreateSessionRequest(
        session_id=sid,
        session=pb.Session(
            course=f"courses/{code}",
            start_time=to_timestamp(start),
            end_time=to_timestamp(start + timedelta(hours=4)),
            time_zone="Asia/Kolkata",
            trainer="Ravi",
            capacity=capacity,
            delivery=pb.DELIVERY_CLASSROOM,
        ),
        idempotency_key=f"s-{sid}",
    )


def enroll(sid: str, *agents: str, key: str = "", **fields: Any) -> pb.EnrollAgentsRequest:
    return pb.EnrollAgentsRequest(
        session=f"sessions/{sid}",
        agents=[f"agents/{a}" for a in agents],
        idempotency_key=key or f"e-{sid}-{'-'.join(agents)}",
        **fields,
    )


def rules(err: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(err)
    assert status is not None
    found = []
    for detail in unpack_details(status):
        found += [v.type for v in getattr(detail, "violations", [])]
        found += [v.field for v in getattr(detail, "field_violations", [])]
    return found


def violations(err: grpc.aio.AioRpcError) -> list[tuple[str, str, str]]:
    """The PreconditionFailure's (type, subject, description) in the google.rpc details."""
    status = rpc_status.from_call(err)
    assert status is not None
    return [
        (v.type, v.subject, v.description)
        for detail in unpack_details(status)
        if isinstance(detail, error_details_pb2.PreconditionFailure)
        for v in detail.violations
    ]


def _utc(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _staff(system: System, team: str, agents: list[str], client: str = "acme") -> None:
    await system.add_team(team, client=client)
    for agent in agents:
        await system.add_agent(agent, team)
    for agent in agents:
        await system.known_to_training(agent)


async def test_enroll_waitlist_withdraw_promote_and_complete(system: System) -> None:
    await _staff(system, "night", ["a1", "a2", "a3"])
    await system.train.CreateCourse(course())
    start = starting_soon()  # the class is checked in below: check-in is open now
    local = start.astimezone(KOLKATA)  # the agents' zone too
    created = await system.train.CreateSession(session("s1", start=start))
    assert created.start_local.local_time == local.isoformat()
    assert created.start_local.local_time.endswith(":00+05:30")

    reply = await system.train.EnrollAgents(enroll("s1", "a1", "a2", "a3"))
    states = {e.agent: (e.state, e.waitlist_position) for e in reply.enrollments}
    assert states == {
        "agents/a1": (pb.ENROLLMENT_STATE_ENROLLED, 0),
        "agents/a2": (pb.ENROLLMENT_STATE_ENROLLED, 0),
        "agents/a3": (pb.ENROLLMENT_STATE_WAITLISTED, 1),
    }
    again = await system.train.EnrollAgents(enroll("s1", "a1", "a2", "a3"))  # a retry
    assert again == reply

    withdrawn = await system.train.WithdrawEnrollment(
        pb.WithdrawEnrollmentRequest(name="sessions/s1/enrollments/a2", idempotency_key="w1")
    )
    assert withdrawn.state == pb.ENROLLMENT_STATE_WITHDRAWN
    got = await system.train.GetSession(pb.GetSessionRequest(name="sessions/s1"))
    assert [(e.agent, e.state) for e in got.roster] == [
        ("agents/a1", pb.ENROLLMENT_STATE_ENROLLED),
        ("agents/a2", pb.ENROLLMENT_STATE_WITHDRAWN),
        ("agents/a3", pb.ENROLLMENT_STATE_ENROLLED),
    ]

    with pytest.raises(grpc.aio.AioRpcError) as early:
        await system.train.RecordCompletion(_complete("a1", 240, 90, True, "r0"))
    assert early.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert rules(early.value) == ["TRANSITION"]  # enrolled, not yet in progress

    started = await system.train.StartSession(
        pb.StartSessionRequest(name="sessions/s1", idempotency_key="start")
    )
    assert started.state == pb.SESSION_STATE_STARTED
    done = await system.train.RecordCompletion(_complete("a1", 230, 90, True, "r1"))
    assert done.state == pb.ENROLLMENT_STATE_COMPLETED
    failed = await system.train.RecordCompletion(_complete("a3", 200, 20, False, "r3"))
    assert failed.state == pb.ENROLLMENT_STATE_FAILED

    transcript = await system.train.GetTranscript(
        pb.GetTranscriptRequest(name="agents/a1/transcript")
    )
    assert [(p.period, p.training_minutes, p.technical_minutes) for p in transcript.periods] == [
        (f"{local:%Y-%m}", 230, 230)
    ]
    assert transcript.totals.technical_trainings_completed == 1
    assert [(c.competency, c.level) for c in transcript.competencies] == [
        ("fibre", pb.COMPETENCY_LEVEL_FOUNDATION)
    ]
    assert transcript.completions[0].session_start_agent_local.local_time.startswith(
        f"{local:%Y-%m-%dT%H:%M}"
    )

    async def listed() -> list[tuple[str, int]]:
        page = await system.train.ListEnrollments(pb.ListEnrollmentsRequest(session="sessions/s1"))
        return [(e.agent, e.state) for e in page.enrollments]

    await eventually(listed, lambda rows: ("agents/a3", pb.ENROLLMENT_STATE_FAILED) in rows)
    summary = await eventually(
        lambda: system.train.GetTeamTrainingSummary(
            pb.GetTeamTrainingSummaryRequest(name="teams/night/trainingSummary")
        ),
        lambda s: s.completions == 2,
    )
    assert (summary.agents, summary.passed, summary.failed, summary.pass_rate) == (3, 1, 1, 0.5)

    # The views are rebuildable: the same path as `make rebuild-views`, the same documents.
    for runner in system.training.runtime.projectors:
        await runner.wait_caught_up()
    before = await _snapshot(system)
    reply = await system.training.runtime.bus.nc.request(
        control_subject("training", "rebuild-views", system.namespace), b"", timeout=60
    )
    assert json.loads(reply.data)["ok"] is True
    assert await _snapshot(system) == before


async def _snapshot(system: System) -> dict[str, list[dict[str, Any]]]:
    views = system.training.views
    return {
        name: sorted(await getattr(views, name).find({}).to_list(None), key=lambda d: d["_id"])
        for name in ("courses", "sessions", "learners", "agents", "teams")
    }


async def test_check_in_frees_the_waitlisted_to_book_another_session(system: System) -> None:
    """A class of one seat starts with b1 still waiting: her place lapses with a reason, her
    time is freed, and she books the next class of the course (before, DOUBLE_ENROLLMENT)."""
    await _staff(system, "night", ["b0", "b1"])
    await system.train.CreateCourse(course())
    await system.train.CreateSession(session("now", start=starting_soon(), capacity=1))
    await system.train.CreateSession(session("next", start=starting_soon() + timedelta(days=7)))
    await system.train.EnrollAgents(enroll("now", "b0", "b1"))

    started = await system.train.StartSession(
        pb.StartSessionRequest(name="sessions/now", idempotency_key="go")
    )
    waiting = {e.agent: (e.state, e.withdraw_reason) for e in started.roster}["agents/b1"]
    assert waiting[0] == pb.ENROLLMENT_STATE_WITHDRAWN and "waitlist closed" in waiting[1]

    async def bookings() -> list[str]:
        transcript = await system.train.GetTranscript(
            pb.GetTranscriptRequest(name="agents/b1/transcript")
        )
        return [b.session for b in transcript.bookings]

    await eventually(bookings, lambda held: held == [])  # released
    again = await system.train.EnrollAgents(enroll("next", "b1"))
    assert [e.state for e in again.enrollments] == [pb.ENROLLMENT_STATE_ENROLLED]
    assert await eventually(bookings, lambda held: held == ["sessions/next"])


def _complete(
    agent: str, minutes: int, score: int, passed: bool, key: str
) -> pb.RecordCompletionRequest:
    return pb.RecordCompletionRequest(
        name=f"sessions/s1/enrollments/{agent}",
        completion=pb.Completion(attended_minutes=minutes, score=score, passed=passed),
        idempotency_key=key,
    )


async def test_check_in_is_refused_before_it_opens_and_after_the_end(system: System) -> None:
    await _staff(system, "night", ["c1", "c2", "c3", "d1"])
    await system.train.CreateCourse(course())
    now = starting_soon(0)
    later = now + timedelta(hours=3)  # check-in opens in two hours
    over = now - timedelta(days=15)  # four hours long: it ended 14 days 20 hours ago
    await system.train.CreateSession(session("later", start=later))
    await system.train.CreateSession(session("over", start=over))
    await system.train.EnrollAgents(enroll("later", "c1", "c2", "c3"))  # c3 waitlisted
    await system.train.EnrollAgents(enroll("over", "d1"))

    opens = (later - timedelta(hours=1)).astimezone(KOLKATA)
    ended = (over + timedelta(hours=4)).astimezone(KOLKATA)
    for sid, rule, said in [
        (
            "later",
            "CHECK_IN_NOT_OPEN",
            f"check-in opens at {_utc(opens)} ({opens:%Y-%m-%d %H:%M} IST, Asia/Kolkata), "
            "60 minutes before the session starts at",
        ),
        (
            "over",
            "SESSION_ENDED",
            f"the session ended at {_utc(ended)} ({ended:%Y-%m-%d %H:%M} IST, Asia/Kolkata) "
            "and was never started",
        ),
    ]:
        before = await system.train.GetSession(pb.GetSessionRequest(name=f"sessions/{sid}"))
        for _ in range(2):  # a retry (the same key) is refused the same way
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await system.train.StartSession(
                    pb.StartSessionRequest(name=f"sessions/{sid}", idempotency_key=f"go-{sid}")
                )
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            ((kind, subject, description),) = violations(err.value)
            assert (kind, subject) == (rule, f"sessions/{sid}")
            assert description.startswith(said), description
        after = await system.train.GetSession(pb.GetSessionRequest(name=f"sessions/{sid}"))
        assert after == before  # nothing written: same version, same roster
        assert after.state == pb.SESSION_STATE_SCHEDULED
        for runner in system.training.runtime.projectors:  # the view says the same
            await runner.wait_caught_up()
        listed = await system.train.ListEnrollments(
            pb.ListEnrollmentsRequest(session=f"sessions/{sid}")
        )
        assert [(e.agent, e.state) for e in listed.enrollments] == [
            (e.agent, e.state) for e in before.roster
        ]
    rosters = {
        sid: [
            (e.agent, e.state)
            for e in (
                await system.train.GetSession(pb.GetSessionRequest(name=f"sessions/{sid}"))
            ).roster
        ]
        for sid in ("later", "over")
    }
    enrolled, waiting = pb.ENROLLMENT_STATE_ENROLLED, pb.ENROLLMENT_STATE_WAITLISTED
    assert rosters == {
        "later": [("agents/c1", enrolled), ("agents/c2", enrolled), ("agents/c3", waiting)],
        "over": [("agents/d1", enrolled)],
    }


async def test_due_names_the_session_booked_and_the_transcript_lists_bookings(
    system: System,
) -> None:
    await _staff(system, "night", ["b1", "b2"])
    await system.train.CreateCourse(course(required_for_clients=["acme"]))
    start = starting_soon(60 * 24)  # tomorrow
    await system.train.CreateSession(session("s1", start=start))
    await system.train.EnrollAgents(enroll("s1", "b1"))

    async def due() -> list[tuple[str, str]]:
        found = await system.train.ListDue(pb.ListDueRequest(team="teams/night"))
        return [(i.agent, i.booked_session) for i in found.due]

    assert await eventually(
        due, lambda found: found == [("agents/b1", "sessions/s1"), ("agents/b2", "")]
    )
    transcript = await system.train.GetTranscript(
        pb.GetTranscriptRequest(name="agents/b1/transcript")
    )
    (booked,) = transcript.bookings
    assert (booked.session, booked.course) == ("sessions/s1", "courses/fibre-101")
    assert booked.start_time == to_timestamp(start) and not booked.self_paced
    assert booked.start_agent_local.local_time == start.astimezone(KOLKATA).isoformat()
    assert [i.booked_session for i in transcript.due] == ["sessions/s1"]
    await system.train.WithdrawEnrollment(
        pb.WithdrawEnrollmentRequest(name="sessions/s1/enrollments/b1", idempotency_key="w")
    )
    after = await system.train.GetTranscript(pb.GetTranscriptRequest(name="agents/b1/transcript"))
    assert list(after.bookings) == [] and [i.booked_session for i in after.due] == [""]


async def test_due_as_of_a_past_instant_shows_only_the_bookings_made_by_then(
    system: System,
) -> None:
    await _staff(system, "night", ["b1", "b2"])
    await system.train.CreateCourse(course(required_for_clients=["acme"]))
    start = starting_soon(60 * 24)  # tomorrow
    await system.train.CreateSession(session("s1", start=start))
    await system.train.EnrollAgents(enroll("s1", "b1"))
    await asyncio.sleep(0.01)
    between = utc_now()
    await asyncio.sleep(0.01)
    await system.train.EnrollAgents(enroll("s1", "b2"))

    async def due(as_of: datetime | None) -> list[tuple[str, str]]:
        request = pb.ListDueRequest(team="teams/night")
        if as_of is not None:
            request.as_of_time.CopyFrom(to_timestamp(as_of))
        found = await system.train.ListDue(request)
        return [(i.agent, i.booked_session) for i in found.due]

    assert await eventually(
        lambda: due(None),
        lambda found: found == [("agents/b1", "sessions/s1"), ("agents/b2", "sessions/s1")],
    )
    # b2 took the place after `between`: as of then, b2 still had a seat to find.
    assert await due(between) == [("agents/b1", "sessions/s1"), ("agents/b2", "")]
    transcript = await system.train.GetTranscript(
        pb.GetTranscriptRequest(name="agents/b2/transcript", as_of_time=to_timestamp(between))
    )
    assert [i.booked_session for i in transcript.due] == [""]
    assert [b.session for b in transcript.bookings] == ["sessions/s1"]  # held now
    enrolled = await system.train.GetSession(pb.GetSessionRequest(name="sessions/s1"))
    assert [e.enroll_time.ToDatetime(tzinfo=UTC) < between for e in enrolled.roster] == [
        True,
        False,
    ]


async def test_a_class_that_met_is_checked_in_after_the_fact(system: System) -> None:
    """Nobody pressed start while the class ran: its register and results still go in."""
    await _staff(system, "night", ["g1", "g2"])
    await system.train.CreateCourse(course())
    yesterday = starting_soon(0) - timedelta(days=1)
    await system.train.CreateSession(session("met", start=yesterday))
    await system.train.EnrollAgents(enroll("met", "g1", "g2"))
    started = await system.train.StartSession(
        pb.StartSessionRequest(name="sessions/met", idempotency_key="late")
    )
    assert started.state == pb.SESSION_STATE_STARTED
    assert [e.state for e in started.roster] == [pb.ENROLLMENT_STATE_IN_PROGRESS] * 2
    done = await system.train.RecordCompletion(
        pb.RecordCompletionRequest(
            name="sessions/met/enrollments/g1",
            completion=pb.Completion(attended_minutes=240, score=80, passed=True),
            idempotency_key="g1",
        )
    )
    assert done.state == pb.ENROLLMENT_STATE_COMPLETED


async def test_a_replica_that_has_not_seen_the_session_checks_it_in(system: System) -> None:
    # This process forgets its copy of the session and its view loses the document (as when
    # another replica created it a moment ago): check-in, judged on the session's times, is
    # decided on the session's events rather than on an empty copy.
    await _staff(system, "night", ["f1"])
    await system.train.CreateCourse(course())
    await system.train.CreateSession(session("s1", start=starting_soon()))
    await system.train.EnrollAgents(enroll("s1", "f1"))
    for runner in system.training.runtime.projectors:
        await runner.wait_caught_up()
    system.training.runtime.commands.forget("session", "s1")
    await system.training.views.sessions.delete_one({"_id": "s1"})
    started = await system.train.StartSession(
        pb.StartSessionRequest(name="sessions/s1", idempotency_key="go")
    )
    assert started.state == pb.SESSION_STATE_STARTED
    assert [e.state for e in started.roster] == [pb.ENROLLMENT_STATE_IN_PROGRESS]


async def test_cross_session_rules_list_every_broken_rule(system: System) -> None:
    await _staff(system, "night", ["b1", "b2"])
    await _staff(system, "other", ["g1"], client="globex")
    await system.train.CreateCourse(course())
    await system.train.CreateCourse(
        course("fibre-201", prerequisite_courses=["courses/fibre-101"], validity_days=0)
    )
    await system.train.CreateCourse(
        course("acme-1", category=pb.COURSE_CATEGORY_CLIENT_SPECIFIC, client="acme")
    )
    await system.train.CreateSession(session("s1"))
    await system.train.CreateSession(session("s2", start=START + timedelta(hours=2)))
    await system.train.CreateSession(session("adv", "fibre-201", START + timedelta(days=3)))
    await system.train.CreateSession(session("acme", "acme-1", START + timedelta(days=5)))
    await system.train.EnrollAgents(enroll("s1", "b1"))

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.EnrollAgents(enroll("s2", "b1", "b2"))  # same course, same time
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert rules(err.value) == ["DOUBLE_ENROLLMENT"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.EnrollAgents(enroll("adv", "b2", "g1"))
    assert sorted(rules(err.value)) == ["PREREQUISITE", "PREREQUISITE"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.EnrollAgents(enroll("acme", "g1"))
    assert rules(err.value) == ["CLIENT"]
    # All or nothing: b2 was refused with b1 above, so nothing holds b2's time.
    ok = await system.train.EnrollAgents(enroll("s2", "b2"))
    assert ok.enrollments[0].state == pb.ENROLLMENT_STATE_ENROLLED


async def test_bad_input_changes_nothing(system: System) -> None:
    await system.train.CreateCourse(course())
    cases = [
        (
            system.train.CreateCourse,
            pb.CreateCourseRequest(
                course_id="bad id",
                course=pb.Course(category=99, competency_level=42),  # type: ignore[arg-type]
            ),
            {"course_id", "course.title", "course.category", "course.credit_minutes"},
        ),
        (
            system.train.CreateSession,
            pb.CreateSessionRequest(
                session_id="s9",
                session=pb.Session(
                    course="courses/fibre-101",
                    start_time={"seconds": 2**62},  # type: ignore[arg-type]
                    time_zone="Mars/Olympus",
                    capacity=-1,
                ),
                idempotency_key="k",
            ),
            {"session.start_time", "session.time_zone", "session.capacity", "session.delivery"},
        ),
        (
            system.train.EnrollAgents,
            pb.EnrollAgentsRequest(session="sessions/x", agents=["agents/a"] * 10_000),
            {"agents", "idempotency_key"},
        ),
        (
            system.train.CreateCourse,
            pb.CreateCourseRequest(
                course_id="huge",
                course=pb.Course(
                    title="t",
                    category=pb.COURSE_CATEGORY_PRODUCT,
                    credit_minutes=2**31 - 1,
                    validity_days=-(2**31),
                    prerequisite_courses=["courses/x"] * 10_000,
                    required_for_clients=["c"] * 10_000,
                ),
                idempotency_key="k",
            ),
            {
                "course",
                "course.credit_minutes",
                "course.validity_days",
                "course.required_for_clients",
            },
        ),
        (
            system.train.ListEnrollments,
            pb.ListEnrollmentsRequest(page_size=-1, state=77, agent="people/x"),  # type: ignore[arg-type]
            {"page_size", "state", "agent"},
        ),
        (
            system.train.GetTranscript,
            pb.GetTranscriptRequest(name="agents/a1", due_within_days=-5),
            {"name", "due_within_days"},
        ),
        (
            system.train.ListDue,
            pb.ListDueRequest(team="teams/x", client="acme"),
            {"team"},
        ),
        (
            system.train.RecordCompletion,
            pb.RecordCompletionRequest(
                name="sessions/s1/enrollments/", completion=pb.Completion(score=101)
            ),
            {"name", "completion.score", "idempotency_key"},
        ),
        (
            system.train.RecordCompletions,
            pb.RecordCompletionsRequest(
                session="sessions/s1",
                completions=[
                    pb.CompletionEntry(agent="agents/a1", completion=pb.Completion(score=70)),
                    pb.CompletionEntry(
                        agent="agents/a2",
                        completion=pb.Completion(completion_time=Timestamp(seconds=-1, nanos=5)),
                    ),
                ],
                idempotency_key="k",
            ),
            {"completions[1].completion.completion_time"},
        ),
    ]
    for method, request, fields in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await method(request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, request
        assert set(rules(err.value)) >= fields, (request, rules(err.value))
    for name in ("sessions/nope", "courses/nope"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            if name.startswith("sessions"):
                await system.train.GetSession(pb.GetSessionRequest(name=name))
            else:
                await system.train.GetCourse(pb.GetCourseRequest(name=name))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    again = course()
    again.idempotency_key = "another-key"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.CreateCourse(again)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    listed = await eventually(
        lambda: system.train.ListCourses(pb.ListCoursesRequest()), lambda r: len(r.courses) > 0
    )
    assert [c.name for c in listed.courses] == ["courses/fibre-101"]  # nothing else was made


async def test_a_class_results_at_once(system: System) -> None:
    await _staff(system, "night", ["k1", "k2", "k3"])
    await system.train.CreateCourse(course())
    await system.train.CreateSession(session("s1", start=starting_soon(), capacity=3))
    await system.train.EnrollAgents(enroll("s1", "k1", "k2", "k3"))
    await system.train.StartSession(
        pb.StartSessionRequest(name="sessions/s1", idempotency_key="go")
    )

    def entry(agent: str, score: int) -> pb.CompletionEntry:
        return pb.CompletionEntry(
            agent=f"agents/{agent}",
            completion=pb.Completion(attended_minutes=200, score=score, passed=score >= 50),
        )

    with pytest.raises(grpc.aio.AioRpcError) as err:  # k9 is not on the session: nothing is kept
        await system.train.RecordCompletions(
            pb.RecordCompletionsRequest(
                session="sessions/s1",
                completions=[entry("k1", 90), entry("k9", 1)],
                idempotency_key="bad",
            )
        )
    assert rules(err.value) == ["ENROLLED"]
    reply = await system.train.RecordCompletions(
        pb.RecordCompletionsRequest(
            session="sessions/s1",
            completions=[entry("k1", 90), entry("k2", 40), entry("k3", 75)],
            idempotency_key="results",
        )
    )
    assert [e.state for e in reply.enrollments] == [
        pb.ENROLLMENT_STATE_COMPLETED,
        pb.ENROLLMENT_STATE_FAILED,
        pb.ENROLLMENT_STATE_COMPLETED,
    ]
    k2 = await system.train.GetTranscript(pb.GetTranscriptRequest(name="agents/k2/transcript"))
    assert [(c.passed, c.score) for c in k2.completions] == [(False, 40)]

    async def pages(**filters: Any) -> list[str]:
        names, token = [], ""
        while True:
            page = await system.train.ListEnrollments(
                pb.ListEnrollmentsRequest(page_size=2, page_token=token, **filters)
            )
            names += [e.name for e in page.enrollments]
            token = page.next_page_token
            if not token:
                return names

    await eventually(lambda: pages(state=pb.ENROLLMENT_STATE_FAILED), lambda n: len(n) == 1)
    assert await pages(session="sessions/s1") == [
        f"sessions/s1/enrollments/{a}" for a in ("k1", "k2", "k3")
    ]
    assert await pages(agent="agents/k3", course="courses/fibre-101") == [
        "sessions/s1/enrollments/k3"
    ]
    with pytest.raises(grpc.aio.AioRpcError) as err:  # a token is tied to its filter
        first = await system.train.ListEnrollments(
            pb.ListEnrollmentsRequest(page_size=1, session="sessions/s1")
        )
        await system.train.ListEnrollments(
            pb.ListEnrollmentsRequest(page_size=1, page_token=first.next_page_token)
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_stale_session_version_is_aborted(system: System) -> None:
    await _staff(system, "night", ["v1", "v2"])
    await system.train.CreateCourse(course())
    await system.train.CreateSession(session("s1"))
    first = await system.train.EnrollAgents(enroll("s1", "v1", session_version=1))
    assert first.session_version == 2
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.EnrollAgents(enroll("s1", "v2", session_version=1))
    assert err.value.code() == grpc.StatusCode.ABORTED
    ok = await system.train.EnrollAgents(enroll("s1", "v2", key="v2-again", session_version=2))
    assert ok.session_version == 3


async def test_roles_agents_self_enroll_only_where_allowed(system: System) -> None:
    await _staff(system, "night", ["m1", "m2"])
    await system.train.CreateCourse(course())
    await system.train.CreateCourse(course("soft-1", self_enrollment=True, technical=False))
    await system.train.CreateSession(session("s1"))
    await system.train.CreateSession(session("open", "soft-1", START + timedelta(days=1)))
    agent = system.training_as("m1", "agent")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await agent.EnrollAgents(enroll("s1", "m1"))
    assert rules(err.value) == ["SELF_ENROLLMENT"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await agent.EnrollAgents(enroll("open", "m2"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    mine = await agent.EnrollAgents(enroll("open", "m1"))
    assert mine.enrollments[0].state == pb.ENROLLMENT_STATE_ENROLLED
    await agent.GetTranscript(pb.GetTranscriptRequest(name="agents/m1/transcript"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await agent.GetTranscript(pb.GetTranscriptRequest(name="agents/m2/transcript"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    leader = system.training_as("tl-1", "team_leader", teams=("night",))
    await leader.GetTranscript(pb.GetTranscriptRequest(name="agents/m2/transcript"))
    await leader.ListDue(pb.ListDueRequest(team="teams/night"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await leader.ListDue(pb.ListDueRequest(team="teams/day"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await leader.CreateCourse(course("x-1"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_refused_enrollment_retried_after_a_seat_frees_books_the_time_slot(
    system: System,
) -> None:
    await _staff(system, "retry", ["r1", "r2"])
    await system.train.CreateCourse(course())
    await system.train.CreateCourse(course("copper-101", title="Copper basics"))
    await system.train.CreateSession(session("full", capacity=1))
    await system.train.CreateSession(session("clash", "copper-101"))  # the same hours
    await system.train.EnrollAgents(enroll("full", "r1"))
    refused = enroll("full", "r2", key="k-r2", refuse_if_full=True)
    with pytest.raises(grpc.aio.AioRpcError) as full:
        await system.train.EnrollAgents(refused)
    assert rules(full.value) == ["SESSION_FULL"]

    await system.train.WithdrawEnrollment(
        pb.WithdrawEnrollmentRequest(name="sessions/full/enrollments/r1", idempotency_key="w-r1")
    )
    retried = await system.train.EnrollAgents(refused)  # same key, now a seat is free
    assert [e.state for e in retried.enrollments] == [pb.ENROLLMENT_STATE_ENROLLED]
    with pytest.raises(grpc.aio.AioRpcError) as busy:  # the time slot is taken
        await system.train.EnrollAgents(enroll("clash", "r2"))
    assert rules(busy.value) == ["OVERLAP"]

    # A late retry after the agent withdrew answers as before and books nothing.
    await system.train.WithdrawEnrollment(
        pb.WithdrawEnrollmentRequest(name="sessions/full/enrollments/r2", idempotency_key="w-r2")
    )
    assert await system.train.EnrollAgents(refused) == retried
    free = await system.train.EnrollAgents(enroll("clash", "r2"))
    assert [e.state for e in free.enrollments] == [pb.ENROLLMENT_STATE_ENROLLED]
