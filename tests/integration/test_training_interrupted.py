"""EnrollAgents cut off between its steps (learners booked, the session not yet seating them),
over gRPC against the real servers: the caller's deadline cancels the call while the session
step is held at a seam, as a crash or a store outage there would leave it. A retry with the same
key finishes it; without one, the reconciler frees the agent after the grace period and never
touches a booking the session holds (docs/training.md, services/training/reconciler.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import grpc
import pytest
from pymongo.errors import AutoReconnect
from wfm.training.v1 import training_service_pb2 as pb

from services.training import flows, reconciler, store, views
from services.training import main as training_main
from tests.conftest import System
from tests.integration.test_training_api import START, _staff, course, enroll, rules, session
from tests.integration.test_training_chaos import learner_truth
from tests.integration.test_training_flow_edges import bookings, settled_bookings
from tests.integration.test_training_manage import move_session
from tests.replicas import training_replicas
from tests.training_helpers import starting_soon
from wfm_runtime import mongo
from wfm_runtime.commands import Command
from wfm_runtime.service import control_subject
from wfm_runtime.testing import eventually
from wfm_runtime.timefmt import utc_now

pytestmark = pytest.mark.integration
E = pb.ENROLLMENT_STATE_ENROLLED
X = pb.ENROLLMENT_STATE_WITHDRAWN
LATER = timedelta(days=1)  # a sweep this far ahead finds every booking past the grace


@contextlib.contextmanager
def held_session_step(key: str) -> Iterator[asyncio.Event]:
    """The session step of the enrollment with `key` waits for the event (the learners have
    booked by then); the reconciler's own use of the key is not held."""
    gate = asyncio.Event()
    original = flows._Refreshing.execute

    async def execute(self: Any, behaviour: Any, command: Command, decide: Any) -> Any:
        if command.aggregate_type == store.SESSION and command.idempotency_key == key:
            await gate.wait()
        return await original(self, behaviour, command, decide)

    with mock.patch.object(flows._Refreshing, "execute", execute):
        yield gate


async def cut_off(system: System, request: pb.EnrollAgentsRequest) -> None:
    """Sends the enrollment with its session step held; the caller's deadline cancels it (the
    server gives up a moment before the deadline: UNAVAILABLE, or the deadline itself)."""
    with held_session_step(request.idempotency_key), pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.EnrollAgents(request, timeout=1.0)
    assert err.value.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)


async def settled_by_sweep(system: System) -> int:
    """A sweep past every grace, once the views it reads first show what it must settle (the
    session's view may still hold the agent a moment after the change: it then skips)."""
    sweep = system.training.reconciler.sweep
    return await eventually(lambda: sweep(utc_now() + LATER), lambda settled: settled > 0)


async def roster(system: System, sid: str) -> list[tuple[str, int]]:
    got = await system.train.GetSession(pb.GetSessionRequest(name=f"sessions/{sid}"))
    return [(e.agent, e.state) for e in got.roster]


async def blocked_from(system: System, sid: str, agent: str, key: str) -> list[str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.EnrollAgents(enroll(sid, agent, key=key))
    return rules(err.value)


async def test_a_cut_off_enrollment_completes_on_retry_and_is_never_released(
    system: System,
) -> None:
    await _staff(system, "night", ["c1", "c2"])
    await system.train.CreateCourse(course())
    await system.train.CreateSession(session("s1", capacity=5))
    request = enroll("s1", "c1", "c2", key="cut")
    await cut_off(system, request)
    # Both booked, nobody seated.
    for agent in ("c1", "c2"):
        assert await settled_bookings(system, agent, ["sessions/s1"]) == ["sessions/s1"]
    assert await roster(system, "s1") == []

    done = await system.train.EnrollAgents(request)
    assert [e.state for e in done.enrollments] == [E, E]
    assert await bookings(system, "c1") == ["sessions/s1"]
    await eventually(lambda: roster(system, "s1"), lambda r: len(r) == 2)
    # The bookings match the session: no sweep, however late, releases them.
    assert await system.training.reconciler.sweep(utc_now() + LATER) == 0
    for agent in ("c1", "c2"):
        assert await bookings(system, agent) == ["sessions/s1"]


async def test_a_cut_off_enrollment_never_retried_leaves_no_agent_blocked(
    system: System,
) -> None:
    await _staff(system, "night", ["n1"])
    await system.train.CreateCourse(course())
    await system.train.CreateCourse(course("copper-101", title="Copper"))
    await system.train.CreateSession(session("s1", capacity=5))
    await system.train.CreateSession(session("s2", start=START + timedelta(days=7)))
    await system.train.CreateSession(session("cu", "copper-101", START))
    request = enroll("s1", "n1", key="lost")
    await cut_off(system, request)
    assert await settled_bookings(system, "n1", ["sessions/s1"]) == ["sessions/s1"]

    # Meanwhile the agent looks booked on s1 without a place on it: the transcript lists the
    # booking, the enrollments none, another class of the course or at that time is refused,
    # and a withdrawal from s1 finds no enrollment to withdraw.
    assert await blocked_from(system, "s2", "n1", "try-s2") == ["DOUBLE_ENROLLMENT"]
    assert await blocked_from(system, "cu", "n1", "try-cu") == ["OVERLAP"]
    listed = await system.train.ListEnrollments(pb.ListEnrollmentsRequest(agent="agents/n1"))
    assert list(listed.enrollments) == []
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.WithdrawEnrollment(
            pb.WithdrawEnrollmentRequest(name="sessions/s1/enrollments/n1", idempotency_key="w-n1")
        )
    assert err.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION)

    # Within the grace period the booking waits for a retry; after it, it is released.
    assert await system.training.reconciler.sweep(utc_now()) == 0
    assert await system.training.reconciler.sweep(utc_now() + reconciler.GRACE) == 1
    assert await settled_bookings(system, "n1", []) == []
    ok = await system.train.EnrollAgents(enroll("s2", "n1", key="next-class"))
    assert [e.state for e in ok.enrollments] == [E]

    # A late retry of the lost request is refused and changes nothing.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.EnrollAgents(request)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert rules(err.value) == ["ENROLLMENT_ABANDONED"]
    assert await roster(system, "s1") == []
    assert await settled_bookings(system, "n1", ["sessions/s2"]) == ["sessions/s2"]


async def test_an_enrollment_still_under_way_when_given_up_keeps_nothing(
    system: System,
) -> None:
    """The grace is a retry's time, not a bet on how long an enrollment takes: one whose session
    step comes after the reconciler spent its key is refused and its bookings go."""
    await _staff(system, "night", ["u1", "u2"])
    await system.train.CreateCourse(course())
    await system.train.CreateSession(session("s1", capacity=5))
    with held_session_step("slow") as gate:
        call = asyncio.ensure_future(
            system.train.EnrollAgents(enroll("s1", "u1", "u2", key="slow"))
        )
        for agent in ("u1", "u2"):
            await settled_bookings(system, agent, ["sessions/s1"])
        assert await system.training.reconciler.sweep(utc_now() + LATER) == 2
        gate.set()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
    assert rules(err.value) == ["ENROLLMENT_ABANDONED"]
    assert await roster(system, "s1") == []
    for agent in ("u1", "u2"):
        assert await settled_bookings(system, agent, []) == []


async def test_an_agent_seated_by_another_request_meanwhile_keeps_the_booking(
    system: System,
) -> None:
    """A second request for the same agent and session relies on the lost request's booking:
    it takes the booking over (with a grace of its own), so a sweep giving the lost one up, as
    read before the take-over, does not free the time of the agent the second is seating."""
    await _staff(system, "night", ["t1"])
    await system.train.CreateCourse(course())
    await system.train.CreateSession(session("s1", capacity=5))
    await cut_off(system, enroll("s1", "t1", key="lost"))
    await settled_bookings(system, "t1", ["sessions/s1"])
    lost = await system.training.store.learner("t1")
    assert lost is not None and lost.bookings[0].enrollment_key == "lost"
    with held_session_step("again") as gate:
        call = asyncio.ensure_future(system.train.EnrollAgents(enroll("s1", "t1", key="again")))
        taken = await eventually(
            lambda: system.training.store.learner("t1"),
            lambda held: held is not None and held.bookings[0].enrollment_key == "again",
        )
        assert taken is not None
        key_time = taken.bookings[0].key_time
        assert (
            key_time is not None and taken.bookings[0].booked_time == lost.bookings[0].booked_time
        )
        # The sweep that read the lost request's booking releases nothing now; the new one's
        # grace runs from its taking over.
        settle = system.training.reconciler.flows.settle_booking
        assert await settle("t1", lost.bookings[0]) is False
        past_lost = key_time + reconciler.GRACE - timedelta(seconds=1)
        assert await system.training.reconciler.sweep(past_lost) == 0
        gate.set()
        done = await call
    assert [e.state for e in done.enrollments] == [E]
    assert await system.training.reconciler.sweep(utc_now() + LATER) == 0
    assert await bookings(system, "t1") == ["sessions/s1"]


async def _left_free(system: System, agent: str) -> None:
    """Nothing of the refused requests stays: no booking, the agent enrolls at that time in
    another course's class, and a sweep past the grace finds nothing to settle."""
    assert await settled_bookings(system, agent, []) == []
    await system.train.CreateSession(session("cu", "copper-101", START))
    ok = await system.train.EnrollAgents(enroll("cu", agent, key="copper"))
    assert [e.state for e in ok.enrollments] == [E]
    assert await system.training.reconciler.sweep(utc_now() + LATER) == 0


async def test_two_refused_requests_for_one_agent_leave_no_booking_behind(
    system: System,
) -> None:
    """Two requests enroll t1 in a full session at once: the second takes the first's booking
    over; the first is refused and its undo finds the booking taken over (the second may yet
    seat t1), then the second is refused and hands the booking back to the first, whose undo
    is over. Both were refused, so nothing may stay (before, the booking stayed with the first
    request until the reconciler's grace ran out: t1 was refused every other class of the
    course, and every class at that time, for 15 minutes). Found by test_training_chaos.py."""
    await _staff(system, "night", ["f1", "t1"])
    await system.train.CreateCourse(course())
    await system.train.CreateCourse(course("copper-101", title="Copper"))
    await system.train.CreateSession(session("s1", capacity=1))
    await system.train.EnrollAgents(enroll("s1", "f1"))

    async def held_by(key: str) -> None:
        await eventually(
            lambda: system.training.store.learner("t1"),
            lambda held: held is not None and held.bookings[0].enrollment_key == key,
        )

    with held_session_step("first") as first_gate, held_session_step("second") as second_gate:
        first = asyncio.ensure_future(
            system.train.EnrollAgents(enroll("s1", "t1", key="first", refuse_if_full=True))
        )
        await held_by("first")
        second = asyncio.ensure_future(
            system.train.EnrollAgents(enroll("s1", "t1", key="second", refuse_if_full=True))
        )
        await held_by("second")
        first_gate.set()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await first
        assert rules(err.value) == ["SESSION_FULL"]
        second_gate.set()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await second
        assert rules(err.value) == ["SESSION_FULL"]
    await _left_free(system, "t1")


async def test_three_refused_requests_taking_one_booking_over_in_turn_leave_nothing(
    system: System,
) -> None:
    """Three requests enroll t1 in a full session at once, each taking the booking over from
    the one before. The first is refused (its undo finds the booking taken: it leaves a mark),
    then the second (its hand-back to the first finds the booking taken by the third), then the
    third, which hands the booking back to the second, whose refusal is over. All three were
    refused, so nothing may stay (before, the booking stayed with the second request until the
    reconciler's grace ran out). Found by test_training_chaos.py (seed 3)."""
    await _staff(system, "night", ["f1", "t1"])
    await system.train.CreateCourse(course())
    await system.train.CreateCourse(course("copper-101", title="Copper"))
    await system.train.CreateSession(session("s1", capacity=1))
    await system.train.EnrollAgents(enroll("s1", "f1"))

    async def held_by(key: str) -> None:
        await eventually(
            lambda: learner_truth(system, "t1"),
            lambda held: bool(held.bookings) and held.bookings[0].enrollment_key == key,
        )

    keys = ["first", "second", "third"]
    with (
        held_session_step("first") as first_gate,
        held_session_step("second") as second_gate,
        held_session_step("third") as third_gate,
    ):
        calls = []
        for key in keys:
            calls.append(
                asyncio.ensure_future(
                    system.train.EnrollAgents(enroll("s1", "t1", key=key, refuse_if_full=True))
                )
            )
            await held_by(key)
        for gate, call in zip([first_gate, second_gate, third_gate], calls, strict=True):
            gate.set()
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            assert rules(err.value) == ["SESSION_FULL"]
    assert (await learner_truth(system, "t1")).bookings == ()
    await _left_free(system, "t1")


async def test_a_withdrawal_cut_off_before_its_release_is_released_by_the_sweep(
    system: System,
) -> None:
    await _staff(system, "night", ["w1"])
    await system.train.CreateCourse(course())
    await system.train.CreateSession(session("s1", capacity=5))
    await system.train.CreateSession(session("s2", start=START + timedelta(days=7)))
    await system.train.EnrollAgents(enroll("s1", "w1"))

    async def store_away(*args: Any, **kwargs: Any) -> None:
        raise AutoReconnect("the store went away")

    with mock.patch.object(flows.Flows, "release", store_away), pytest.raises(grpc.aio.AioRpcError):
        await system.train.WithdrawEnrollment(
            pb.WithdrawEnrollmentRequest(name="sessions/s1/enrollments/w1", idempotency_key="w-w1")
        )
    await eventually(lambda: roster(system, "s1"), lambda r: r == [("agents/w1", X)])
    assert await bookings(system, "w1") == ["sessions/s1"]
    assert await blocked_from(system, "s2", "w1", "try-s2") == ["DOUBLE_ENROLLMENT"]

    assert await settled_by_sweep(system) == 1
    assert await settled_bookings(system, "w1", []) == []
    ok = await system.train.EnrollAgents(enroll("s2", "w1"))
    assert [e.state for e in ok.enrollments] == [E]


async def test_a_restarted_service_releases_what_a_lost_enrollment_left(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reconciler runs on start-up: a replica started after the loss (here with no grace)
    frees the agent without anyone calling it."""
    await _staff(system, "night", ["r1"])
    await system.train.CreateCourse(course())
    await system.train.CreateSession(session("s1", capacity=5))
    await cut_off(system, enroll("s1", "r1", key="lost"))
    await settled_bookings(system, "r1", ["sessions/s1"])

    monkeypatch.setattr(reconciler, "GRACE", timedelta(0))
    replica = await training_main.start(system.settings_for("training"), port=0)
    try:
        assert await settled_bookings(system, "r1", []) == []
    finally:
        await replica.stop()


async def test_a_result_cut_off_before_the_learners_record_is_recorded_by_the_sweep(
    system: System,
) -> None:
    """The session took the pass, the learner step never ran: the transcript lacked the course,
    its hours and competency. The sweep records it from the session's copy; a retry of the
    request afterwards answers its first result and records nothing twice."""
    await _staff(system, "night", ["p1"])
    await system.train.CreateCourse(course())
    await system.train.CreateSession(session("s1", start=starting_soon(), capacity=5))
    await system.train.EnrollAgents(enroll("s1", "p1"))
    await system.train.StartSession(
        pb.StartSessionRequest(name="sessions/s1", idempotency_key="go")
    )
    result = pb.RecordCompletionRequest(
        name="sessions/s1/enrollments/p1",
        completion=pb.Completion(attended_minutes=200, score=88, passed=True),
        idempotency_key="pass-p1",
    )

    async def store_away(*args: Any, **kwargs: Any) -> None:
        raise AutoReconnect("the store went away")

    away = mock.patch.object(flows.Flows, "record_completion", store_away)
    with away, pytest.raises(grpc.aio.AioRpcError):
        await system.train.RecordCompletion(result)

    async def transcript() -> pb.Transcript:
        return await system.train.GetTranscript(
            pb.GetTranscriptRequest(name="agents/p1/transcript")
        )

    assert not (await transcript()).completions
    assert await bookings(system, "p1") == ["sessions/s1"]

    assert await settled_by_sweep(system) == 1
    done = await eventually(transcript, lambda t: len(t.completions) == 1)
    completion = done.completions[0]
    assert (completion.score, completion.passed, completion.attended_minutes) == (88, True, 200)
    assert [c.competency for c in done.competencies] == ["fibre"]
    assert list(done.bookings) == []
    assert await system.training.reconciler.sweep(utc_now() + LATER) == 0

    again = await system.train.RecordCompletion(result)
    assert again.state == pb.ENROLLMENT_STATE_COMPLETED
    assert len((await transcript()).completions) == 1


async def test_a_cut_off_enrollment_on_a_session_with_the_agents_result_is_released(
    system: System,
) -> None:
    """An agent who failed s1 is enrolled on s1 again by mistake, cut off between the steps (the
    session would refuse ALREADY_LEFT): the booking is not a result to record (the learner has
    it), so the sweep releases it and the agent can retake the course on another session."""
    await _staff(system, "night", ["f1"])
    await system.train.CreateCourse(course())
    await system.train.CreateSession(session("s1", start=starting_soon(), capacity=5))
    await system.train.CreateSession(session("s2", start=START + timedelta(days=7)))
    await system.train.EnrollAgents(enroll("s1", "f1"))
    await system.train.StartSession(
        pb.StartSessionRequest(name="sessions/s1", idempotency_key="go")
    )
    await system.train.RecordCompletion(
        pb.RecordCompletionRequest(
            name="sessions/s1/enrollments/f1",
            completion=pb.Completion(attended_minutes=200, score=20, passed=False),
            idempotency_key="fail-f1",
        )
    )
    assert await settled_bookings(system, "f1", []) == []

    await cut_off(system, enroll("s1", "f1", key="again"))
    assert await settled_bookings(system, "f1", ["sessions/s1"]) == ["sessions/s1"]

    assert await settled_by_sweep(system) == 1
    assert await settled_bookings(system, "f1", []) == []
    ok = await system.train.EnrollAgents(enroll("s2", "f1", key="retake"))
    assert [e.state for e in ok.enrollments] == [E]
    transcript = await system.train.GetTranscript(
        pb.GetTranscriptRequest(name="agents/f1/transcript")
    )
    assert len(transcript.completions) == 1


async def test_a_late_retry_of_a_done_enrollment_hands_back_the_booking_it_took_over(
    system: System,
) -> None:
    """The agent withdrew from s1; a new request for them on s1 has booked and is on its way
    to the session (which will refuse ALREADY_LEFT). A late retry of the enrollment that seated
    them answers its first result, and the booking it took over on the way goes back to the new
    request: that request's refusal then releases it and changes nothing."""
    await _staff(system, "night", ["x1"])
    await system.train.CreateCourse(course())
    await system.train.CreateSession(session("s1", capacity=5))
    await system.train.CreateSession(session("s2", start=START + timedelta(days=7)))
    first = enroll("s1", "x1", key="first")
    await system.train.EnrollAgents(first)
    await system.train.WithdrawEnrollment(
        pb.WithdrawEnrollmentRequest(name="sessions/s1/enrollments/x1", idempotency_key="w-x1")
    )
    assert await settled_bookings(system, "x1", []) == []

    with held_session_step("mistake") as gate:
        call = asyncio.ensure_future(system.train.EnrollAgents(enroll("s1", "x1", key="mistake")))
        await settled_bookings(system, "x1", ["sessions/s1"])
        again = await system.train.EnrollAgents(first)
        assert [e.agent for e in again.enrollments] == ["agents/x1"]
        gate.set()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
    assert rules(err.value) == ["ALREADY_LEFT"]
    assert await settled_bookings(system, "x1", []) == []
    ok = await system.train.EnrollAgents(enroll("s2", "x1", key="next-class"))
    assert [e.state for e in ok.enrollments] == [E]


async def test_a_retried_enrollment_books_the_session_where_it_moved_meanwhile(
    system: System,
) -> None:
    """Cut off before the session seated m1, then the session moved a day (UpdateSession moves
    only its roster's bookings): the retry seats m1 and moves the booking along, so the old
    time is free and the new one taken (before, a class at the new time was accepted)."""
    await _staff(system, "night", ["m1"])
    await system.train.CreateCourse(course())
    await system.train.CreateCourse(course("copper-101", title="Copper"))
    await system.train.CreateSession(session("s1", capacity=5))
    request = enroll("s1", "m1", key="moving")
    await cut_off(system, request)
    await settled_bookings(system, "m1", ["sessions/s1"])
    moved_start = START + timedelta(days=1)
    await system.train.UpdateSession(move_session("s1", "move-s1", moved_start))
    done = await system.train.EnrollAgents(request)
    assert [e.state for e in done.enrollments] == [E]

    await system.train.CreateSession(session("cu-new", "copper-101", moved_start))
    assert await blocked_from(system, "cu-new", "m1", "try-new") == ["OVERLAP"]
    await system.train.CreateSession(session("cu-old", "copper-101", START))
    ok = await system.train.EnrollAgents(enroll("cu-old", "m1", key="try-old"))
    assert [e.state for e in ok.enrollments] == [E]


async def test_the_sweep_reads_only_learners_holding_a_booking(system: System) -> None:
    """The sweep reads `learners` by the indexed `booked`: a learner whose booking went is not
    read, while one holding a booking is, and so is a document written before `booked` was kept
    (here o1's, the field removed) until its next event rewrites it. Both cut-off bookings are
    still settled, and the sweep then reads nobody but the seated agent. A rebuild of the views
    (`make rebuild-views`) writes `booked` into every document again."""
    await _staff(system, "night", ["seated", "gone", "n1", "o1"])
    await system.train.CreateCourse(course())
    await system.train.CreateSession(session("s1", capacity=5))
    await system.train.EnrollAgents(enroll("s1", "seated", "gone"))
    await system.train.WithdrawEnrollment(
        pb.WithdrawEnrollmentRequest(name="sessions/s1/enrollments/gone", idempotency_key="w-g")
    )
    await cut_off(system, enroll("s1", "n1", "o1", key="lost"))
    learners = system.training.views.learners

    async def booked() -> dict[str, Any]:
        return {doc["_id"]: doc.get("booked") for doc in await mongo.find_all(learners, {})}

    held = {"seated": True, "gone": False, "n1": True, "o1": True}
    await eventually(booked, lambda got: got == held)
    await learners.update_one({"_id": "o1"}, {"$unset": {"booked": ""}})
    assert await booked() == {**held, "o1": None}
    assert "booked" in await learners.index_information()

    async def read_by_sweep() -> list[str]:
        return sorted(doc["_id"] for doc in await mongo.find_all(learners, views.BOOKED))

    assert await read_by_sweep() == ["n1", "o1", "seated"]
    with_bookings = await system.training.views.learners_with_bookings()
    assert sorted(lr.agent_id for lr in with_bookings) == ["n1", "o1", "seated"]

    assert await system.training.reconciler.sweep(utc_now() + LATER) == 2
    for agent in ("n1", "o1"):
        assert await settled_bookings(system, agent, []) == []
    await eventually(booked, lambda got: got == {**held, "n1": False, "o1": False})
    assert await read_by_sweep() == ["seated"]
    assert await system.training.reconciler.sweep(utc_now() + LATER) == 0
    assert await bookings(system, "seated") == ["sessions/s1"]

    await learners.update_many({}, {"$unset": {"booked": ""}})
    reply = await system.training.runtime.bus.nc.request(
        control_subject("training", "rebuild-views", system.namespace), b"", timeout=60
    )
    assert json.loads(reply.data)["ok"] is True
    await eventually(booked, lambda got: got == {**held, "n1": False, "o1": False})
    assert await read_by_sweep() == ["seated"]


@pytest.mark.parametrize("batch", [False, True], ids=["RecordCompletion", "RecordCompletions"])
async def test_a_retried_result_records_the_sessions_result_not_the_retrys_clock(
    system: System, batch: bool
) -> None:
    """A result sent without completion_time (the service's now) is cut off before its learner
    step; the retry, a moment later, replays the session's result: the record on the learner
    is that result (its completion time), not one dated by the retry's own clock."""
    await _staff(system, "night", ["q1"])
    await system.train.CreateCourse(course())
    await system.train.CreateSession(session("s1", start=starting_soon(), capacity=5))
    await system.train.EnrollAgents(enroll("s1", "q1"))
    await system.train.StartSession(
        pb.StartSessionRequest(name="sessions/s1", idempotency_key="go")
    )
    result = pb.Completion(score=88, passed=True)  # no completion_time: now
    send: Any
    if batch:
        request: Any = pb.RecordCompletionsRequest(
            session="sessions/s1",
            completions=[pb.CompletionEntry(agent="agents/q1", completion=result)],
            idempotency_key="pass-q1",
        )
        send = system.train.RecordCompletions
    else:
        request = pb.RecordCompletionRequest(
            name="sessions/s1/enrollments/q1", completion=result, idempotency_key="pass-q1"
        )
        send = system.train.RecordCompletion

    async def store_away(*args: Any, **kwargs: Any) -> None:
        raise AutoReconnect("the store went away")

    away = mock.patch.object(flows.Flows, "record_completion", store_away)
    with away, pytest.raises(grpc.aio.AioRpcError):
        await send(request)
    await asyncio.sleep(0.05)  # the retry's clock is later than the first attempt's
    await send(request)

    on_session = (await system.training.store.session_now("s1")).enrollment("q1")
    assert on_session is not None and on_session.completion is not None
    [record] = (await learner_truth(system, "q1")).completions
    assert record.completion_time == on_session.completion.completion_time
    assert (record.attended_minutes, record.score, record.passed) == (240, 88, True)


async def test_two_attempts_of_one_enrollment_at_once_keep_the_booking_that_seated(
    system: System,
) -> None:
    """An enrollment sent twice at once (a retry racing the first attempt): the first books
    the agent and waits before its session step; the second finds that booking (its own
    request's), seats the agent and answers. The first's session step then replays the
    request: the booking it made is the one the agent is seated on and stays (before, it was
    released as a late retry's new booking: the agent was seated with no time booked, free to
    take a class at the same time). Found by test_training_chaos.py (seed 5)."""
    await _staff(system, "night", ["r1"])
    await system.train.CreateCourse(course())
    await system.train.CreateSession(session("s1", capacity=5))
    request = enroll("s1", "r1", key="twice")
    gate = asyncio.Event()
    held: list[bool] = []
    original = flows._Refreshing.execute

    async def execute(self: Any, behaviour: Any, command: Command, decide: Any) -> Any:
        mine = command.aggregate_type == store.SESSION and command.idempotency_key == "twice"
        if mine and not held:  # only the first attempt waits
            held.append(True)
            await gate.wait()
        return await original(self, behaviour, command, decide)

    with mock.patch.object(flows._Refreshing, "execute", execute):
        first = asyncio.ensure_future(system.train.EnrollAgents(request))
        await eventually(lambda: learner_truth(system, "r1"), lambda held: bool(held.bookings))
        second = await system.train.EnrollAgents(request)
        assert [e.state for e in second.enrollments] == [E]
        gate.set()
        assert await first == second
    assert [b.session_id for b in (await learner_truth(system, "r1")).bookings] == ["s1"]
    assert await settled_bookings(system, "r1", ["sessions/s1"]) == ["sessions/s1"]


async def test_a_hand_back_leaves_alone_a_booking_another_attempt_made_anew(
    system: System,
) -> None:
    """t1 is seated by "first". "again" enrolls t1 once more on replica 0: it takes the booking
    over and waits before its session step; t1 withdraws (the booking is released); a retry
    of "again" on replica 1 books t1 anew under the same key and waits too. The first attempt
    is refused (ALREADY_LEFT) and hands back the booking it took over: the booking under its
    key now is the retry's new one, not the one it took, and must stay the retry's, whose undo
    then releases it. Before, the hand-back gave the retry's booking to "first" (the key was
    all it checked), the retry's undo found it another request's, and t1 stayed booked on a
    session that does not hold them until the reconciler's grace ran out. Found by
    test_training_chaos.py (seed 2109426187)."""
    await _staff(system, "night", ["t1"])
    await system.train.CreateCourse(course())
    await system.train.CreateCourse(course("copper-101", title="Copper"))
    await system.train.CreateSession(session("s1", capacity=5))
    await system.train.EnrollAgents(enroll("s1", "t1", key="first"))
    gates = [asyncio.Event(), asyncio.Event()]
    arrived: list[asyncio.Event] = []
    original = flows._Refreshing.execute

    async def execute(self: Any, behaviour: Any, command: Command, decide: Any) -> Any:
        if command.aggregate_type == store.SESSION and command.idempotency_key == "again":
            gate = gates[len(arrived)]  # each attempt's session step waits for its own gate
            arrived.append(gate)
            await gate.wait()
        return await original(self, behaviour, command, decide)

    async def booked_by(key: str, *, anew: bool) -> None:
        await eventually(
            lambda: learner_truth(system, "t1"),
            lambda held: (
                bool(held.bookings)
                and held.bookings[0].enrollment_key == key
                and (held.bookings[0].key_time is None) == anew
            ),
        )

    replicas = await training_replicas(system)
    try:
        with mock.patch.object(flows._Refreshing, "execute", execute):
            took_over = asyncio.ensure_future(
                replicas[0].EnrollAgents(enroll("s1", "t1", key="again"))
            )
            await booked_by("again", anew=False)
            await system.train.WithdrawEnrollment(
                pb.WithdrawEnrollmentRequest(name="sessions/s1/enrollments/t1", idempotency_key="w")
            )
            assert (await learner_truth(system, "t1")).bookings == ()
            retry = asyncio.ensure_future(replicas[1].EnrollAgents(enroll("s1", "t1", key="again")))
            await booked_by("again", anew=True)
            for gate, call in zip(gates, [took_over, retry], strict=True):
                gate.set()
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await call
                assert rules(err.value) == ["ALREADY_LEFT"]
    finally:
        await replicas.stop_second()
    assert (await learner_truth(system, "t1")).bookings == ()
    await _left_free(system, "t1")


class _TwoAttempts:
    """Two attempts of one enrollment (key "k") of r1 in s1, full with f1: the first on replica
    0, the second on replica 1. `gated` names the steps that wait for their gate: the first
    attempt's session step ("first-seat"), its undo's release ("undo"), the second attempt's
    session step ("second-seat"). `reached[step]` is set when a step arrives at its gate."""

    def __init__(self, *gated: str) -> None:
        self.gates = {step: asyncio.Event() for step in gated}
        self.reached = {step: asyncio.Event() for step in gated}
        self._sessions = 0
        self._original = flows._Refreshing.execute

    def step(self, command: Command) -> str:
        key = command.idempotency_key
        if key.startswith("k/undo/r1/"):
            return "undo"
        if command.aggregate_type == store.SESSION and key == "k":
            self._sessions += 1
            return "first-seat" if self._sessions == 1 else "second-seat"
        return ""

    async def execute(self, runner: Any, behaviour: Any, command: Command, decide: Any) -> Any:
        step = self.step(command)
        if step in self.gates and not self.reached[step].is_set():
            self.reached[step].set()
            await self.gates[step].wait()
        return await self._original(runner, behaviour, command, decide)

    def patched(self) -> Any:
        attempts = self

        async def execute(runner: Any, behaviour: Any, command: Command, decide: Any) -> Any:
            return await attempts.execute(runner, behaviour, command, decide)

        return mock.patch.object(flows._Refreshing, "execute", execute)

    async def at(self, step: str) -> None:
        await asyncio.wait_for(self.reached[step].wait(), 10)

    def open(self, step: str) -> None:
        self.gates[step].set()


@contextlib.asynccontextmanager
async def _two_attempts(system: System, *gated: str) -> AsyncIterator[tuple[_TwoAttempts, Any]]:
    """The gates of `gated` steps, and both training replicas, for one test's two attempts."""
    attempts = _TwoAttempts(*gated)
    replicas = await training_replicas(system)
    try:
        with attempts.patched():
            yield attempts, replicas
    finally:
        await replicas.stop_second()


async def _full_session(system: System) -> pb.EnrollAgentsRequest:
    """s1 with its one seat taken by f1; the enrollment of r1 the two attempts send."""
    await _staff(system, "night", ["r1", "f1"])
    await system.train.CreateCourse(course())
    await system.train.CreateCourse(course("copper-101", title="Copper"))
    await system.train.CreateSession(session("s1", capacity=1))
    await system.train.EnrollAgents(enroll("s1", "f1", key="fill"))
    return enroll("s1", "r1", key="k", refuse_if_full=True)


async def _free_the_seat(system: System) -> None:
    await system.train.WithdrawEnrollment(
        pb.WithdrawEnrollmentRequest(name="sessions/s1/enrollments/f1", idempotency_key="w")
    )


async def _refused(call: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert rules(err.value) == ["SESSION_FULL"]


async def _keeps_the_seat_and_its_time(system: System, seated: pb.EnrollAgentsResponse) -> None:
    assert [e.state for e in seated.enrollments] == [E]
    on_roster = await eventually(lambda: roster(system, "s1"), lambda r: ("agents/r1", E) in r)
    assert ("agents/r1", E) in on_roster
    [kept] = (await learner_truth(system, "r1")).bookings
    assert (kept.session_id, kept.enrollment_key) == ("s1", "k")
    assert await settled_bookings(system, "r1", ["sessions/s1"]) == ["sessions/s1"]
    assert await system.training.reconciler.sweep(utc_now() + LATER) == 0
    with pytest.raises(grpc.aio.AioRpcError) as clash:  # its time is taken
        await system.train.CreateSession(session("cu", "copper-101", START))
        await system.train.EnrollAgents(enroll("cu", "r1", key="copper"))
    assert rules(clash.value) == ["OVERLAP"]


async def _both_at_their_gates(
    system: System,
    attempts: _TwoAttempts,
    replicas: Any,
    request: pb.EnrollAgentsRequest,
    *,
    free_seat: bool,
) -> tuple[asyncio.Future[Any], asyncio.Future[Any]]:
    """The first attempt refused, its undo waiting; then (after a seat freed, if `free_seat`)
    the second past its learner step, which took the booking over, its session step waiting."""
    first = asyncio.ensure_future(replicas[0].EnrollAgents(request))
    await attempts.at("undo")
    if free_seat:
        await _free_the_seat(system)
    second = asyncio.ensure_future(replicas[1].EnrollAgents(request))
    await attempts.at("second-seat")
    return first, second


async def _second_seats_while_first_undoes(system: System, *, undo_first: bool) -> None:
    """The first attempt is refused and its undo waits; a seat frees; the second attempt takes
    the booking over from the first and seats r1 (undo_first: the undo lands after the
    second's learner step and before its seating; else after the seating). Either way r1 keeps
    the booking, and the second attempt holds it."""
    request = await _full_session(system)
    async with _two_attempts(system, "undo", "second-seat") as (attempts, replicas):
        first, second = await _both_at_their_gates(
            system, attempts, replicas, request, free_seat=True
        )
        if undo_first:
            attempts.open("undo")
            await _refused(first)
            attempts.open("second-seat")
            seated = await second
        else:
            attempts.open("second-seat")
            seated = await second
            attempts.open("undo")
            await _refused(first)
    await _keeps_the_seat_and_its_time(system, seated)
    [kept] = (await learner_truth(system, "r1")).bookings
    assert kept.key_time is not None  # the second attempt's


async def test_an_undo_after_another_attempt_seated_the_agent_leaves_their_booking(
    system: System,
) -> None:
    """The second attempt seats r1 on the booking it found; then the refused first attempt's
    undo comes. Before, the undo released the booking (its key was all it checked, and it had
    read the session before the seating): r1 was seated with no time booked, free to take
    another class then, and nothing settled it. Now the second attempt took the booking over
    (its key time), and the undo releases only the booking as the first made it."""
    await _second_seats_while_first_undoes(system, undo_first=False)


async def test_an_undo_before_another_attempt_seats_the_agent_leaves_the_booking_it_took(
    system: System,
) -> None:
    """The second attempt takes the booking over (its learner step) and waits before seating
    r1; the refused first attempt's undo comes meanwhile, having read the session before the
    seating. Before, it released the booking and r1 was then seated with none. Now the undo
    finds the booking taken over by the second attempt and leaves it."""
    await _second_seats_while_first_undoes(system, undo_first=True)


async def test_a_refused_retry_hands_back_the_booking_its_first_attempt_seats_the_agent_on(
    system: System,
) -> None:
    """The first attempt books r1 and waits before its session step; a retry takes the booking
    over and is refused (still full); then a seat frees and the first attempt seats r1. Before,
    the retry's undo released the booking (same key), and r1 was seated with none. Now the
    retry hands it back to the first attempt, as it would to another request."""
    request = await _full_session(system)
    async with _two_attempts(system, "first-seat") as (attempts, replicas):
        first = asyncio.ensure_future(replicas[0].EnrollAgents(request))
        await attempts.at("first-seat")
        await _refused(replicas[1].EnrollAgents(request))
        await _free_the_seat(system)
        attempts.open("first-seat")
        seated = await first
    await _keeps_the_seat_and_its_time(system, seated)


async def test_two_refused_attempts_leave_no_booking_when_the_undo_finds_the_retrys_take_over(
    system: System,
) -> None:
    """The first attempt is refused; the retry takes the booking over and waits before its
    session step; the first's undo finds it taken and leaves it, marking that it gave it up;
    the retry is refused too and hands the booking back to the first attempt, whose mark sends
    it on to a release. Without that mark (the undo leaving a booking another attempt of its
    request holds without a word), the booking went back to the first attempt after its undo
    was over and stayed until the reconciler's grace ran out: a first version of this change
    did so in a longer chain through another request, found by test_training_chaos.py (seed
    3499814014)."""
    request = await _full_session(system)
    async with _two_attempts(system, "undo", "second-seat") as (attempts, replicas):
        first, second = await _both_at_their_gates(
            system, attempts, replicas, request, free_seat=False
        )
        attempts.open("undo")
        await _refused(first)
        attempts.open("second-seat")
        await _refused(second)
    assert (await learner_truth(system, "r1")).bookings == ()
    await _left_free(system, "r1")
