"""Roster requests made of one command per agent (PublishWeek, BulkAssignShifts), cut off
half-way, over gRPC against the real servers: a seam holds the commands of the agents not yet
done (as a crash or a store outage there would leave them) and the caller's deadline cancels the
call. A retry with the same key finishes it and repeats nothing; without one, the half-done
state is an ordinary roster that a new request finishes (docs/scheduling.md, "Requests that
change many agents")."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

import grpc
import pytest
from pymongo.errors import AutoReconnect
from wfm.scheduling.v1 import roster_service_pb2 as rpb

from tests import roster_helpers as h
from tests.conftest import System
from wfm_runtime.commands import Command
from wfm_runtime.testing import eventually

pytestmark = pytest.mark.integration
WEEK = "2027-03-01"
NEXT = "2027-03-08"
NEXT_SHIFTS = [f"us-day-202703{d:02d}" for d in range(8, 13)]
DRAFT, PUBLISHED, CANCELLED = (
    rpb.SHIFT_STATE_DRAFT,
    rpb.SHIFT_STATE_PUBLISHED,
    rpb.SHIFT_STATE_CANCELLED,
)


@contextlib.contextmanager
def only_done_for(
    system: System, key: str, done: set[str], store_away: bool = False
) -> Iterator[None]:
    """The per-agent commands of the request with `key` run for the agents in `done`; the
    others hang before they start, until the call is cancelled (or find the store away)."""
    runner = system.scheduling.runtime.commands
    original = runner.execute

    async def execute(behaviour: Any, command: Command, decide: Any) -> Any:
        mine = command.idempotency_key.startswith(f"{key} ")
        if mine and command.aggregate_id not in done:
            if store_away:
                raise AutoReconnect("connection closed")
            await asyncio.Event().wait()
        return await original(behaviour, command, decide)

    with mock.patch.object(runner, "execute", execute):
        yield


async def cut_off(system: System, call: Any, request: Any, done: set[str]) -> None:
    """Sends the request with only `done`'s commands let through; the caller's deadline ends it
    (the server gives up a moment before it: UNAVAILABLE, or the deadline itself)."""
    cut = only_done_for(system, request.idempotency_key, done)
    with cut, pytest.raises(grpc.aio.AioRpcError) as err:
        await call(request, timeout=1.0)
    assert err.value.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)


async def _team(system: System, *agents: str) -> Any:
    roster = h.roster_stub(system)
    await h.add_team(system)
    await h.add_site(roster, {})
    for agent in agents:
        await h.add_agent(system, agent)
    await h.add_night_pattern(roster)
    return roster


def publish(key: str, week: str = WEEK) -> rpb.PublishWeekRequest:
    return rpb.PublishWeekRequest(team=f"teams/{h.TEAM}", week_start=week, idempotency_key=key)


def bulk(key: str, *agents: str, week: str = WEEK) -> rpb.BulkAssignShiftsRequest:
    return rpb.BulkAssignShiftsRequest(
        shift_pattern="shiftPatterns/us-day",
        agents=[f"agents/{a}" for a in agents],
        start_date=week,
        end_date=week[:-2] + f"{int(week[-2:]) + 6:02d}",
        idempotency_key=key,
    )


async def schedule(roster: Any, agent: str) -> tuple[int, list[tuple[str, int]]]:
    """The agent's schedule version and (shift id, state) of March 2027, as a scheduler sees it
    (this process's commits on top of the view)."""
    got = await roster.GetAgentRoster(
        rpb.GetAgentRosterRequest(
            agent=f"agents/{agent}", start_date="2027-03-01", end_date="2027-03-31"
        )
    )
    shifts = [(s.name.rsplit("/", 1)[1], s.state) for d in got.days for s in d.shifts]
    return got.schedule_version, shifts


async def states(roster: Any, agent: str) -> set[int]:
    return {state for _, state in (await schedule(roster, agent))[1]}


def answer(done: rpb.PublishWeekResponse) -> tuple[int, list[str]]:
    return done.published_shifts, list(done.agents)


def assigned(done: rpb.BulkAssignShiftsResponse) -> dict[str, Any]:
    return {
        a.agent.removeprefix("agents/"): len(a.shifts)
        if not (a.violations or a.error)
        else sorted({v.type for v in a.violations}) or a.error
        for a in done.assignments
    }


async def saturday_draft(roster: Any, agent: str) -> None:
    """A two-hour draft on Saturday of WEEK (the pattern works Monday to Friday)."""
    await roster.AssignShift(
        rpb.AssignShiftRequest(
            agent=f"agents/{agent}",
            shift_id="sat",
            shift=rpb.ShiftSpec(
                roster_date="2027-03-06",
                start_local_time="08:00",
                length_minutes=120,
                anchor=rpb.ANCHOR_CLIENT,
            ),
            idempotency_key=f"sat-{agent}",
        )
    )


# --- PublishWeek ---------------------------------------------------------------------------
async def test_a_cut_off_publish_finishes_on_retry_and_publishes_nothing_twice(
    system: System,
) -> None:
    agents = ("p1", "p2", "p3", "p4")
    roster = await _team(system, *agents)
    await h.assign_us_day_week(roster, *agents, week_start=WEEK)
    request = publish("pub")
    await cut_off(system, roster.PublishWeek, request, done={"p1", "p2"})

    # Half the team published: a legitimate roster, each agent wholly one way or the other.
    for agent, state in (("p1", PUBLISHED), ("p2", PUBLISHED), ("p3", DRAFT), ("p4", DRAFT)):
        assert await states(roster, agent) == {state}
    p1 = h.roster_stub(system, "p1", "agent")
    seen = await p1.GetAgentRoster(
        rpb.GetAgentRosterRequest(agent="agents/p1", start_date=WEEK, end_date="2027-03-07")
    )
    assert len([s for d in seen.days for s in d.shifts]) == 5

    # The retry answers what one uninterrupted call would have, and p1/p2 commit nothing again.
    everyone = (20, [f"agents/{a}" for a in agents])
    assert answer(await roster.PublishWeek(request)) == everyone
    assert answer(await roster.PublishWeek(request)) == everyone
    for agent in agents:
        version, shifts = await schedule(roster, agent)
        assert (version, {state for _, state in shifts}) == (2, {PUBLISHED})


async def test_a_cut_off_publish_never_retried_blocks_nothing(system: System) -> None:
    agents = ("n1", "n2", "n3")
    roster = await _team(system, *agents)
    await h.assign_us_day_week(roster, *agents, week_start=WEEK)
    lost = publish("lost")
    await cut_off(system, roster.PublishWeek, lost, done={"n1"})

    # The scheduler sees n1 published, the others in draft, and publishes the week again.
    again = await roster.PublishWeek(publish("again"))
    assert answer(again) == (10, ["agents/n2", "agents/n3"])
    for agent in agents:
        assert await schedule(roster, agent) == (
            2,
            [(f"us-day-2027030{d}", PUBLISHED) for d in range(1, 6)],
        )
    # A late retry of the lost request answers what it did (n1's week) and changes nothing.
    assert answer(await roster.PublishWeek(lost)) == (5, ["agents/n1"])
    assert [(await schedule(roster, a))[0] for a in agents] == [2, 2, 2]


async def test_a_publish_retried_after_changes_answers_what_each_agents_part_did(
    system: System,
) -> None:
    agents = ("c1", "c2", "c3")
    roster = await _team(system, *agents)
    await h.assign_us_day_week(roster, *agents, week_start=WEEK)
    request = publish("pub")
    await cut_off(system, roster.PublishWeek, request, done={"c1"})
    # Meanwhile Saturday drafts for c1 (done) and c2 (not yet).
    await saturday_draft(roster, "c1")
    await saturday_draft(roster, "c2")

    # c1's part was done before its Saturday existed: the retry repeats its answer and leaves
    # the draft; c2's part runs now and publishes what c2 has now.
    assert answer(await roster.PublishWeek(request)) == (
        5 + 6 + 5,
        ["agents/c1", "agents/c2", "agents/c3"],
    )
    assert ("sat", DRAFT) in (await schedule(roster, "c1"))[1]
    assert ("sat", PUBLISHED) in (await schedule(roster, "c2"))[1]
    # Publishing the week again (a new key) publishes what was drafted since.
    assert answer(await roster.PublishWeek(publish("pub-2"))) == (1, ["agents/c1"])


async def test_a_publish_cut_off_by_the_store_is_unavailable_and_finished_by_its_retry(
    system: System,
) -> None:
    agents = ("s1", "s2", "s3")
    roster = await _team(system, *agents)
    await h.assign_us_day_week(roster, *agents, week_start=WEEK)
    request = publish("pub")
    with only_done_for(system, "pub", {"s1"}, store_away=True):
        code, _, _ = await h.refusal(roster.PublishWeek(request))
    assert code == grpc.StatusCode.UNAVAILABLE
    # s1's command, under way when the others failed, finishes after the answer.
    assert await eventually(lambda: states(roster, "s1"), lambda seen: seen == {PUBLISHED})
    assert [await states(roster, a) for a in ("s2", "s3")] == [{DRAFT}, {DRAFT}]
    assert answer(await roster.PublishWeek(request)) == (15, [f"agents/{a}" for a in agents])
    assert [(await schedule(roster, a))[0] for a in agents] == [2, 2, 2]


# --- BulkAssignShifts ----------------------------------------------------------------------
async def test_a_cut_off_bulk_assignment_finishes_on_retry_and_assigns_nothing_twice(
    system: System,
) -> None:
    agents = ("b1", "b2", "b3", "b4")
    roster = await _team(system, *agents)
    request = bulk("bulk", *agents)
    await cut_off(system, roster.BulkAssignShifts, request, done={"b1", "b2"})

    # Each agent has the whole week or nothing of it.
    for agent, held in (("b1", 5), ("b2", 5), ("b3", 0), ("b4", 0)):
        version, shifts = await schedule(roster, agent)
        assert (version, len(shifts)) == (1 if held else 0, held)

    done = await roster.BulkAssignShifts(request)
    assert assigned(done) == dict.fromkeys(agents, 5)
    assert (done.assigned_shifts, done.refused_agents) == (20, 0)
    assert assigned(await roster.BulkAssignShifts(request)) == dict.fromkeys(agents, 5)
    for agent in agents:
        version, shifts = await schedule(roster, agent)
        assert (version, len(shifts)) == (1, 5)


async def test_a_bulk_assignment_cut_off_by_the_store_is_unavailable_and_finished_by_its_retry(
    system: System,
) -> None:
    agents = ("u1", "u2", "u3")
    roster = await _team(system, *agents)
    request = bulk("bulk", *agents)
    with only_done_for(system, "bulk", {"u1"}, store_away=True):
        code, _, _ = await h.refusal(roster.BulkAssignShifts(request))
    assert code == grpc.StatusCode.UNAVAILABLE
    assert await eventually(lambda: schedule(roster, "u1"), lambda seen: seen[0] == 1)
    assert [await schedule(roster, a) for a in ("u2", "u3")] == [(0, []), (0, [])]
    assert assigned(await roster.BulkAssignShifts(request)) == dict.fromkeys(agents, 5)
    assert [(await schedule(roster, a))[0] for a in agents] == [1, 1, 1]


async def test_a_cut_off_bulk_assignment_overtaken_by_other_changes(system: System) -> None:
    agents = ("o1", "o2", "o3", "o4")
    roster = await _team(system, *agents)
    lost = bulk("lost", *agents)
    await cut_off(system, roster.BulkAssignShifts, lost, done={"o1"})

    # Never retried: the scheduler assigns again with a new key; o1's week is already there.
    again = await roster.BulkAssignShifts(bulk("again", "o1", "o2", "o3"))
    assert assigned(again) == {"o1": ["SHIFT_EXISTS"], "o2": 5, "o3": 5}
    await roster.CancelShift(
        rpb.CancelShiftRequest(name="agents/o1/shifts/us-day-20270301", idempotency_key="x")
    )

    # The lost request retried late: o1's part answers as it did (the cancelled shift stays
    # cancelled), o2 and o3 were assigned by the other request, o4 gets its week now.
    late = await roster.BulkAssignShifts(lost)
    assert assigned(late) == {"o1": 5, "o2": ["SHIFT_EXISTS"], "o3": ["SHIFT_EXISTS"], "o4": 5}
    version, shifts = await schedule(roster, "o1")
    assert version == 2 and ("us-day-20270301", CANCELLED) in shifts
    assert [(await schedule(roster, a))[0] for a in ("o2", "o3", "o4")] == [1, 1, 1]


# --- approving leave: one commit -----------------------------------------------------------
async def test_approving_leave_cancels_the_shifts_in_its_one_commit(system: System) -> None:
    roster = await _team(system, "l1")
    await h.assign_us_day_week(roster, "l1", week_start=WEEK)
    leave = rpb.LeaveRequest(
        kind=rpb.LEAVE_KIND_ANNUAL, start_date="2027-03-03", end_date="2027-03-04"
    )
    asked = await roster.RequestLeave(
        rpb.RequestLeaveRequest(
            agent="agents/l1", leave_request_id="l", leave_request=leave, idempotency_key="rq"
        )
    )
    approve = rpb.ApproveLeaveRequest(name=asked.name, idempotency_key="ok")
    before = (await schedule(roster, "l1"))[0]
    await roster.ApproveLeave(approve)
    await roster.ApproveLeave(approve)
    version, shifts = await schedule(roster, "l1")
    assert version == before + 1  # the approval and the cancellations: one event
    assert [s for s, state in shifts if state == CANCELLED] == [
        "us-day-20270303",
        "us-day-20270304",
    ]


# --- a key spent by a different request ----------------------------------------------------
# Each agent's command is keyed `<key> <agent>`, so an agent the first request did not reach has
# a fresh key. The request's own key is spent first: a different request under it is refused
# before any agent's command runs.
async def test_a_publish_under_a_key_spent_by_a_different_request_changes_nothing(
    system: System,
) -> None:
    roster = await _team(system, "k1", "k2")
    await h.assign_us_day_week(roster, "k1", "k2", week_start=WEEK, key="w1")
    assert answer(await roster.PublishWeek(publish("p"))) == (10, ["agents/k1", "agents/k2"])
    await h.add_agent(system, "k3")  # joins the team with a week of drafts: p/k3 is fresh
    await h.assign_us_day_week(roster, "k1", "k3", week_start=NEXT, key="w2")

    code, _, message = await h.refusal(roster.PublishWeek(publish("p", week=NEXT)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "idempotency_key" in message
    code, _, _ = await h.refusal(roster.PublishWeek(publish("w2", week=NEXT)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT  # the bulk assignment's key
    await asyncio.sleep(0.5)  # nothing was left running either
    assert await schedule(roster, "k3") == (1, [(s, DRAFT) for s in NEXT_SHIFTS])
    assert (await schedule(roster, "k1"))[0] == 3  # w1, p, w2


async def test_a_bulk_assignment_under_a_key_spent_by_a_different_request_changes_nothing(
    system: System,
) -> None:
    roster = await _team(system, "k1", "k2", "k3")
    await h.assign_us_day_week(roster, "k1", "k2", week_start=WEEK, key="w1")
    await roster.PublishWeek(publish("p"))

    for key in ("w1", "p"):  # another bulk assignment's key, another RPC's
        code, _, message = await h.refusal(roster.BulkAssignShifts(bulk(key, "k2", "k3")))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "idempotency_key" in message
    await asyncio.sleep(0.5)
    assert await schedule(roster, "k3") == (0, [])
    assert (await schedule(roster, "k2"))[0] == 2


# A client's own key for one agent's change may read like a bulk request's per-agent key
# (`p/k1`: keys may hold "/"). The bulk request's commands must not find it spent.
async def test_a_single_changes_key_that_reads_like_a_per_agent_key_spoils_no_bulk_request(
    system: System,
) -> None:
    roster = await _team(system, "k1", "k2")
    await h.assign_us_day_week(roster, "k1", "k2", week_start=WEEK, key="w1")
    for agent, key in (("k1", "p/k1"), ("k2", "b/k2")):
        await saturday_draft(roster, agent)
        await roster.CancelShift(
            rpb.CancelShiftRequest(
                name=f"agents/{agent}/shifts/sat", reason="not needed", idempotency_key=key
            )
        )
    # Was INVALID_ARGUMENT (p/k1 spent by another request) after publishing k2's week.
    assert answer(await roster.PublishWeek(publish("p"))) == (10, ["agents/k1", "agents/k2"])
    # Was k2 refused for its key while k1 was assigned.
    assert assigned(await roster.BulkAssignShifts(bulk("b", "k1", "k2", week=NEXT))) == {
        "k1": 5,
        "k2": 5,
    }
