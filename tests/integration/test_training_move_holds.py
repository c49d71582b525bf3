"""A session's move racing a booking of its new time, over gRPC against the real servers.

A move holds the new time on the learner of everyone on the session before the session moves
(docs/training.md, Flows.update_session). The learner's event insert orders the hold against
any other booking of that time: whichever lands second is refused OVERLAP. Before the holds,
the move's clash check was made on the learners before the session moved, and a booking of
the new time made in that instant slipped past it, leaving the agent in two places at once.
Each test holds one step of the move at a gate and makes the racing booking there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from unittest import mock

import grpc
import pytest
from wfm.training.v1 import training_service_pb2 as pb

from services.training import flows, store
from tests.conftest import System
from tests.integration.test_training_api import START, _staff, course, enroll, rules, session
from tests.integration.test_training_chaos import learner_truth
from tests.integration.test_training_interrupted import LATER
from tests.integration.test_training_manage import move_session
from wfm_runtime.commands import Command
from wfm_runtime.testing import eventually
from wfm_runtime.timefmt import to_timestamp, utc_now

pytestmark = pytest.mark.integration
E = pb.ENROLLMENT_STATE_ENROLLED
NEW_START = START + timedelta(days=1)  # where s1 moves: the time of s2


class _Gate:
    """Holds one step of the move (key "move") until opened: "session", its session step once
    the holds are made (the first one finds nobody holding the new time, flows._Unheld), or a
    learner step by its key's suffix, such as "/hold/a1"."""

    def __init__(self, step: str) -> None:
        self.step = step
        self.reached = asyncio.Event()
        self.opened = asyncio.Event()
        self._session_steps = 0
        self._original = flows._Refreshing.execute

    def _is_step(self, command: Command) -> bool:
        if command.aggregate_type == store.SESSION and command.idempotency_key == "move":
            self._session_steps += 1
            return self.step == "session" and self._session_steps == 2
        return command.idempotency_key.startswith(f"move{self.step}")

    async def execute(self, runner: Any, behaviour: Any, command: Command, decide: Any) -> Any:
        if self._is_step(command) and not self.reached.is_set():
            self.reached.set()
            await self.opened.wait()
        return await self._original(runner, behaviour, command, decide)


@contextlib.asynccontextmanager
async def _gated(step: str) -> AsyncIterator[_Gate]:
    gate = _Gate(step)

    async def execute(runner: Any, behaviour: Any, command: Command, decide: Any) -> Any:
        return await gate.execute(runner, behaviour, command, decide)

    with mock.patch.object(flows._Refreshing, "execute", execute):
        yield gate


def _move_s1() -> pb.UpdateSessionRequest:
    return move_session("s1", "move", NEW_START)


async def _s1_and_s2(system: System, on_s1: list[str]) -> None:
    """s1 (fibre-101) now at START with `on_s1` enrolled; s2 (copper-101) at NEW_START."""
    await _staff(system, "night", [*on_s1, "late"])
    await system.train.CreateCourse(course())
    await system.train.CreateCourse(course("copper-101", title="Copper"))
    await system.train.CreateSession(session("s1", capacity=5))
    await system.train.CreateSession(session("s2", "copper-101", NEW_START, capacity=5))
    await system.train.EnrollAgents(enroll("s1", *on_s1, key="on-s1"))


async def _places(system: System, agent: str) -> list[tuple[str, Any]]:
    """The agent's bookings as its events say (session, start), checked to hold no move."""
    learner = await learner_truth(system, agent)
    assert all(not b.move_holds for b in learner.bookings), learner.bookings
    return sorted((b.session_id, b.start) for b in learner.bookings)


async def _roster(system: System, sid: str) -> list[str]:
    got = await system.train.GetSession(pb.GetSessionRequest(name=f"sessions/{sid}"))
    return [e.agent.removeprefix("agents/") for e in got.roster if e.state == E]


async def test_an_enrollment_at_the_new_time_is_refused_while_the_move_is_under_way(
    system: System,
) -> None:
    """The move holds a1's new time, then waits before the session moves; a1's enrollment on s2
    (at that time) is refused OVERLAP. Before the holds it went through, and the move then put
    a1 in two places at once."""
    await _s1_and_s2(system, ["a1"])
    async with _gated("session") as gate:
        move = asyncio.ensure_future(system.train.UpdateSession(_move_s1()))
        await asyncio.wait_for(gate.reached.wait(), 10)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await system.train.EnrollAgents(enroll("s2", "a1", key="racing"))
        assert rules(err.value) == ["OVERLAP"]
        assert "being moved to" in (err.value.details() or "")
        gate.opened.set()
        moved = await move
    assert moved.start_time == to_timestamp(NEW_START)
    assert await _places(system, "a1") == [("s1", NEW_START)]
    assert await _roster(system, "s2") == []


async def test_another_sessions_move_onto_the_new_time_is_refused_while_the_move_is_under_way(
    system: System,
) -> None:
    """a1 is on s1 and on s3 (another course, two days on). While s1's move to NEW_START holds
    that time on a1, s3's move there is refused OVERLAP (its hold on a1 finds s1's) and holds
    nothing; s1 then moves, and s3 stays where it was."""
    await _s1_and_s2(system, ["a1"])
    await system.train.CreateCourse(course("voice-101", title="Voice"))
    two_days_on = START + timedelta(days=2)
    await system.train.CreateSession(session("s3", "voice-101", two_days_on, capacity=5))
    await system.train.EnrollAgents(enroll("s3", "a1", key="on-s3"))
    async with _gated("session") as gate:
        move = asyncio.ensure_future(system.train.UpdateSession(_move_s1()))
        await asyncio.wait_for(gate.reached.wait(), 10)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await system.train.UpdateSession(move_session("s3", "s3-onto", NEW_START))
        assert rules(err.value) == ["OVERLAP"]
        gate.opened.set()
        await move
    assert await _places(system, "a1") == [("s1", NEW_START), ("s3", two_days_on)]


async def test_a_move_is_refused_when_its_new_time_was_booked_after_its_check(
    system: System,
) -> None:
    """The move's first check passed; a1 then took s2 (at the new time) before the move's hold
    on a1. The hold is refused OVERLAP, so the move is, and a2's hold is let go of: s1 stays,
    a1 keeps both classes at their own times, and nobody is left holding the new time."""
    await _s1_and_s2(system, ["a1", "a2"])
    async with _gated("/hold/a1") as gate:
        move = asyncio.ensure_future(system.train.UpdateSession(_move_s1()))
        await asyncio.wait_for(gate.reached.wait(), 10)
        taken = await system.train.EnrollAgents(enroll("s2", "a1", key="first"))
        assert [e.state for e in taken.enrollments] == [E]
        gate.opened.set()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await move
    assert rules(err.value) == ["OVERLAP"]
    got = await system.train.GetSession(pb.GetSessionRequest(name="sessions/s1"))
    assert got.start_time == to_timestamp(START)
    assert await _places(system, "a1") == [("s1", START), ("s2", NEW_START)]
    assert await _places(system, "a2") == [("s1", START)]
    await system.train.EnrollAgents(enroll("s2", "a2", key="a2-free"))  # a2's hold is gone


async def test_someone_seated_while_the_move_holds_is_held_before_the_session_moves(
    system: System,
) -> None:
    """a3 is seated on s1 after the move held a1's new time and before the session moves: the
    session step finds a3 without a hold, holds a3's new time first, then moves. a3's booking
    follows the session, and a3 cannot take s2 (the new time) once moved."""
    await _s1_and_s2(system, ["a1"])
    await _staff(system, "night", ["a3"])
    async with _gated("session") as gate:
        move = asyncio.ensure_future(system.train.UpdateSession(_move_s1()))
        await asyncio.wait_for(gate.reached.wait(), 10)
        await system.train.EnrollAgents(enroll("s1", "a3", key="a3-joins"))
        gate.opened.set()
        await move
    assert await _places(system, "a3") == [("s1", NEW_START)]
    assert await _places(system, "a1") == [("s1", NEW_START)]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.EnrollAgents(enroll("s2", "a3", key="a3-clash"))
    assert rules(err.value) == ["OVERLAP"]


async def test_a_hold_a_cut_off_move_left_is_let_go_of_by_the_sweep(system: System) -> None:
    """The caller's deadline ends the move after its hold and before the session moves: the
    hold stays (a1 cannot take the new time) until the reconciler's sweep, past its grace,
    lets go of it. s1 never moved."""
    await _s1_and_s2(system, ["a1"])
    async with _gated("session") as gate:
        with pytest.raises(grpc.aio.AioRpcError) as cut:
            await system.train.UpdateSession(_move_s1(), timeout=1.0)
        assert gate.reached.is_set()
    assert cut.value.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)
    [booking] = (await learner_truth(system, "a1")).bookings
    assert [h.update_key for h in booking.move_holds] == ["move"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.EnrollAgents(enroll("s2", "a1", key="while-held"))
    assert rules(err.value) == ["OVERLAP"]
    sweep = system.training.reconciler.sweep
    assert await sweep(utc_now()) == 0  # within the grace: the move may still be retried
    assert await eventually(lambda: sweep(utc_now() + LATER), lambda n: n > 0) == 1
    assert await _places(system, "a1") == [("s1", START)]
    await system.train.EnrollAgents(enroll("s2", "a1", key="after-sweep"))


async def test_a_move_cut_off_after_the_session_moved_is_finished_by_the_sweep(
    system: System,
) -> None:
    """The deadline ends the move after the session moved and before a1's booking followed:
    the hold keeps a1's new time taken meanwhile, and the sweep moves the booking to the
    session's time as it lets go of the hold (before, only a retry moved it)."""
    await _s1_and_s2(system, ["a1"])
    async with _gated("/move/a1") as gate:
        with pytest.raises(grpc.aio.AioRpcError):
            await system.train.UpdateSession(_move_s1(), timeout=1.0)
        assert gate.reached.is_set()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await system.train.EnrollAgents(enroll("s2", "a1", key="while-held"))
    assert rules(err.value) == ["OVERLAP"]
    sweep = system.training.reconciler.sweep
    assert await eventually(lambda: sweep(utc_now() + LATER), lambda n: n > 0) == 1
    assert await _places(system, "a1") == [("s1", NEW_START)]
