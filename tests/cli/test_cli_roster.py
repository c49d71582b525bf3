"""`wfm roster|shifts|leave|coverage` as schedulers and agents use them, against the real
scheduling service."""

from __future__ import annotations

import re

import pytest
from wfm.scheduling.v1 import roster_service_pb2 as rpb

from tests import roster_helpers as h
from tests.cli.conftest import Cli
from tests.conftest import System
from wfm_cli import exitcodes
from wfm_runtime.testing import eventually

pytestmark = pytest.mark.integration

WEEK = "2027-03-01"  # a Monday
AGENTS = ["p-1", "p-2", "p-3"]


async def _floor(system: System) -> None:
    await h.add_team(system)
    for agent in AGENTS:
        await h.add_agent(system, agent)
    await h.add_night_pattern(h.roster_stub(system))


async def test_scheduler_bulk_assigns_publishes_and_the_agent_sees_a_timeline(
    wfm: Cli, system: System
) -> None:
    await _floor(system)
    scheduler = wfm.token("sched-1", "scheduler")
    bulk = await wfm(
        "shifts", "bulk-assign", "--pattern", "us-day", "--team", h.TEAM,
        "--from", WEEK, "--to", "2027-03-05", "--json", token=scheduler,
    )  # fmt: skip
    assert bulk.exit_code == 0, bulk.stderr
    result = bulk.json()
    assert result["assigned_shifts"] == 15 and result["refused_agents"] == 0
    assert sorted(a["agent"] for a in result["assignments"]) == [f"agents/{a}" for a in AGENTS]

    hidden = await wfm(
        "roster", "--from", WEEK, "--days", "7", "--json", token=wfm.token("p-1", "agent")
    )
    assert hidden.exit_code == 0, hidden.stderr
    assert all(not day["shifts"] for day in hidden.json()["days"])  # drafts are not shown

    published = await wfm("shifts", "publish", h.TEAM, "--week", WEEK, token=scheduler)
    assert published.exit_code == 0, published.stderr
    assert "published 15 shifts for 3 agents" in published.stdout

    async def agent_view() -> str:
        run = await wfm("roster", "--from", WEEK, "--days", "7", token=wfm.token("p-1", "agent"))
        assert run.exit_code == 0, run.stderr
        return run.stdout

    shown = await eventually(agent_view, lambda out: "5 shifts" in out)
    # 08:00-17:00 New York is 18:30-03:30 in Pune (IST, UTC+5:30; New York on EST until 14 March)
    assert "18:30 IST-03:30 IST" in shown and "08:00 EST-17:00 EST" in shown
    assert "Mon 01 Mar" in shown and "off" in shown  # the weekend
    assert "█" in shown and "▒" in shown  # work and the break/lunch on the bar


async def test_a_refused_shift_names_the_rule_and_exits_with_failed_precondition(
    wfm: Cli, system: System
) -> None:
    await _floor(system)
    scheduler = wfm.token("sched-1", "scheduler")
    first = await wfm(
        "shifts", "assign", "p-1", "--date", WEEK, "--pattern", "us-day", "--shift-id", "s1",
        token=scheduler,
    )  # fmt: skip
    assert first.exit_code == 0, first.stderr
    assert "agents/p-1/shifts/s1" in first.stdout and "draft" in first.stdout
    again = await wfm(
        "shifts", "assign", "p-1", "--date", WEEK, "--pattern", "us-day", token=scheduler
    )
    assert again.exit_code == exitcodes.FAILED_PRECONDITION
    assert "the change would break these rules" in again.stderr
    bad = await wfm("shifts", "assign", "p-1", "--date", "2027-02-30", "--pattern", "us-day")
    assert bad.exit_code == exitcodes.USAGE and "a date YYYY-MM-DD" in bad.stderr
    ghost = await wfm("shifts", "assign", "ghost", "--date", WEEK, "--pattern", "us-day")
    assert ghost.exit_code in (exitcodes.NOT_FOUND, exitcodes.FAILED_PRECONDITION), ghost.stderr


async def test_leave_request_approve_and_balance(wfm: Cli, system: System) -> None:
    await _floor(system)
    me = wfm.token("p-2", "agent")
    asked = await wfm(
        "leave", "request", "--from", "2027-03-10", "--to", "2027-03-11", "--leave-id", "trip",
        "--note", "family wedding", "--json", token=me,
    )  # fmt: skip
    assert asked.exit_code == 0, asked.stderr
    assert asked.json()["name"] == "agents/p-2/leaveRequests/trip"
    assert asked.json()["state"] == "LEAVE_STATE_REQUESTED"
    scheduler = wfm.token("sched-1", "scheduler")

    async def pending() -> str:
        run = await wfm("leave", "list", "--team", h.TEAM, "--state", "requested", token=scheduler)
        return run.stdout + run.stderr

    assert "family wedding" in await eventually(pending, lambda out: "trip" in out)
    approved = await wfm("leave", "approve", "agents/p-2/leaveRequests/trip", token=scheduler)
    assert approved.exit_code == 0, approved.stderr and "approved" in approved.stdout

    async def balance() -> str:
        run = await wfm("leave", "balance", "--year", "2027", token=me)
        assert run.exit_code == 0, run.stderr
        return run.stdout

    assert "29 days allowed, 2 taken" in await eventually(balance, lambda o: "2 taken" in o)
    unnamed = await wfm("leave", "request", "--from", "2027-03-12", "--json", token=me)
    assert unnamed.exit_code == 0, unnamed.stderr  # the id is made up: the day and a suffix
    made_up = unnamed.json()["name"]
    assert re.fullmatch(r"agents/p-2/leaveRequests/l-2027-03-12-[0-9a-f]{6}", made_up)
    retried = [
        await wfm("leave", "request", "--from", "2027-03-15", "--idempotency-key", "k-15",
                  "--json", token=me)
        for _ in range(2)
    ]  # fmt: skip
    assert retried[0].json()["name"] == retried[1].json()["name"] != made_up
    mine = await wfm("leave", "list", "--json", token=me)  # an agent's own, with no option
    assert mine.exit_code == 0, mine.stderr
    assert [(r["name"], r["state"]) for r in mine.json()["leave_requests"]] == [
        ("agents/p-2/leaveRequests/" + x, s)
        for x, s in sorted(
            [
                ("trip", "LEAVE_STATE_APPROVED"),
                (made_up.rsplit("/", 1)[1], "LEAVE_STATE_REQUESTED"),
                (retried[0].json()["name"].rsplit("/", 1)[1], "LEAVE_STATE_REQUESTED"),
            ]
        )
    ]
    others = await wfm("leave", "list", "--agent", "p-1", token=me)
    assert others.exit_code == exitcodes.PERMISSION_DENIED
    wrong = await wfm("leave", "request", "--from", "2027-03-10", "--kind", "holiday", token=me)
    assert wrong.exit_code == exitcodes.USAGE and "annual, sick, unpaid, other" in wrong.stderr
    nobody = await wfm("leave", "balance", token="")
    assert nobody.exit_code == exitcodes.USAGE and "give an agent id" in nobody.stderr


async def test_coverage_chart_marks_the_understaffed_intervals(wfm: Cli, system: System) -> None:
    await _floor(system)
    roster = h.roster_stub(system)
    required = [0] * 16 + [2] * 18 + [0] * 14  # 08:00-17:00 client time, two agents
    await roster.SetCoverageRequirement(
        rpb.SetCoverageRequirementRequest(
            team=f"teams/{h.TEAM}", date=WEEK, interval_minutes=30, required=required,
            idempotency_key="req-1",
        )
    )  # fmt: skip
    await wfm(
        "shifts", "assign", "p-1", "--date", WEEK, "--pattern", "us-day",
        token=wfm.token("sched-1", "scheduler"),
    )  # fmt: skip

    async def chart() -> str:
        run = await wfm("coverage", h.TEAM, "--date", WEEK)
        assert run.exit_code == 0, run.stderr
        return run.stdout

    shown = await eventually(chart, lambda out: "intervals understaffed" in out and "■" in out)
    assert "2027-03-01 08:00 EST" in shown and "│" in shown
    quiet = await wfm("coverage", h.TEAM, "--date", "2027-02-28")  # the Sunday before
    assert quiet.exit_code == 0, quiet.stderr
    assert f"{h.TEAM}: nobody required or scheduled on 2027-02-28 (client time)" in quiet.stdout
    as_json = (await wfm("coverage", h.TEAM, "--date", WEEK, "--json")).json()
    assert as_json["interval_minutes"] == 30
    assert {"start_time", "required", "scheduled", "gap"} <= set(as_json["intervals"][16])
