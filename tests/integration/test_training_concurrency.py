"""The last seat under concurrency, against the real servers and two training replicas.

Both replicas share one database, so their in-process locks and caches do not help: only the
session's unique (aggregate, version) event insert decides who gets the seat.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from wfm.training.v1 import training_service_pb2 as pb
from wfm.training.v1 import training_service_pb2_grpc as training_grpc

from services.training import store
from tests.conftest import System
from tests.integration.test_training_api import course, rules, session
from tests.replicas import TrainingReplicas as Replicas
from tests.replicas import training_replicas
from wfm_runtime.testing import eventually

pytestmark = pytest.mark.integration

CONTENDERS = 24


@pytest.fixture
async def replicas(system: System) -> AsyncIterator[Replicas]:
    stubs = await training_replicas(system, [f"c{i:02d}" for i in range(CONTENDERS)])
    try:
        yield stubs
    finally:
        await stubs.stop_second()


async def _race(
    stubs: list[training_grpc.TrainingServiceStub], session_id: str, refuse_if_full: bool
) -> list[pb.EnrollAgentsResponse | grpc.aio.AioRpcError]:
    async def one(i: int) -> pb.EnrollAgentsResponse | grpc.aio.AioRpcError:
        try:
            return await stubs[i % 2].EnrollAgents(
                pb.EnrollAgentsRequest(
                    session=f"sessions/{session_id}",
                    agents=[f"agents/c{i:02d}"],
                    refuse_if_full=refuse_if_full,
                    idempotency_key=f"race-{session_id}-{i}",
                )
            )
        except grpc.aio.AioRpcError as err:
            return err

    return await asyncio.gather(*(one(i) for i in range(CONTENDERS)))


async def _settled(system: System, session_id: str, roster: int) -> pb.Session:
    """The session as its events say (a replica's reads may lag the other replica's writes)."""
    truth = await system.training.store.session_now(session_id)
    assert len(truth.roster) == roster
    return store.session_to_proto(truth)


async def test_last_seat_goes_to_exactly_one(system: System, replicas: Replicas) -> None:
    await system.train.CreateCourse(course())
    await system.train.CreateSession(session("last", capacity=1))
    results = await _race(replicas, "last", refuse_if_full=True)

    won = [r for r in results if isinstance(r, pb.EnrollAgentsResponse)]
    lost = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(won) == 1, [
        r.details() for r in lost if r.code() != grpc.StatusCode.FAILED_PRECONDITION
    ]
    assert won[0].enrollments[0].state == pb.ENROLLMENT_STATE_ENROLLED
    assert {r.code() for r in lost} == {grpc.StatusCode.FAILED_PRECONDITION}
    assert all(rules(r) == ["SESSION_FULL"] for r in lost)
    final = await _settled(system, "last", 1)
    assert final.seats_taken == 1 and len(final.roster) == 1
    winner = final.roster[0].agent.removeprefix("agents/")

    # The losers' bookings were released: they can take another session at the same time.
    other = session("same-time", capacity=CONTENDERS)
    other.session.course = "courses/soft-1"
    await system.train.CreateCourse(course("soft-1", technical=False))
    await system.train.CreateSession(other)
    losers = [f"agents/c{i:02d}" for i in range(CONTENDERS) if f"c{i:02d}" != winner]
    moved = await system.train.EnrollAgents(
        pb.EnrollAgentsRequest(session="sessions/same-time", agents=losers, idempotency_key="mv")
    )
    assert len(moved.enrollments) == CONTENDERS - 1
    with pytest.raises(grpc.aio.AioRpcError) as clash:
        await system.train.EnrollAgents(
            pb.EnrollAgentsRequest(
                session="sessions/same-time", agents=[f"agents/{winner}"], idempotency_key="w"
            )
        )
    assert rules(clash.value) == ["OVERLAP"]


async def test_concurrent_enrollments_waitlist_in_one_order(
    system: System, replicas: Replicas
) -> None:
    await system.train.CreateCourse(course())
    start = datetime(2027, 1, 5, 4, 30, tzinfo=UTC) + timedelta(days=1)
    await system.train.CreateSession(session("busy", start=start, capacity=1))
    results = await _race(replicas, "busy", refuse_if_full=False)
    assert all(isinstance(r, pb.EnrollAgentsResponse) for r in results), results

    final = await _settled(system, "busy", CONTENDERS)
    states = [e.state for e in final.roster]
    assert states.count(pb.ENROLLMENT_STATE_ENROLLED) == 1
    assert states.count(pb.ENROLLMENT_STATE_WAITLISTED) == CONTENDERS - 1
    assert sorted(e.waitlist_position for e in final.roster if e.waitlist_position) == list(
        range(1, CONTENDERS)
    )
    # Rebuilt from the stream by one projector, the views show the same roster. (While two
    # replicas split one durable consumer their projectors may interleave: docs/training.md.)
    await replicas.stop_second()
    await system.training.runtime.rebuild_views()
    listed = await eventually(
        lambda: system.train.ListEnrollments(
            pb.ListEnrollmentsRequest(session="sessions/busy", page_size=100)
        ),
        lambda page: len(page.enrollments) == CONTENDERS,
    )
    assert sum(e.state == pb.ENROLLMENT_STATE_ENROLLED for e in listed.enrollments) == 1
