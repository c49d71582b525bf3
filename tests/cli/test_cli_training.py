"""`wfm courses|sessions|enroll|complete|transcript|due` as HR and trainers use them, against
the real training service."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.cli.conftest import Cli
from tests.conftest import System
from tests.training_helpers import starting_soon
from wfm_cli import exitcodes
from wfm_runtime.testing import eventually

pytestmark = pytest.mark.integration

AGENTS = ["t-1", "t-2", "t-3"]


async def _staff(system: System) -> None:
    await system.add_team("night")
    for agent in AGENTS:
        await system.add_agent(agent, "night")
    for agent in AGENTS:
        await system.known_to_training(agent)


async def test_course_session_enroll_complete_and_transcript(wfm: Cli, system: System) -> None:
    await _staff(system)
    hr = wfm.token("hr-1", "hr")
    course = await wfm(
        "courses", "create", "fibre-101", "--title", "Fibre basics", "--hours", "4",
        "--technical", "--competency", "fibre", "--valid-days", "365", "--json", token=hr,
    )  # fmt: skip
    assert course.exit_code == 0, course.stderr
    assert course.json()["name"] == "courses/fibre-101"
    assert course.json()["credit_minutes"] == 240

    async def courses() -> str:
        return (await wfm("courses", "list", token=hr)).stdout

    assert "fibre (foundation)" in await eventually(courses, lambda out: "fibre-101" in out)

    start = starting_soon().astimezone(ZoneInfo("Asia/Kolkata"))  # checked in below
    end = start + timedelta(hours=4)
    made = await wfm(
        "sessions", "create", "fib-s1", "--course", "fibre-101", "--start",
        f"{start:%Y-%m-%dT%H:%M}", "--zone", "Asia/Kolkata", "--capacity", "2", "--trainer",
        "Ravi", token=hr,
    )  # fmt: skip
    assert made.exit_code == 0, made.stderr
    assert f"sessions/fib-s1: fibre-101, {start:%Y-%m-%d %H:%M} IST-{end:%H:%M} IST" in made.stdout

    async def calendar() -> str:  # listed before anyone is enrolled
        return (await wfm("sessions", "list", token=hr)).stdout  # from today

    listed = await eventually(calendar, lambda out: "fib-s1" in out)
    assert f"{start:%Y-%m-%d %H:%M} IST" in listed and "0/2" in listed and "scheduled" in listed

    enrolled = await wfm("enroll", "fib-s1", *AGENTS, "--json", token=hr)
    assert enrolled.exit_code == 0, enrolled.stderr
    states = {e["agent"]: e["state"] for e in enrolled.json()["enrollments"]}
    assert states["agents/t-3"] == "ENROLLMENT_STATE_WAITLISTED"

    early = await wfm("complete", "fib-s1", "t-1", "--score", "90", token=hr)
    assert early.exit_code == exitcodes.FAILED_PRECONDITION, early.stderr
    assert "TRANSITION" in early.stderr
    assert (await wfm("sessions", "start", "fib-s1", token=hr)).exit_code == 0
    done = await wfm("complete", "fib-s1", "t-1", "--score", "90", "--hours", "4", token=hr)
    assert done.exit_code == 0, done.stderr and "completed" in done.stdout

    async def record() -> str:
        run = await wfm("transcript", token=wfm.token("t-1", "agent"))
        assert run.exit_code == 0, run.stderr
        return run.stdout

    shown = await eventually(record, lambda out: "Fibre basics" in out)
    assert "passed" in shown and "4 h training (4 h technical)" in shown
    assert "competency: fibre (foundation)" in shown

    async def sessions() -> list[str]:
        run = await wfm("sessions", "list", "--course", "fibre-101", "--json", token=hr)
        return [s["name"] for s in run.json()["sessions"]]

    await eventually(sessions, lambda names: names == ["sessions/fib-s1"])
    due = await wfm("due", "--team", "night", "--json", token=hr)
    assert due.exit_code == 0, due.stderr and isinstance(due.json()["due"], list)


async def test_bad_input_is_named_and_changes_nothing(wfm: Cli, system: System) -> None:
    hr = wfm.token("hr-1", "hr")
    zone = await wfm(
        "sessions", "create", "s", "--course", "x", "--start", "2026-12-01T10:00",
        "--zone", "Mars/Olympus", "--trainer", "Ravi", token=hr,
    )  # fmt: skip
    assert zone.exit_code == exitcodes.USAGE and "an IANA zone" in zone.stderr
    nobody = await wfm(
        "sessions", "create", "s", "--course", "x", "--start", "2026-12-01T10:00",
        "--zone", "Asia/Kolkata", token=hr,
    )  # fmt: skip
    assert nobody.exit_code == exitcodes.USAGE and "--trainer" in nobody.stderr
    category = await wfm("courses", "create", "c1", "--title", "T", "--category", "x", token=hr)
    assert category.exit_code == exitcodes.USAGE and "product, client-specific" in category.stderr
    bad_id = await wfm("courses", "create", "Bad Id", "--title", "T", "--json", token=hr)
    assert bad_id.exit_code == exitcodes.INVALID_ARGUMENT
    assert "field_violations" in bad_id.stderr
    missing = await wfm("sessions", "get", "nope", token=hr)
    assert missing.exit_code == exitcodes.NOT_FOUND, missing.stderr
    agent = await wfm("courses", "create", "c2", "--title", "T", token=wfm.token("a", "agent"))
    assert agent.exit_code == exitcodes.PERMISSION_DENIED
    assert "[]" in (await wfm("courses", "list", "--json", token=hr)).stdout
