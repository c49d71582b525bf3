"""`wfm courses get|update`, `wfm sessions update|cancel`, `wfm withdraw|no-show|complete-all`
and `wfm training summary` as HR and trainers use them, against the real training service."""

from __future__ import annotations

from datetime import UTC, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from tests.cli.conftest import CLEAN_ENV, Cli
from tests.conftest import System
from tests.training_helpers import starting_soon
from wfm_cli import exitcodes
from wfm_cli.app import app
from wfm_runtime.testing import eventually

pytestmark = pytest.mark.integration


async def _staff(system: System, agents: list[str]) -> None:
    await system.add_team("night", client="acme")
    for agent in agents:
        await system.add_agent(agent, "night")
    for agent in agents:
        await system.known_to_training(agent)


async def _ok(wfm: Cli, *args: str, token: str) -> Any:
    """Runs a command that must succeed; its JSON output."""
    run = await wfm(*args, "--json", token=token)
    assert run.exit_code == 0, run.stderr
    return run.json()


async def _course(wfm: Cli, hr: str, course: str, *options: str) -> None:
    await _ok(wfm, "courses", "create", course, "--title", course.title(), *options, token=hr)


async def _session(wfm: Cli, hr: str, session: str, course: str, *options: str) -> None:
    await _ok(
        wfm, "sessions", "create", session, "--course", course, "--zone", "Asia/Kolkata",
        "--trainer", "Ravi", *options, token=hr,
    )  # fmt: skip


def _soon() -> str:
    """`--start` for a session checked in during the test: a few minutes from now, in
    Asia/Kolkata (check-in is open from an hour before the start until the end)."""
    return f"{starting_soon().astimezone(ZoneInfo('Asia/Kolkata')):%Y-%m-%dT%H:%M}"


NEW_COMMANDS = [
    ["courses", "get"], ["courses", "update"], ["sessions", "update"], ["sessions", "cancel"],
    ["withdraw"], ["no-show"], ["complete-all"], ["training", "summary"],
]  # fmt: skip


@pytest.mark.parametrize("command", NEW_COMMANDS, ids=" ".join)
def test_every_new_command_has_help_with_an_example_and_json(command: list[str]) -> None:
    shown = CliRunner().invoke(app, [*command, "--help"], env=CLEAN_ENV)
    assert shown.exit_code == 0, shown.output
    assert "Example: wfm " + " ".join(command) in shown.stdout and "--json" in shown.stdout


def _states(session: dict[str, Any]) -> dict[str, str]:
    return {
        e["agent"].removeprefix("agents/"): e["state"].removeprefix("ENROLLMENT_STATE_")
        for e in session["roster"]
    }


async def test_a_course_required_for_the_teams_client_is_due_until_passed(
    wfm: Cli, system: System
) -> None:
    await _staff(system, ["t-1", "t-2"])
    hr = wfm.token("hr-1", "hr")
    made = await _ok(
        wfm, "courses", "create", "acme-101", "--title", "Acme policies", "--category",
        "compliance", "--hours", "2", "--required-for", "acme", "--required-for", "globex",
        token=hr,
    )  # fmt: skip
    assert made["required_for_clients"] == ["acme", "globex"]

    async def due() -> list[tuple[str, str, str]]:
        found = await _ok(wfm, "due", "--team", "night", token=hr)
        return sorted((d["agent"], d["course"], d["reason"]) for d in found["due"])

    required = "DUE_REASON_REQUIRED"
    assert await eventually(due, lambda found: len(found) == 2) == [
        ("agents/t-1", "courses/acme-101", required),
        ("agents/t-2", "courses/acme-101", required),
    ]
    shown = await wfm("due", "--team", "night", token=hr)
    assert "acme-101" in shown.stdout and "required" in shown.stdout
    leader = wfm.token("tl-1", "team_leader", teams=("night",))
    own = await wfm("due", token=leader)  # a team leader's own team by default
    assert own.exit_code == 0 and own.stdout == shown.stdout, own.stderr
    nobody = await wfm("due", token=hr)
    assert nobody.exit_code == exitcodes.USAGE and "give --team or --client" in nobody.stderr

    await _session(wfm, hr, "acme-s1", "acme-101", "--start", _soon(), "--hours", "2")
    await _ok(wfm, "enroll", "acme-s1", "t-1", token=hr)
    await _ok(wfm, "sessions", "start", "acme-s1", token=hr)
    await _ok(wfm, "complete", "acme-s1", "t-1", "--score", "80", "--hours", "2", token=hr)
    still_due = [("agents/t-2", "courses/acme-101", required)]
    assert await eventually(due, lambda found: found == still_due) == still_due


async def test_course_update_changes_only_the_fields_given(wfm: Cli, system: System) -> None:
    hr = wfm.token("hr-1", "hr")
    await _course(wfm, hr, "base-101")
    await _course(
        wfm, hr, "fibre-101", "--hours", "4", "--technical", "--competency", "fibre",
        "--valid-days", "365", "--requires", "safety=foundation",
    )  # fmt: skip
    changed = await _ok(
        wfm, "courses", "update", "fibre-101", "--hours", "5", "--prerequisite", "base-101",
        "--requires", "networking=competent", "--required-for", "acme", "--version", "1",
        token=hr,
    )  # fmt: skip
    assert changed["credit_minutes"] == 300 and changed["version"] == "2"
    assert changed["prerequisite_courses"] == ["courses/base-101"]
    assert changed["prerequisite_competencies"] == [
        {"competency": "networking", "level": "COMPETENCY_LEVEL_COMPETENT"}
    ]
    assert changed["required_for_clients"] == ["acme"]
    assert (changed["title"], changed["technical"], changed["validity_days"]) == (
        "Fibre-101",
        True,
        365,
    )
    assert changed["competency_level"] == "COMPETENCY_LEVEL_FOUNDATION"

    stale = await wfm("courses", "update", "fibre-101", "--title", "X", "--version", "1", token=hr)
    assert stale.exit_code == exitcodes.CONFLICT, stale.stderr
    assert "someone changed it first" in stale.stderr

    cleared = await _ok(
        wfm, "courses", "update", "fibre-101", "--required-for", "", "--no-technical",
        "--competency", "", token=hr,
    )  # fmt: skip
    assert cleared["required_for_clients"] == [] and cleared["technical"] is False
    assert cleared["competency"] == "" and cleared["competency_level"] == (
        "COMPETENCY_LEVEL_UNSPECIFIED"
    )
    assert cleared["prerequisite_courses"] == ["courses/base-101"]  # not named: kept
    assert cleared["title"] == "Fibre-101" and cleared["version"] == "3"

    nothing = await wfm("courses", "update", "fibre-101", token=hr)
    assert nothing.exit_code == exitcodes.USAGE and "nothing to change" in nothing.stderr
    shown = await wfm("courses", "get", "fibre-101", token=hr)
    assert shown.exit_code == 0, shown.stderr
    for expected in ("base-101", "networking (competent)", "365 days", "Fibre-101"):
        assert expected in shown.stdout


async def _started_class(wfm: Cli, system: System) -> str:
    """t-1 and t-2 checked in to soft-s1; HR's token."""
    await _staff(system, ["t-1", "t-2"])
    hr = wfm.token("hr-1", "hr")
    await _course(wfm, hr, "soft-101", "--category", "soft-skills")
    await _session(wfm, hr, "soft-s1", "soft-101", "--start", _soon())
    await _ok(wfm, "enroll", "soft-s1", "t-1", "t-2", token=hr)
    early = await wfm("no-show", "soft-s1", "t-2", token=hr)
    assert early.exit_code == exitcodes.FAILED_PRECONDITION, early.stderr
    assert "not started" in early.stderr
    await _ok(wfm, "sessions", "start", "soft-s1", token=hr)
    return hr


async def test_a_checked_in_class_member_who_did_not_come_is_a_no_show(
    wfm: Cli, system: System
) -> None:
    hr = await _started_class(wfm, system)
    absent = await _ok(wfm, "no-show", "soft-s1", "t-2", token=hr)
    assert absent["state"] == "ENROLLMENT_STATE_NO_SHOW"
    again = await wfm("no-show", "soft-s1", "t-2", token=hr)  # final: no second time
    assert again.exit_code == exitcodes.FAILED_PRECONDITION and "TRANSITION" in again.stderr
    late = await wfm("complete", "soft-s1", "t-2", "--score", "90", token=hr)
    assert late.exit_code == exitcodes.FAILED_PRECONDITION, late.stderr
    came = await _ok(wfm, "complete", "soft-s1", "t-1", "--score", "80", token=hr)
    assert came["completion"]["attended_minutes"] == 60  # no --hours: the course's 1 hour
    session = await _ok(wfm, "sessions", "get", "soft-s1", token=hr)
    assert _states(session) == {"t-1": "COMPLETED", "t-2": "NO_SHOW"}


async def test_sessions_move_resize_cancel_and_withdraw(wfm: Cli, system: System) -> None:
    agents = ["t-1", "t-2", "t-3", "t-4"]
    await _staff(system, agents)
    hr = wfm.token("hr-1", "hr")
    await _course(wfm, hr, "fibre-101", "--hours", "4")
    await _session(wfm, hr, "fib-s1", "fibre-101", "--start", "2027-01-11T10:00", "--capacity", "2")
    enrolled = await _ok(wfm, "enroll", "fib-s1", *agents, token=hr)
    assert enrolled["session_version"] == "2"
    gone = await _ok(wfm, "withdraw", "fib-s1", "t-1", token=hr)
    assert gone["state"] == "ENROLLMENT_STATE_WITHDRAWN"
    after = await _ok(wfm, "sessions", "get", "fib-s1", token=hr)
    assert _states(after) == {
        "t-1": "WITHDRAWN", "t-2": "ENROLLED", "t-3": "ENROLLED", "t-4": "WAITLISTED",
    }  # fmt: skip

    grown = await _ok(wfm, "sessions", "update", "fib-s1", "--capacity", "3", token=hr)
    assert grown["capacity"] == 3 and _states(grown)["t-4"] == "ENROLLED"
    too_small = await wfm("sessions", "update", "fib-s1", "--capacity", "2", token=hr)
    assert too_small.exit_code == exitcodes.FAILED_PRECONDITION and "CAPACITY" in too_small.stderr
    stale = await wfm(
        "sessions", "update", "fib-s1", "--trainer", "Asha", "--version", "1", token=hr
    )
    assert stale.exit_code == exitcodes.CONFLICT, stale.stderr

    move = ("sessions", "update", "fib-s1", "--start", "2027-01-12T09:00", "--idempotency-key")
    moved = await wfm(*move, "move-1", token=hr)
    assert moved.exit_code == 0, moved.stderr
    assert "2027-01-12 09:00 IST-13:00 IST" in moved.stdout  # the length is kept
    again = await wfm(*move, "move-1", token=hr)  # a retry is answered with the first result
    assert again.exit_code == 0 and again.stdout == moved.stdout, again.stderr
    shorter = await wfm("sessions", "update", "fib-s1", "--hours", "2", token=hr)
    assert "2027-01-12 09:00 IST-11:00 IST" in shorter.stdout
    nothing = await wfm("sessions", "update", "fib-s1", token=hr)
    assert nothing.exit_code == exitcodes.USAGE and "nothing to change" in nothing.stderr

    cancelled = await wfm("sessions", "cancel", "fib-s1", "--reason", "trainer ill", token=hr)
    assert cancelled.exit_code == 0, cancelled.stderr
    assert "cancelled: trainer ill" in cancelled.stdout
    final = await _ok(wfm, "sessions", "get", "fib-s1", token=hr)
    assert final["state"] == "SESSION_STATE_CANCELLED"
    assert set(_states(final).values()) == {"WITHDRAWN"}
    assert {e["withdraw_reason"] for e in final["roster"] if e["agent"] != "agents/t-1"} == {
        "trainer ill"
    }


async def test_complete_all_records_a_class_or_nothing_and_the_summary_adds_it_up(
    wfm: Cli, system: System, tmp_path: Path
) -> None:
    agents = ["t-1", "t-2", "t-3"]
    await _staff(system, agents)
    hr = wfm.token("hr-1", "hr")
    await _course(wfm, hr, "tech-101", "--hours", "4", "--technical")
    start = starting_soon()
    local = start.astimezone(ZoneInfo("Asia/Kolkata"))
    await _session(wfm, hr, "tech-s1", "tech-101", "--start", f"{local:%Y-%m-%dT%H:%M}")
    await _ok(wfm, "enroll", "tech-s1", *agents, token=hr)
    await _ok(wfm, "sessions", "start", "tech-s1", token=hr)

    bad = tmp_path / "bad.csv"
    bad.write_text("t-1,90,passed,4\nt-2,ninety,passed,4\nt-3,80,maybe,4\n")
    refused = await wfm("complete-all", "tech-s1", "--file", str(bad), token=hr)
    assert refused.exit_code == exitcodes.INVALID_ARGUMENT
    assert "2 problems, nothing sent" in refused.stderr
    assert "line 2: score" in refused.stderr and "line 3: passed" in refused.stderr
    untouched = await _ok(wfm, "sessions", "get", "tech-s1", token=hr)
    assert set(_states(untouched).values()) == {"IN_PROGRESS"}

    good = tmp_path / "results.csv"
    good.write_text("agent,score,passed,hours\nt-1,90,passed,4\nt-2,40,failed,4\nt-3,75,yes,3.5\n")
    recorded = await _ok(wfm, "complete-all", "tech-s1", "--file", str(good), token=hr)
    states = {e["agent"]: e["state"] for e in recorded["enrollments"]}
    assert states == {
        "agents/t-1": "ENROLLMENT_STATE_COMPLETED",
        "agents/t-2": "ENROLLMENT_STATE_FAILED",
        "agents/t-3": "ENROLLMENT_STATE_COMPLETED",
    }

    async def summary() -> dict[str, Any]:
        found: dict[str, Any] = await _ok(wfm, "training", "summary", "--team", "night", token=hr)
        return found

    figures = await eventually(summary, lambda found: found["completions"] == 3)
    assert (figures["agents"], figures["training_minutes"], figures["technical_minutes"]) == (
        3,
        690,
        690,
    )
    assert (figures["passed"], figures["failed"], figures["technical_completions"]) == (2, 1, 2)
    shown = await wfm("training", "summary", "--team", "night", token=hr)
    assert "11.5" in shown.stdout and "67%" in shown.stdout
    after = (start.astimezone(UTC) + timedelta(days=1)).date().isoformat()  # UTC days
    later = await _ok(wfm, "training", "summary", "--team", "night", "--from", after, token=hr)
    assert later["completions"] == 0
