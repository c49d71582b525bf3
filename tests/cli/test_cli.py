"""The `wfm` command line as people use it, against the real services: output (stable parts),
`--json` shapes, exit codes and the words of errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.cli.conftest import CLEAN_ENV, Cli
from tests.conftest import System
from tests.training_helpers import training_clock_at
from wfm_cli import demo_floor, exitcodes
from wfm_runtime.testing import eventually
from wfm_runtime.timefmt import utc_now

pytestmark = pytest.mark.integration

TEAM = ["--name", "Pune US night", "--client-zone", "America/New_York", "--client", "acme"]
AGENT = ["--name", "Asha Patil", "--team", "pune-night", "--zone", "Asia/Kolkata"]
TEAM_KEYS = {"name", "display_name", "client_time_zone", "client", "version", "create_time",
             "update_time", "operating_hours", "min_rest_minutes"}  # fmt: skip
AGENT_KEYS = {"name", "display_name", "team", "site", "time_zone", "contract_type",
              "weekly_minutes", "version", "create_time", "update_time",
              "annual_leave_days", "working_days"}  # fmt: skip
AVAILABILITY_KEYS = {"name", "agent_id", "team", "status", "reason_code", "since",
                     "since_agent_local", "since_client_local", "productive",
                     "version"}  # fmt: skip


async def _floor(wfm: Cli, system: System, agents: list[str]) -> None:
    assert (await wfm("teams", "create", "pune-night", *TEAM)).exit_code == 0
    for agent in agents:
        run = await wfm("agents", "create", agent, *AGENT, "--site", "pune", "--weekly-hours", "45")
        assert run.exit_code == 0, run.stderr
    for agent in agents:
        await system.known_to_availability(agent)


async def test_teams_and_agents(wfm: Cli, system: System) -> None:
    created = await wfm("teams", "create", "pune-night", *TEAM, "--idempotency-key", "t1")
    assert created.exit_code == 0
    assert "pune-night" in created.stdout and "America/New_York" in created.stdout
    again = await wfm("teams", "create", "pune-night", *TEAM, "--idempotency-key", "t1", "--json")
    assert again.exit_code == 0 and again.json()["version"] == "1"  # a retry, not a second team
    twice = await wfm("teams", "create", "pune-night", *TEAM)
    assert twice.exit_code == exitcodes.ALREADY_EXISTS
    assert "already exists" in twice.stderr

    listed = (
        await eventually(  # lists read views, a few milliseconds behind the change
            lambda: wfm("teams", "list", "--json"), lambda r: len(r.json()["teams"]) == 1
        )
    ).json()
    assert set(listed) == {"teams", "next_page_token"}
    assert [set(t) for t in listed["teams"]] == [TEAM_KEYS]
    assert (await wfm("teams", "get", "pune-night", "--json")).json()["client"] == "acme"

    agent = await wfm("agents", "create", "a-1", *AGENT, "--contract", "part-time",
                      "--weekly-hours", "20", "--json")  # fmt: skip
    assert agent.exit_code == 0
    assert set(agent.json()) == AGENT_KEYS
    assert agent.json()["contract_type"] == "CONTRACT_TYPE_PART_TIME"
    assert agent.json()["weekly_minutes"] == 1200

    moved = await wfm("agents", "update", "a-1", "--zone", "Asia/Calcutta",
                      "--expected-version", "1")  # fmt: skip
    assert moved.exit_code == 0 and "Asia/Calcutta" in moved.stdout
    stale = await wfm("agents", "update", "a-1", "--site", "x", "--expected-version", "1")
    assert stale.exit_code == exitcodes.CONFLICT
    assert "hint: someone changed it first" in stale.stderr
    spelled = await wfm("agents", "update", "a-1", "--site", "x", "--version", "1")  # the same
    assert spelled.exit_code == exitcodes.CONFLICT
    negative = await wfm("agents", "update", "a-1", "--site", "x", "--version", "-1")
    assert negative.exit_code == exitcodes.USAGE
    nothing = await wfm("agents", "update", "a-1")
    assert nothing.exit_code == exitcodes.USAGE and "nothing to change" in nothing.stderr

    page = (
        await eventually(
            lambda: wfm("agents", "list", "--json"),
            lambda r: [a["version"] for a in r.json()["agents"]] == ["2"],
        )
    ).json()
    every = (await wfm("agents", "list", "--all", "--page-size", "1", "--json")).json()
    assert [a["name"] for a in every["agents"]] == ["agents/a-1"]
    assert every["next_page_token"] == ""
    table = await wfm("agents", "list", "--team", "pune-night")
    assert "Asha Patil" in table.stdout and "part-time" in table.stdout and "20h" in table.stdout
    assert [a["name"] for a in page["agents"]] == ["agents/a-1"]
    assert page["agents"][0]["version"] == "2"

    missing = await wfm("agents", "get", "nobody")
    assert missing.exit_code == exitcodes.NOT_FOUND
    assert missing.stderr.startswith("error: ") and "nobody" in missing.stderr


async def test_an_agents_working_days(wfm: Cli) -> None:
    assert (await wfm("teams", "create", "pune-night", *TEAM)).exit_code == 0
    created = await wfm("agents", "create", "a-2", *AGENT, "--weekly-hours", "40",
                        "--working-days", "sun-thu", "--json")  # fmt: skip
    assert created.exit_code == 0, created.stderr
    assert created.json()["working_days"] == [1, 2, 3, 4, 7]
    moved = await wfm("agents", "update", "a-2", "--working-days", "tue-sat", "--json")
    assert moved.exit_code == 0 and moved.json()["working_days"] == [2, 3, 4, 5, 6]
    bad = await wfm("agents", "update", "a-2", "--working-days", "funday")
    assert bad.exit_code == exitcodes.USAGE and "not a weekday" in bad.stderr
    table = await eventually(
        lambda: wfm("agents", "list", "--team", "pune-night"), lambda r: "tue-sat" in r.stdout
    )
    assert "a-2" in table.stdout


async def test_bad_input_names_the_fields_and_changes_nothing(wfm: Cli) -> None:
    bad = await wfm("teams", "create", "Bad Team!", "--name", "x", "--client-zone", "Mars/Base")
    assert bad.exit_code == exitcodes.INVALID_ARGUMENT
    assert "fix these fields" in bad.stderr
    assert "  team_id: " in bad.stderr and "  team.client_time_zone: " in bad.stderr

    as_json = await wfm("teams", "create", "Bad Team!", "--name", "x", "--client-zone", "UTC",
                        "--json")  # fmt: skip
    error = __import__("json").loads(as_json.stderr)["error"]
    assert as_json.stdout == ""
    assert error["code"] == "INVALID_ARGUMENT" and error["reason"] == "INVALID_ARGUMENT"
    assert [v["field"] for v in error["field_violations"]] == ["team_id"]
    assert (await wfm("teams", "list", "--json")).json()["teams"] == []

    usage = await wfm("agents", "create", "a-2", *AGENT, "--contract", "zero-hours",
                      "--weekly-hours", "10")  # fmt: skip
    assert usage.exit_code == exitcodes.USAGE and "unknown contract type" in usage.stderr
    huge = await wfm("agents", "list", "--page-size", "-1")
    assert huge.exit_code == exitcodes.INVALID_ARGUMENT and "page_size" in huge.stderr


async def test_status_set_get_list(wfm: Cli, system: System) -> None:
    await _floor(wfm, system, ["a-1", "a-2"])
    me = wfm.token("a-1", "agent")

    done = await wfm("status", "set", "break", "--reason", "SCHEDULED_BREAK", token=me)
    assert done.exit_code == 0, done.stderr
    assert done.stdout.startswith("a-1 is break (SCHEDULED_BREAK) since ")
    assert " IST agent time, " in done.stdout and " client time (version 1)" in done.stdout

    empty = await wfm("status", "get", "--agent", "a-2", "--json")
    assert set(empty.json()) == AVAILABILITY_KEYS and empty.json()["since"] is None
    got = await eventually(
        lambda: wfm("status", "get", "--json", token=me), lambda r: r.json()["version"] == "1"
    )
    assert set(got.json()) == AVAILABILITY_KEYS
    assert got.json()["status"] == "AGENT_STATUS_BREAK" and got.json()["version"] == "1"
    assert got.json()["since_client_local"]["time_zone"] == "America/New_York"

    await wfm("status", "set", "acw", "--agent", "a-2")  # an admin corrects anyone's
    await eventually(
        lambda: wfm("status", "list", "--team", "pune-night", "--json"),
        lambda r: all(a["version"] == "1" for a in r.json()["availabilities"]),
    )
    listed = await wfm("status", "list", "--team", "pune-night", "--status", "break", "--json")
    assert [a["agent_id"] for a in listed.json()["availabilities"]] == ["a-1"]
    every = await wfm("status", "list", "--all", "--json")
    assert [a["agent_id"] for a in every.json()["availabilities"]] == ["a-1", "a-2"]
    table = await wfm("status", "list", "--team", "pune-night")
    assert "after-contact-work" in table.stdout
    assert "2 agents: 1 break, 1 after-contact-work; productive now 1/2" in table.stdout

    stale = await wfm("status", "set", "lunch", "--expected-version", "0", token=me)
    assert stale.exit_code == exitcodes.CONFLICT

    bad = await wfm("status", "set", "break", "--reason", "coffee!", token=me)
    assert bad.exit_code == exitcodes.INVALID_ARGUMENT and "  reason_code: " in bad.stderr
    unknown = await wfm("status", "set", "napping", token=me)
    assert unknown.exit_code == exitcodes.USAGE and "unknown status 'napping'" in unknown.stderr
    other = await wfm("status", "set", "offline", "--agent", "a-2", token=me)
    assert other.exit_code == exitcodes.PERMISSION_DENIED
    assert "may not call SetStatus" in other.stderr
    anonymous = await wfm("status", "get", "--agent", "a-1", token="")
    assert anonymous.exit_code == exitcodes.UNAUTHENTICATED
    assert "hint: give a token" in anonymous.stderr
    assert (await wfm("status", "get", "--json", token=me)).json()["version"] == "1"
    huddle = await wfm("status", "set", "meeting", "--reason", "team huddle", "--json", token=me)
    assert huddle.json()["reason_code"] == "TEAM_HUDDLE", huddle.stderr  # as a code is kept


async def test_board_once_and_history(wfm: Cli, system: System) -> None:
    await _floor(wfm, system, ["a-1", "a-2"])
    await wfm("status", "set", "available", token=wfm.token("a-1", "agent"))
    await wfm("status", "set", "on-contact", token=wfm.token("a-1", "agent"))

    leader = wfm.token("tl-1", "team_leader", teams=("pune-night",))
    await eventually(  # the board is a view, a few milliseconds behind the change
        lambda: wfm("board", "--team", "pune-night", "--once", "--json", token=leader),
        lambda r: r.json()["availabilities"][0]["status"] == "AGENT_STATUS_ON_CONTACT",
    )
    board = await wfm("board", "--team", "pune-night", "--once", token=leader)
    assert board.exit_code == 0, board.stderr
    assert "board: teams/pune-night" in board.stdout
    # The client's clock is New York's: EST or EDT, as of the day the test runs.
    assert "on-contact" in board.stdout and " IST " in board.stdout
    assert re.search(" E[SD]T ", board.stdout)
    assert "2 agents: 1 on-contact, 1 offline; productive now 1/2" in board.stdout
    shape = (await wfm("board", "--team", "pune-night", "--once", "--json", token=leader)).json()
    assert [a["agent_id"] for a in shape["availabilities"]] == ["a-1", "a-2"]
    assert set(shape["availabilities"][0]) == AVAILABILITY_KEYS
    mine = await wfm("board", "--once", "--json", token=leader)  # a leader's own team
    assert [a["agent_id"] for a in mine.json()["availabilities"]] == ["a-1", "a-2"]
    elsewhere = await wfm("board", "--team", "uk-wfh", "--once", token=leader)
    assert elsewhere.exit_code == exitcodes.PERMISSION_DENIED

    await eventually(
        lambda: wfm("history", "--agent", "a-1", "--json"),
        lambda r: len(r.json()["segments"]) == 2,
    )
    history = await wfm("history", token=wfm.token("a-1", "agent"))
    assert history.exit_code == 0, history.stderr
    assert "history of a-1" in history.stdout and "ongoing" in history.stdout
    assert history.stdout.count(" IST ") == 2 and len(re.findall(" E[SD]T ", history.stdout)) == 2
    assert "productive " in history.stdout
    named = await wfm("history", "a-1", "--json")  # the agent first, as in `wfm roster a-1`
    assert [x["status"] for x in named.json()["segments"]] == [
        x["status"] for x in (await wfm("history", "--agent", "a-1", "--json")).json()["segments"]
    ]
    assert (await wfm("status", "get", "a-1", "--json")).json()["agent_id"] == "a-1"
    both = await wfm("status", "get", "a-1", "--agent", "a-2")
    assert both.exit_code == exitcodes.USAGE and "two agents given" in both.stderr
    data = (await wfm("history", "--agent", "a-1", "--hours", "1", "--json")).json()
    assert set(data) == {"segments", "totals", "productive_duration", "covered_duration"}
    assert [s["status"] for s in data["segments"]] == [
        "AGENT_STATUS_AVAILABLE",
        "AGENT_STATUS_ON_CONTACT",
    ]
    too_long = await wfm(
        "history", "--agent", "a-1", "--start", "2026-01-01", "--end", "2026-02-15"
    )
    assert too_long.exit_code == exitcodes.INVALID_ARGUMENT
    assert "  end_time: must be at most 31 days after start_time" in too_long.stderr


async def test_audit_list(wfm: Cli, system: System) -> None:
    await _floor(wfm, system, ["a-1"])
    await wfm("status", "set", "break", token=wfm.token("a-1", "agent"))
    await wfm("courses", "create", "c-1", "--title", "Course one", token=wfm.token("hr-1", "hr"))
    run = await eventually(  # audit records are written just after the answer
        lambda: wfm("audit", "list", "--json"), lambda r: len(r.json()["records"]) == 4
    )
    records = run.json()
    assert set(records) == {"records", "next_page_tokens"}
    methods = [r["method"].rsplit("/", 1)[-1] for r in records["records"]]
    assert methods == ["CreateCourse", "SetStatus", "CreateAgent", "CreateTeam"]  # newest first
    assert [r["service"] for r in records["records"]][:2] == ["training", "availability"]
    course = await wfm("audit", "list", "--target", "courses/c-1", "--json")
    assert [(r["method"].rsplit("/", 1)[-1], r["targets"]) for r in course.json()["records"]] == [
        ("CreateCourse", ["courses/c-1"])
    ]
    about = await wfm("audit", "list", "--target", "agents/a-1", "--service", "availability")
    assert "SetStatus" in about.stdout and "CreateAgent" not in about.stdout
    refused = await wfm("audit", "list", token=wfm.token("a-1", "agent"))
    assert refused.exit_code == exitcodes.PERMISSION_DENIED


async def test_demo_seeds_once(
    wfm: Cli, perf_system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await wfm("demo", "--agents-per-team", "3", "--json")
    assert first.exit_code == 0, first.stderr
    result = first.json()
    seeded = result["seeded"]
    # 3 agents a team: Pune 2 full-time (5 nights a week) + 1 part-time (2); UK 2 full-time
    # (5 days) + 1 part-time evening (3). Two weeks of each.
    assert (seeded["sites"], seeded["shift patterns"], seeded["shifts"]) == (2, 8, 56)
    # From tomorrow: 2 weeks published a team when that is a Monday, else 3.
    assert seeded["weeks published"] in {4, 6}
    assert (seeded["courses"], seeded["sessions"], seeded["open sessions"]) == (3, 6, 2)
    ahead = (await wfm("sessions", "list", "--course", "gdpr-2026", "--json")).json()["sessions"]
    assert [(s["seats_taken"], s["state"]) for s in ahead] == [(0, "SESSION_STATE_SCHEDULED")] * 2
    assert seeded["cases"] > 30 and seeded["completions"] == 6
    assert seeded["red-flag limits"] == 2 and seeded["no-shows"] == 6
    limits = (await wfm("flags", "thresholds", "get", "uk-wfh", "--json")).json()
    assert limits["min_sla_compliance_percent"] == 80.0 and limits["version"] == "1"
    shifts = [s for day in result["roster"]["days"] for s in day["shifts"]]
    assert len(shifts) == 10 and {s["state"] for s in shifts} == {"SHIFT_STATE_PUBLISHED"}
    today = datetime.now(UTC).date().isoformat()
    assert min(s["roster_date"] for s in shifts) > today  # none before the floor existed
    card = result["scorecard"]["metrics"]
    assert not card.get("no_shows")  # so nobody missed a shift in it
    assert re.search(r"T08:00:00-0[45]:00$", shifts[0]["start_client_local"]["local_time"])
    assert result["transcript"]["completions"] and result["scorecard"]["metrics"]["cases_resolved"]
    assert any(i["gap"] > 0 for i in result["coverage"]["intervals"])  # lunch leaves gaps
    assert result["seeded"]["teams"] == 2 and result["seeded"]["agents"] == 6
    assert set(result["boards"]) == {"pune-night", "uk-wfh"}
    assert all(a["version"] != "0" for rows in result["boards"].values() for a in rows)
    assert result["history"]["agent"] == "p-1001" and result["history"]["segments"]

    async def due() -> set[tuple[str, str, str]]:
        found = set()
        for team in ("pune-night", "uk-wfh"):
            run = await wfm("due", "--team", team, "--json")
            assert run.exit_code == 0, run.stderr
            found |= {(d["agent"], d["course"], d["reason"]) for d in run.json()["due"]}
        return found

    # The compliance course is required for both clients; the second agent of each team was
    # not in its class.
    required = {
        (f"agents/{agent}", "courses/gdpr-2026", "DUE_REASON_REQUIRED")
        for agent in ("p-1002", "u-2002")
    }
    await eventually(due, lambda found: required <= found)

    second = (await wfm("demo", "--agents-per-team", "3", "--json")).json()
    assert second["seeded"] == seeded  # the same floor, nothing added
    versions = {a["agent_id"]: a["version"] for rows in result["boards"].values() for a in rows}
    again = {a["agent_id"]: a["version"] for rows in second["boards"].values() for a in rows}
    assert again == versions  # no status change applied twice
    assert len((await wfm("agents", "list", "--json")).json()["agents"]) == 6  # settled by now
    assert [t["version"] for t in (await wfm("teams", "list", "--json")).json()["teams"]] == [
        "1",
        "1",
    ]

    # A week later the same floor gets that week's classes: nobody is left in progress on last
    # week's (each has a result or is a no-show), so the same agents can be booked again.
    # The training service's clock moves on with it: this week's classes are last week's then,
    # so their check-in is open whatever the weekday of the run (it opens an hour before each).
    next_week = demo_floor.week_start() + timedelta(days=7)
    monkeypatch.setattr(demo_floor, "week_start", lambda today=None: next_week)
    with training_clock_at(utc_now() + timedelta(days=7)):
        later = await wfm("demo", "--agents-per-team", "3", "--json")
    assert later.exit_code == 0, later.stderr
    assert (later.json()["seeded"]["sessions"], later.json()["seeded"]["no-shows"]) == (6, 6)
    ahead = await wfm("sessions", "list", "--from", f"{next_week}", "--json")
    assert len(ahead.json()["sessions"]) == 4  # both runs' open compliance classes


async def test_demo_over_another_versions_floor_says_what_to_do(wfm: Cli, system: System) -> None:
    """The demo's fixed keys answered for other requests (a floor an older wfm seeded)."""
    older = await wfm(
        "teams", "create", "pune-night", *TEAM, "--idempotency-key", "demo-team-pune-night"
    )
    assert older.exit_code == 0, older.stderr
    run = await wfm("demo", "--agents-per-team", "1")
    assert run.exit_code == exitcodes.INVALID_ARGUMENT
    assert "another version of wfm" in run.stderr and "remove .local/run/default" in run.stderr


def _installed_wfm() -> Path:
    script = Path(sys.executable).parent / "wfm"
    if not script.exists():
        pytest.skip("the wfm console script is not installed (make bootstrap)")
    return script


@pytest.mark.own_clock
async def test_installed_command_from_another_folder(system: System, tmp_path: Path) -> None:
    """The console script as a person runs it: outside the repository, configured only by the
    environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.update({k: v for k, v in CLEAN_ENV.items() if v is not None})
    env.update(
        {
            "WFM_AVAILABILITY_ADDR": f"127.0.0.1:{system.availability.port}",
            "WFM_SCHEDULING_ADDR": f"127.0.0.1:{system.scheduling.port}",
            "WFM_PLAINTEXT": "1",
            "WFM_TOKEN": system.minter.token("admin-1", "admin"),
        }
    )
    help_run = await _run([str(_installed_wfm()), "--help"], env, tmp_path)
    assert help_run.returncode == 0 and "board" in help_run.stdout
    listed = await _run([str(_installed_wfm()), "teams", "list", "--json"], env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip().startswith("{") and '"teams": []' in listed.stdout


async def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    import asyncio

    return await asyncio.to_thread(
        subprocess.run, args, env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )
