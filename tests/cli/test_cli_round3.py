"""Round 3 of the CLI against the real services: `wfm leave cancel`, `wfm shifts update`,
`wfm coverage set`, `wfm roster --team`, `wfm flags thresholds get|set` and `wfm explain`."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests import roster_helpers as h
from tests.cli.conftest import Cli
from tests.cli.test_cli_performance import _cases_file, _team
from tests.conftest import System
from tests.integration.test_leave_withdrawal import _monday_ahead
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


async def test_an_agent_withdraws_leave_but_not_a_denied_request(wfm: Cli, system: System) -> None:
    await _floor(system)
    me = wfm.token("p-2", "agent")
    monday = _monday_ahead()  # leave an agent may still withdraw, whenever this runs
    # Two days: the same day twice is refused (LEAVE_OVERLAP).
    for leave, day in (("trip", monday), ("late", monday + timedelta(days=1))):
        asked = await wfm(
            "leave", "request", "--from", day.isoformat(), "--leave-id", leave, token=me
        )
        assert asked.exit_code == 0, asked.stderr
    withdrawn = await wfm(
        "leave", "cancel", "trip", "--reason", "plans changed", "--json", token=me
    )
    assert withdrawn.exit_code == 0, withdrawn.stderr
    assert withdrawn.json()["name"] == "agents/p-2/leaveRequests/trip"
    assert withdrawn.json()["state"] == "LEAVE_STATE_CANCELLED"
    scheduler = wfm.token("sched-1", "scheduler")
    denied = await wfm("leave", "deny", "agents/p-2/leaveRequests/late", "--reason", "peak")
    assert denied.exit_code == 0, denied.stderr
    refused = await wfm("leave", "cancel", "late", token=me)
    assert refused.exit_code == exitcodes.FAILED_PRECONDITION
    assert "LEAVE_DECIDED" in refused.stderr
    ghost = await wfm("leave", "cancel", "agents/p-2/leaveRequests/none", token=scheduler)
    assert ghost.exit_code == exitcodes.NOT_FOUND, ghost.stderr

    async def cancelled() -> str:
        run = await wfm("leave", "list", "--team", h.TEAM, "--state", "cancelled", "--json")
        return run.stdout

    shown = await eventually(cancelled, lambda out: "trip" in out)
    assert [r["name"] for r in json.loads(shown)["leave_requests"]] == [
        "agents/p-2/leaveRequests/trip"
    ]


async def test_a_shift_moves_and_a_dry_run_names_the_broken_rule(wfm: Cli, system: System) -> None:
    await _floor(system)
    scheduler = wfm.token("sched-1", "scheduler")
    for shift, day in (("s1", WEEK), ("s2", "2027-03-02")):
        made = await wfm(
            "shifts", "assign", "p-1", "--date", day, "--pattern", "us-day", "--shift-id", shift,
            token=scheduler,
        )  # fmt: skip
        assert made.exit_code == 0, made.stderr
    clash = await wfm(
        "shifts", "update", "agents/p-1/shifts/s2", "--date", WEEK, "--pattern", "us-day",
        "--dry-run", token=scheduler,
    )  # fmt: skip
    assert clash.exit_code == exitcodes.FAILED_PRECONDITION, clash.stdout + clash.stderr
    assert "dry run: nothing changed; the shift would be refused" in clash.stdout
    moved = await wfm(
        "shifts", "update", "agents/p-1/shifts/s2", "--date", "2027-03-03", "--start", "09:00",
        "--hours", "6", "--client-clock", "--json", token=scheduler,
    )  # fmt: skip
    assert moved.exit_code == 0, moved.stderr
    [shift] = [s for s in moved.json()["shifts"] if s["name"] == "agents/p-1/shifts/s2"]
    assert shift["roster_date"] == "2027-03-03" and shift["paid_minutes"] < 6 * 60 + 1
    assert shift["start_client_local"]["local_time"].startswith("2027-03-03T09:00")
    stale = await wfm(
        "shifts", "update", "agents/p-1/shifts/s2", "--date", "2027-03-04", "--pattern", "us-day",
        "--version", "1", token=scheduler,
    )  # fmt: skip
    assert stale.exit_code == exitcodes.CONFLICT, stale.stderr


async def test_coverage_set_flat_from_a_file_and_from_a_forecast(
    wfm: Cli, system: System, tmp_path: Path
) -> None:
    await _floor(system)
    flat = await wfm(
        "coverage", "set", h.TEAM, "--date", WEEK, "--value", "2", "--from", "08:00",
        "--to", "17:00", "--json",
    )  # fmt: skip
    assert flat.exit_code == 0, flat.stderr
    assert flat.json()["required"] == [0] * 16 + [2] * 18 + [0] * 14

    async def chart() -> dict[str, Any]:
        return dict((await wfm("coverage", h.TEAM, "--date", WEEK, "--json")).json())

    shown = await eventually(chart, lambda c: any(i["required"] == 2 for i in c["intervals"]))
    assert sum(i["required"] for i in shown["intervals"]) == 36

    values = tmp_path / "required.txt"
    values.write_text(" ".join(["1"] * 96))
    listed = await wfm(
        "coverage", "set", h.TEAM, "--weekday", "tue", "--interval", "15", "--file", str(values)
    )
    assert listed.exit_code == 0, listed.stderr
    assert "96 intervals of 15 min, 96 staffed, peak 1 agents" in listed.stdout

    forecast = tmp_path / "forecast.json"
    contacts = [0] * 18 + [60] * 16 + [0] * 14
    model = {"average_handle_seconds": 300, "service_level": 0.8, "target_answer_seconds": 20}
    forecast.write_text(json.dumps({"contacts": contacts, **model}))
    sized = await wfm("coverage", "set", h.TEAM, "--weekday", "wed", "--forecast", str(forecast),
                      "--json")  # fmt: skip
    assert sized.exit_code == 0, sized.stderr
    required = sized.json()["required"]
    assert required[:18] == [0] * 18 and all(n >= 11 for n in required[18:34])  # 10 Erlangs

    short = tmp_path / "short.txt"
    short.write_text("1 2 3")
    wrong = await wfm("coverage", "set", h.TEAM, "--weekday", "thu", "--file", str(short))
    assert wrong.exit_code == exitcodes.INVALID_ARGUMENT, wrong.stderr


async def test_a_team_roster_comes_in_pages_and_as_a_table(wfm: Cli, system: System) -> None:
    await _floor(system)
    scheduler = wfm.token("sched-1", "scheduler")
    bulk = await wfm(
        "shifts", "bulk-assign", "--pattern", "us-day", "--team", h.TEAM,
        "--from", WEEK, "--to", "2027-03-03", token=scheduler,
    )  # fmt: skip
    assert bulk.exit_code == 0, bulk.stderr

    async def team_week() -> dict[str, list[dict[str, object]]]:
        run = await wfm(
            "roster", "--team", h.TEAM, "--week", WEEK, "--page-size", "1", "--json",
            token=scheduler,
        )  # fmt: skip
        assert run.exit_code == 0, run.stderr
        return dict(run.json())

    found = await eventually(
        team_week,
        lambda r: sum(len(a["shifts"]) for a in r["agents"]) == 9,  # type: ignore[arg-type,misc]
    )
    assert [a["agent"] for a in found["agents"]] == [f"agents/{a}" for a in AGENTS]
    table = await wfm("roster", "--team", h.TEAM, "--week", WEEK, token=scheduler)
    assert "3 agents, 9 shifts" in table.stdout and "p-3" in table.stdout
    assert "08:00 EST" in table.stdout and "draft" in table.stdout
    later = await wfm("roster", "--team", h.TEAM, "--week", "2027-03-08", token=scheduler)
    assert "3 agents, 0 shifts; 3 not scheduled" in later.stdout  # members listed all the same
    assert later.stdout.count("not scheduled") == 4


async def test_thresholds_set_and_get_and_a_figure_explained(
    wfm: Cli, perf_system: System, tmp_path: Path
) -> None:
    system = perf_system
    await _team(system, ["a1", "a2"])
    set_ = await wfm(
        "flags", "thresholds", "set", "night", "--limit", "MIN_SLA_Compliance_Percent=95",
        "--limit", "max-late-logins=3", "--json",
    )  # fmt: skip
    assert set_.exit_code == 0, set_.stderr  # metric names in any case, '-' or '_'
    assert set_.json()["min_sla_compliance_percent"] == 95.0
    assert set_.json()["max_late_logins"] == 3.0

    async def current() -> str:
        got = await wfm("flags", "thresholds", "get", "night")
        assert got.exit_code == 0, got.stderr
        return got.stdout

    shown = await eventually(current, lambda out: "(version 1)" in out)
    assert "min sla compliance percent" in shown and "95" in shown
    assert "not flagged" in shown  # the limits left out
    bad = await wfm("flags", "thresholds", "set", "night", "--limit", "speed=3")
    assert bad.exit_code == exitcodes.USAGE and "min_adherence_percent" in bad.stderr
    stale = await wfm("flags", "thresholds", "set", "night", "--version", "99")
    assert stale.exit_code == exitcodes.CONFLICT, stale.stderr

    path, day = _cases_file(tmp_path)
    assert (await wfm("cases", "record", str(path))).exit_code == 0
    leader = wfm.token("tl-1", "team_leader", teams=("night",))
    period = ["--from", day, "--to", day]

    async def explained() -> dict[str, object]:
        run = await wfm("explain", "a1", "sla_compliance_percent", *period, "--json", token=leader)
        assert run.exit_code == 0, run.stderr
        return dict(run.json())

    found = await eventually(explained, lambda e: len(e.get("cases", [])) == 2)  # type: ignore[arg-type]
    assert found["value"] == 50.0
    table = await wfm("explain", "a1", "SLA_Compliance_Percent", *period, token=leader)
    assert "a1 sla compliance percent: 50.0%" in table.stdout  # as on the scorecard
    assert "missed" in table.stdout and "met" in table.stdout
    unknown = await wfm("explain", "a1", "speed", token=leader)
    assert unknown.exit_code == exitcodes.USAGE and "adherence_percent" in unknown.stderr
