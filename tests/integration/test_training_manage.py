"""Managing what exists over gRPC against the real servers: UpdateCourse, UpdateSession
(move, resize: growing promotes the waitlist, shrinking below the seats taken is refused) and
CancelSession (everyone withdrawn with the reason, their time freed, events published)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from nats.aio.msg import Msg
from wfm.training.v1 import training_service_pb2 as pb

from tests.conftest import System
from tests.integration.test_training_api import START, _staff, course, enroll, rules, session
from tests.training_helpers import starting_soon
from wfm_runtime.testing import eventually
from wfm_runtime.timefmt import to_timestamp

pytestmark = pytest.mark.integration
W = pb.ENROLLMENT_STATE_WAITLISTED
E = pb.ENROLLMENT_STATE_ENROLLED
X = pb.ENROLLMENT_STATE_WITHDRAWN


def update_session(sid: str, key: str, *paths: str, **fields: object) -> pb.UpdateSessionRequest:
    return pb.UpdateSessionRequest(
        session=pb.Session(name=f"sessions/{sid}", **fields),  # type: ignore[arg-type]
        update_mask=FieldMask(paths=list(paths)),
        idempotency_key=key,
    )


def move_session(sid: str, key: str, start: datetime, hours: int = 4) -> pb.UpdateSessionRequest:
    """A move of the session to `start`, lasting `hours`."""
    return update_session(
        sid,
        key,
        "start_time",
        "end_time",
        start_time=to_timestamp(start),
        end_time=to_timestamp(start + timedelta(hours=hours)),
    )


def states(s: pb.Session) -> list[tuple[str, int]]:
    return [(e.agent.removeprefix("agents/"), e.state) for e in s.roster]


async def test_update_course_changes_the_masked_fields_with_its_version(system: System) -> None:
    created = await system.train.CreateCourse(course())
    request = pb.UpdateCourseRequest(
        course=pb.Course(
            name="courses/fibre-101", title="Fibre essentials", credit_minutes=300, version=1
        ),
        update_mask=FieldMask(paths=["title", "credit_minutes"]),
        idempotency_key="u1",
    )
    updated = await system.train.UpdateCourse(request)
    assert (updated.title, updated.credit_minutes, updated.version) == ("Fibre essentials", 300, 2)
    assert updated.competency == created.competency  # outside the mask: kept
    assert await system.train.UpdateCourse(request) == updated  # a retry
    got = await system.train.GetCourse(pb.GetCourseRequest(name="courses/fibre-101"))
    assert got == updated

    stale = pb.UpdateCourseRequest()
    stale.CopyFrom(request)
    stale.idempotency_key = "u2"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.UpdateCourse(stale)  # version 1 is gone
    assert err.value.code() == grpc.StatusCode.ABORTED

    bad = [
        pb.UpdateCourseRequest(course=pb.Course(name="courses/fibre-101"), idempotency_key="b1"),
        pb.UpdateCourseRequest(
            course=pb.Course(name="courses/fibre-101"),
            update_mask=FieldMask(paths=["name"]),
            idempotency_key="b2",
        ),
        pb.UpdateCourseRequest(
            course=pb.Course(name="courses/fibre-101", category=pb.COURSE_CATEGORY_CLIENT_SPECIFIC),
            update_mask=FieldMask(paths=["category"]),  # no client named
            idempotency_key="b3",
        ),
    ]
    for request in bad:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await system.train.UpdateCourse(request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, request
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.UpdateCourse(
            pb.UpdateCourseRequest(
                course=pb.Course(name="courses/nope", title="x"),
                update_mask=FieldMask(paths=["title"]),
                idempotency_key="b4",
            )
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    unchanged = await system.train.GetCourse(pb.GetCourseRequest(name="courses/fibre-101"))
    assert unchanged == updated


async def test_resize_promotes_in_order_and_never_below_the_seats_taken(system: System) -> None:
    await _staff(system, "night", ["a1", "a2", "a3", "a4"])
    await system.train.CreateCourse(course())
    await system.train.CreateSession(session("s1", capacity=1))
    await system.train.EnrollAgents(enroll("s1", "a1", "a2", "a3", "a4"))

    grown = await system.train.UpdateSession(update_session("s1", "g", "capacity", capacity=3))
    assert states(grown) == [("a1", E), ("a2", E), ("a3", E), ("a4", W)]
    assert grown.version == 3
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.UpdateSession(update_session("s1", "shrink", "capacity", capacity=2))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert rules(err.value) == ["CAPACITY"]
    got = await eventually(  # (a refusal drops this process's copy: the view catches up)
        lambda: system.train.GetSession(pb.GetSessionRequest(name="sessions/s1")),
        lambda s: s.version == 3,
    )
    assert got.capacity == 3


async def test_a_move_takes_the_bookings_along_and_refuses_a_clash(system: System) -> None:
    await _staff(system, "night", ["m1", "m2"])
    await system.train.CreateCourse(course())
    await system.train.CreateCourse(course("copper-101", title="Copper"))
    await system.train.CreateSession(session("s1"))
    await system.train.CreateSession(session("later", "copper-101", START + timedelta(days=1)))
    await system.train.EnrollAgents(enroll("s1", "m1"))
    await system.train.EnrollAgents(enroll("later", "m2"))

    next_day = START + timedelta(days=1)
    moved = await system.train.UpdateSession(move_session("s1", "move", next_day))
    assert moved.start_local.local_time == "2026-12-02T10:00:00+05:30"
    # m1's time moved with the session: the copper session now clashes, the old slot is free.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.EnrollAgents(enroll("later", "m1"))
    assert rules(err.value) == ["OVERLAP"]
    await system.train.CreateSession(session("old-slot", "copper-101", START, capacity=5))
    ok = await system.train.EnrollAgents(enroll("old-slot", "m1"))
    assert [e.state for e in ok.enrollments] == [E]

    # Moving the old slot's session onto the next day would put m1 in two places at once.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.UpdateSession(
            update_session(
                "old-slot",
                "clash",
                "start_time",
                "end_time",
                start_time=to_timestamp(next_day + timedelta(hours=1)),
                end_time=to_timestamp(next_day + timedelta(hours=2)),
            )
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert rules(err.value) == ["OVERLAP"]


async def test_cancel_withdraws_everyone_with_the_reason_frees_time_and_publishes(
    system: System,
) -> None:
    await _staff(system, "night", ["c1", "c2", "c3"])
    await system.train.CreateCourse(course())
    await system.train.CreateSession(session("s1"))
    await system.train.CreateSession(session("twin", capacity=5))  # same course, same time
    await system.train.EnrollAgents(enroll("s1", "c1", "c2", "c3"))
    seen: list[str] = []
    nc = system.training.runtime.bus.nc

    async def heard(message: Msg) -> None:
        seen.append(message.subject)

    sub = await nc.subscribe(f"{system.namespace}.training.>", cb=heard)

    request = pb.CancelSessionRequest(
        name="sessions/s1", reason="trainer ill", idempotency_key="cancel"
    )
    cancelled = await system.train.CancelSession(request)
    assert cancelled.state == pb.SESSION_STATE_CANCELLED
    assert cancelled.cancel_reason == "trainer ill"
    assert [(e.state, e.withdraw_reason) for e in cancelled.roster] == [(X, "trainer ill")] * 3
    assert await system.train.CancelSession(request) == cancelled  # a retry

    again = pb.CancelSessionRequest(name="sessions/s1", reason="twice", idempotency_key="c2")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.CancelSession(again)
    assert rules(err.value) == ["SESSION_CANCELLED"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.EnrollAgents(enroll("s1", "c1", key="late"))
    assert rules(err.value) == ["SESSION_CANCELLED"]
    # Their time is free: the same course at the same time takes all three.
    twin = await system.train.EnrollAgents(enroll("twin", "c1", "c2", "c3"))
    assert [e.state for e in twin.enrollments] == [E] * 3

    published = await eventually(
        lambda: asyncio.sleep(0, list(seen)),
        lambda subjects: sum(".BookingReleased." in s for s in subjects) >= 3,
    )
    assert any(".SessionCancelled.s1" in s for s in published)
    await sub.unsubscribe()
    listed = await eventually(
        lambda: system.train.ListEnrollments(
            pb.ListEnrollmentsRequest(session="sessions/s1", state=X)
        ),
        lambda page: len(page.enrollments) == 3,
    )
    assert {e.withdraw_reason for e in listed.enrollments} == {"trainer ill"}


async def test_a_retry_of_a_move_answers_its_first_result_after_the_session_started(
    system: System,
) -> None:
    """UpdateSession's clash check ran before the idempotent session step, so a retry of a
    move that went through was refused SESSION_STARTED once the class had started (found by
    test_training_chaos.py): a retry returns the first result."""
    await system.train.CreateCourse(course())
    await system.train.CreateSession(session("s1", start=starting_soon()))
    later = starting_soon(30)
    move = move_session("s1", "move", later)
    moved = await system.train.UpdateSession(move)
    await system.train.StartSession(
        pb.StartSessionRequest(name="sessions/s1", idempotency_key="go")
    )
    assert await system.train.UpdateSession(move) == moved
