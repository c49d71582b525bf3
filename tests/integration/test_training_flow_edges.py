"""Edges of the training flows that span two aggregates (learner, then session), over gRPC
against the real servers: retries, compensation, moves, cancellation and check-in, with the
read views (session, calendar, transcript, due list, team summary) agreeing after each step."""

from __future__ import annotations

import json
from datetime import timedelta

import grpc
import pytest
from wfm.training.v1 import training_service_pb2 as pb
from wfm.training.v1 import training_service_pb2_grpc as training_grpc

from services.training import main as training_main
from tests.conftest import System
from tests.integration.test_fuzz import stored_events
from tests.integration.test_training_api import (
    START,
    _snapshot,
    _staff,
    course,
    enroll,
    rules,
    session,
)
from tests.integration.test_training_chaos import learner_truth
from tests.integration.test_training_manage import move_session
from tests.replicas import hold_projections, start_replica, training_replicas
from tests.training_helpers import starting_soon
from wfm_runtime.service import control_subject
from wfm_runtime.testing import eventually
from wfm_runtime.timefmt import to_timestamp

pytestmark = pytest.mark.integration
W = pb.ENROLLMENT_STATE_WAITLISTED
E = pb.ENROLLMENT_STATE_ENROLLED
X = pb.ENROLLMENT_STATE_WITHDRAWN


async def bookings(system: System, agent: str) -> list[str]:
    transcript = await system.train.GetTranscript(
        pb.GetTranscriptRequest(name=f"agents/{agent}/transcript")
    )
    return [b.session for b in transcript.bookings]


async def settled_bookings(system: System, agent: str, expected: list[str]) -> list[str]:
    return await eventually(lambda: bookings(system, agent), lambda held: held == expected)


async def test_a_reused_key_with_other_agents_keeps_the_first_requests_bookings(
    system: System,
) -> None:
    """The key of a done enrollment sent again naming other agents is refused; the agents the
    first request seated keep their time booked, and the new one is left with none."""
    await _staff(system, "night", ["k1", "k2", "k3"])
    await system.train.CreateCourse(course())
    await system.train.CreateCourse(course("copper-101", title="Copper"))
    await system.train.CreateSession(session("s1", capacity=5))
    await system.train.EnrollAgents(enroll("s1", "k1", "k2", key="team"))

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.EnrollAgents(enroll("s1", "k1", "k3", key="team"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    assert await settled_bookings(system, "k1", ["sessions/s1"]) == ["sessions/s1"]
    assert await settled_bookings(system, "k3", []) == []
    # k1 is still on s1 at that time: another class then clashes with it.
    await system.train.CreateSession(session("same-time", "copper-101", START, capacity=5))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.EnrollAgents(enroll("same-time", "k1"))
    assert rules(err.value) == ["OVERLAP"]


async def test_a_batch_with_one_refused_agent_books_nobody_even_on_retry(
    system: System,
) -> None:
    """All or nothing: one agent of another client's team refuses the whole batch, the others'
    bookings are undone, and a retry with the same key is refused the same way."""
    await _staff(system, "night", ["r1", "r2"])
    await _staff(system, "other", ["r3"], client="globex")
    await system.train.CreateCourse(
        course(category=pb.COURSE_CATEGORY_CLIENT_SPECIFIC, client="acme")
    )
    await system.train.CreateSession(session("s1", capacity=5))
    request = enroll("s1", "r1", "r3", "r2", key="batch")
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await system.train.EnrollAgents(request)
        assert rules(err.value) == ["CLIENT"]
    for agent in ("r1", "r2", "r3"):
        assert await settled_bookings(system, agent, []) == []
    got = await system.train.GetSession(pb.GetSessionRequest(name="sessions/s1"))
    assert list(got.roster) == [] and got.seats_taken == 0


async def test_a_full_session_refused_leaves_no_booking_behind(system: System) -> None:
    await _staff(system, "night", ["f1", "f2"])
    await system.train.CreateCourse(course())
    await system.train.CreateCourse(course("copper-101", title="Copper"))
    await system.train.CreateSession(session("s1", capacity=1))
    await system.train.EnrollAgents(enroll("s1", "f1"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.EnrollAgents(enroll("s1", "f2", refuse_if_full=True))
    assert rules(err.value) == ["SESSION_FULL"]
    assert await settled_bookings(system, "f2", []) == []
    await system.train.CreateSession(session("same-time", "copper-101", START))
    ok = await system.train.EnrollAgents(enroll("same-time", "f2"))
    assert [e.state for e in ok.enrollments] == [E]


async def test_a_move_takes_the_waitlisted_along_and_a_clashing_move_changes_nothing(
    system: System,
) -> None:
    await _staff(system, "night", ["m1", "m2", "m3"])
    await system.train.CreateCourse(course())
    await system.train.CreateCourse(course("copper-101", title="Copper"))
    await system.train.CreateSession(session("s1", capacity=1))
    await system.train.EnrollAgents(enroll("s1", "m1", "m2"))  # m2 waitlisted
    next_day = START + timedelta(days=1)
    moved = await system.train.UpdateSession(move_session("s1", "move", next_day))
    assert [e.state for e in moved.roster] == [E, W]
    # m2's waitlist place moved too: the copper class next day clashes, the old slot is free.
    await system.train.CreateSession(session("cu-next", "copper-101", next_day, capacity=5))
    await system.train.CreateSession(session("cu-old", "copper-101", START, capacity=5))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.EnrollAgents(enroll("cu-next", "m2"))
    assert rules(err.value) == ["OVERLAP"]
    await system.train.EnrollAgents(enroll("cu-old", "m2", "m3"))

    # Moving s1 back onto m2's copper class is refused and changes nothing.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.UpdateSession(move_session("s1", "back", START))
    assert rules(err.value) == ["OVERLAP"]
    got = await system.train.GetSession(pb.GetSessionRequest(name="sessions/s1"))
    assert got.version == moved.version and got.start_time == moved.start_time
    transcript = await system.train.GetTranscript(
        pb.GetTranscriptRequest(name="agents/m2/transcript")
    )
    assert {b.session: b.start_time for b in transcript.bookings} == {
        "sessions/s1": to_timestamp(next_day),
        "sessions/cu-old": to_timestamp(START),
    }


async def test_check_in_results_then_cancel_keep_every_view_in_agreement(
    system: System,
) -> None:
    """Check-in withdraws the waitlisted, results go in for one, then the class is cancelled:
    the rest are released, the result stays, and every view (and a rebuilt one) agrees."""
    await _staff(system, "night", ["c1", "c2", "c3"])
    await system.train.CreateCourse(course(required_for_clients=["acme"]))
    start = starting_soon()
    await system.train.CreateSession(session("now", start=start, capacity=2))
    await system.train.EnrollAgents(enroll("now", "c1", "c2", "c3"))
    await system.train.StartSession(
        pb.StartSessionRequest(name="sessions/now", idempotency_key="go")
    )
    await system.train.RecordCompletions(
        pb.RecordCompletionsRequest(
            session="sessions/now",
            completions=[
                pb.CompletionEntry(
                    agent="agents/c1",
                    completion=pb.Completion(attended_minutes=200, score=90, passed=True),
                )
            ],
            idempotency_key="results",
        )
    )
    cancelled = await system.train.CancelSession(
        pb.CancelSessionRequest(name="sessions/now", reason="fire alarm", idempotency_key="x")
    )
    assert [e.state for e in cancelled.roster] == [pb.ENROLLMENT_STATE_COMPLETED, X, X]
    for agent in ("c1", "c2", "c3"):
        assert await settled_bookings(system, agent, []) == []

    async def due() -> list[tuple[str, str]]:
        found = await system.train.ListDue(pb.ListDueRequest(team="teams/night"))
        return [(i.agent, i.booked_session) for i in found.due]

    assert await eventually(due, lambda found: found == [("agents/c2", ""), ("agents/c3", "")]) == [
        ("agents/c2", ""),
        ("agents/c3", ""),
    ]
    transcript = await system.train.GetTranscript(
        pb.GetTranscriptRequest(name="agents/c1/transcript")
    )
    assert [c.session for c in transcript.completions] == ["sessions/now"]
    summary = await eventually(
        lambda: system.train.GetTeamTrainingSummary(
            pb.GetTeamTrainingSummaryRequest(name="teams/night/trainingSummary")
        ),
        lambda s: s.completions == 1,
    )
    assert (summary.passed, summary.failed, summary.training_minutes) == (1, 0, 200)
    listed = await eventually(
        lambda: system.train.ListSessions(pb.ListSessionsRequest(state=pb.SESSION_STATE_CANCELLED)),
        lambda page: len(page.sessions) == 1,
    )
    (calendar,) = listed.sessions
    assert (calendar.seats_taken, calendar.waitlist_length) == (1, 0)
    assert calendar == await system.train.GetSession(pb.GetSessionRequest(name="sessions/now"))

    for runner in system.training.runtime.projectors:
        await runner.wait_caught_up()
    before = await _snapshot(system)
    reply = await system.training.runtime.bus.nc.request(
        control_subject("training", "rebuild-views", system.namespace), b"", timeout=60
    )
    assert json.loads(reply.data)["ok"] is True
    assert await _snapshot(system) == before


async def test_a_late_retry_of_a_done_batch_answers_its_first_result_and_keeps_bookings(
    system: System,
) -> None:
    """HR's client retries a batch that went through, after one agent withdrew and booked the
    next class of the course: the retry answers the first result (the agent's new booking
    would refuse it as DOUBLE_ENROLLMENT), and the others keep the time booked."""
    await _staff(system, "night", ["l1", "l2"])
    await system.train.CreateCourse(course())
    await system.train.CreateSession(session("s1", capacity=5))
    await system.train.CreateSession(session("s2", start=START + timedelta(days=7)))
    request = enroll("s1", "l1", "l2", key="hr-batch")
    first = await system.train.EnrollAgents(request)
    await system.train.WithdrawEnrollment(
        pb.WithdrawEnrollmentRequest(name="sessions/s1/enrollments/l1", idempotency_key="w")
    )
    await system.train.EnrollAgents(enroll("s2", "l1"))

    assert await system.train.EnrollAgents(request) == first
    assert await settled_bookings(system, "l2", ["sessions/s1"]) == ["sessions/s1"]
    assert await settled_bookings(system, "l1", ["sessions/s2"]) == ["sessions/s2"]


async def test_an_enrollment_into_a_started_class_leaves_no_booking(system: System) -> None:
    await _staff(system, "night", ["t1", "t2"])
    await system.train.CreateCourse(course())
    await system.train.CreateSession(session("now", start=starting_soon()))
    await system.train.EnrollAgents(enroll("now", "t1"))
    await system.train.StartSession(
        pb.StartSessionRequest(name="sessions/now", idempotency_key="go")
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.EnrollAgents(enroll("now", "t2"))
    assert rules(err.value) == ["SESSION_STARTED"]
    assert await settled_bookings(system, "t2", []) == []
    assert await settled_bookings(system, "t1", ["sessions/now"]) == ["sessions/now"]


async def test_a_refused_retry_of_a_done_enrollment_writes_nothing(system: System) -> None:
    """The key of a done enrollment sent again with another session_version is a different
    request (INVALID_ARGUMENT). Its learner step found the agent booked by that key already and
    changed nothing; it spent a key of its own for it all the same (a record no retry could
    ever use), so the refusal left a document in the store."""
    await _staff(system, "night", ["o1"])
    await system.train.CreateCourse(course())
    await system.train.CreateSession(session("s1", capacity=5))
    await system.train.EnrollAgents(enroll("s1", "o1", key="once"))
    before = await stored_events(system.training)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.EnrollAgents(enroll("s1", "o1", key="once", session_version=999))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await stored_events(system.training) == before


async def test_an_enrollment_on_a_stale_copy_of_a_moved_session_leaves_the_booking_moved(
    system: System,
) -> None:
    """A replica's copy of s1 predates its move (EnrollAgents decides on that copy without a
    read). Enrolling the agent again there finds their booking, already at the session's new
    time: it must not put it back at the old time. The session step refuses SESSION_MOVED,
    the booking goes back to the request that seated the agent, at the session's time."""
    await _staff(system, "night", ["m1"])
    await system.train.CreateCourse(course())
    await system.train.CreateSession(session("s1", capacity=5))
    replicas = await training_replicas(system)
    try:
        other = replicas[1]
        await other.EnrollAgents(enroll("s1", "m1", key="first"))  # the replica's copy: START
        later = START + timedelta(hours=6)
        await system.train.UpdateSession(move_session("s1", "move", later))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await other.EnrollAgents(enroll("s1", "m1", key="again"))
        assert rules(err.value) == ["SESSION_MOVED"]
    finally:
        await replicas.stop_second()

    learner = await learner_truth(system, "m1")
    [booking] = learner.bookings
    assert (booking.start, booking.end) == (later, later + timedelta(hours=4))
    assert booking.enrollment_key == "first"


async def test_a_move_checks_clashes_on_bookings_another_replica_made_before_the_views_show_them(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent holds s1 through this replica (its copy of the learner), then a place on s2
    at another time through the other replica, which neither the views (held here) nor this
    replica's copy know yet. Moving s1 onto s2's time must still be refused OVERLAP: the move
    checks each learner as its events say. It was judged on the copy and the view, and went
    through, leaving the agent in two places at once."""
    await _staff(system, "night", ["v1"])
    await system.train.CreateCourse(course())
    await system.train.CreateCourse(course("copper-101", title="Copper"))
    later = START + timedelta(hours=6)
    await system.train.CreateSession(session("s1", capacity=5))
    await system.train.CreateSession(session("s2", "copper-101", start=later, capacity=5))
    second = await start_replica(system, training_main, "training", "hr-2", "hr")
    release = hold_projections([system.training.runtime, second.service.runtime], monkeypatch)
    try:
        await system.train.EnrollAgents(enroll("s1", "v1", key="here"))
        other = training_grpc.TrainingServiceStub(second.channel)
        await other.EnrollAgents(enroll("s2", "v1", key="there"))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await system.train.UpdateSession(move_session("s1", "onto-s2", later))
        assert rules(err.value) == ["OVERLAP"]
    finally:
        release.set()
        await second.stop()
    learner = await learner_truth(system, "v1")
    assert sorted((b.session_id, b.start) for b in learner.bookings) == [
        ("s1", START),
        ("s2", later),
    ]
