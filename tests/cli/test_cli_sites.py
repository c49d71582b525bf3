"""`wfm sites|patterns` and a team's operating hours and rest, as a scheduler sets up a floor
from the command line, against the real scheduling service: what is set up then decides
what `wfm shifts assign` accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import roster_helpers as h
from tests.cli.conftest import Cli
from tests.conftest import System
from wfm_cli import exitcodes

pytestmark = pytest.mark.integration

MONDAY = "2027-03-01"  # New York on EST, London on GMT: no DST change that week
SUNDAY = "2027-03-07"


def _scheduler(wfm: Cli) -> str:
    return wfm.token("sched-1", "scheduler")


async def test_a_site_and_its_holidays_set_and_read_back_keep_agents_off_them(
    wfm: Cli, system: System, tmp_path: Path
) -> None:
    me = _scheduler(wfm)
    made = await wfm(
        "sites", "create", "pune", "--name", "Pune", "--zone", "Asia/Kolkata", token=me
    )
    assert made.exit_code == 0, made.stderr
    assert "sites/pune: Pune (Asia/Kolkata), version 1" in made.stdout
    assert "no public holidays" in made.stdout
    set_2027 = await wfm(
        "sites", "holidays", "pune", "--year", "2027", "--holiday", "2027-03-04=Holi",
        "--holiday", "2027-01-26=Republic Day", "--version", "1", "--json", token=me,
    )  # fmt: skip
    assert set_2027.exit_code == 0, set_2027.stderr
    assert set_2027.json()["public_holidays"] == [
        {"date": "2027-01-26", "display_name": "Republic Day"},
        {"date": "2027-03-04", "display_name": "Holi"},
    ]
    listed = tmp_path / "pune-2028.txt"
    listed.write_text("# Pune 2028\n2028-01-26 Republic Day\n2028-08-15=Independence Day\n")
    set_2028 = await wfm("sites", "holidays", "pune", "--year", "2028", "--file", str(listed))
    assert set_2028.exit_code == 0, set_2028.stderr

    shown = await wfm("sites", "get", "pune", token=wfm.token("p-1", "agent"))
    assert shown.exit_code == 0, shown.stderr
    assert "sites/pune: Pune (Asia/Kolkata), version 3" in shown.stdout
    for row in ("2027-01-26 │ tue │ Republic Day", "2027-03-04 │ thu │ Holi",
                "2028-08-15 │ tue │ Independence Day"):  # fmt: skip
        assert row in shown.stdout
    only = await wfm("sites", "get", "pune", "--year", "2028", "--json")
    assert [d["date"] for d in only.json()["public_holidays"]] == ["2028-01-26", "2028-08-15"]

    stale = await wfm("sites", "holidays", "pune", "--year", "2027", "--holiday", "2027-12-25",
                      "--version", "1", token=me)  # fmt: skip
    assert stale.exit_code == exitcodes.CONFLICT, stale.stderr
    # The holiday keeps a Pune agent off the floor: a shift starting on it is refused.
    await h.add_team(system)
    await h.add_agent(system, "p-1")
    await h.add_night_pattern(h.roster_stub(system))
    holi = await wfm("shifts", "assign", "p-1", "--date", "2027-03-04", "--pattern", "us-day",
                     token=me)  # fmt: skip
    assert holi.exit_code == exitcodes.FAILED_PRECONDITION
    assert "PUBLIC_HOLIDAY" in holi.stderr and "2027-03-04" in holi.stderr


async def test_a_pattern_made_with_the_cli_gives_shifts_at_the_right_local_times(
    wfm: Cli, system: System
) -> None:
    await h.add_team(system)  # New York client, open 08:00-17:00 every day
    for agent in ("p-1", "p-2"):
        await h.add_agent(system, agent)  # in Pune
    me = _scheduler(wfm)
    made = await wfm(
        "patterns", "create", "ny-day", "--name", "New York day", "--start", "08:00",
        "--hours", "9", "--client-clock", "--days", "mon-fri", "--break", "2h:15",
        "--lunch", "4h:30", "--json", token=me,
    )  # fmt: skip
    assert made.exit_code == 0, made.stderr
    pattern = made.json()
    assert pattern["anchor"] == "ANCHOR_CLIENT" and pattern["length_minutes"] == 540
    assert pattern["iso_weekdays"] == [1, 2, 3, 4, 5]
    assert [(a["kind"], a["offset_minutes"], a["length_minutes"], a["paid"])
            for a in pattern["activities"]] == [
        ("ACTIVITY_KIND_BREAK", 120, 15, True), ("ACTIVITY_KIND_LUNCH", 240, 30, False)
    ]  # fmt: skip
    shown = await wfm("patterns", "get", "ny-day")
    assert shown.exit_code == 0, shown.stderr
    assert "08:00-17:00 (9h)" in shown.stdout and "client" in shown.stdout
    assert "mon-fri" in shown.stdout and "lunch 12:00-12:30 unpaid (+4h00)" in shown.stdout

    one = await wfm("shifts", "assign", "p-1", "--date", MONDAY, "--pattern", "ny-day",
                    "--json", token=me)  # fmt: skip
    assert one.exit_code == 0, one.stderr
    shift = one.json()["shifts"][0]
    assert shift["start_client_local"]["local_time"].startswith(f"{MONDAY}T08:00")
    assert shift["start_agent_local"]["local_time"].startswith(f"{MONDAY}T18:30")  # IST
    assert shift["end_agent_local"]["local_time"].startswith("2027-03-02T03:30")
    assert shift["paid_minutes"] == 510  # the lunch is unpaid, the break paid

    # On the agent's clock: 18:30 IST is 08:00 in New York, inside the team's hours.
    evening = await wfm(
        "patterns", "create", "pune-evening", "--name", "Pune evening", "--start", "18:30",
        "--hours", "9", "--agent-clock", "--days", "tue", "--json", token=me,
    )  # fmt: skip
    assert evening.exit_code == 0 and evening.json()["anchor"] == "ANCHOR_AGENT"
    two = await wfm("shifts", "assign", "p-1", "--date", "2027-03-02", "--pattern",
                    "pune-evening", "--json", token=me)  # fmt: skip
    assert two.exit_code == 0, two.stderr
    assert two.json()["shifts"][0]["start_client_local"]["local_time"].startswith(
        "2027-03-02T08:00"
    )
    week = await wfm("shifts", "bulk-assign", "--pattern", "ny-day", "--agent", "p-2",
                     "--from", MONDAY, "--to", SUNDAY, "--json", token=me)  # fmt: skip
    assert week.exit_code == 0, week.stderr
    assert week.json()["assigned_shifts"] == 5  # --days mon-fri: not the weekend


async def test_operating_hours_and_rest_set_with_the_cli_decide_what_is_accepted(
    wfm: Cli, system: System
) -> None:
    made = await wfm(
        "teams", "create", "late", "--name", "London late", "--client-zone", "Europe/London",
        "--open", "mon-fri 18:00-02:00", "--open", "sat 10:00-14:00", "--min-rest-hours", "12",
    )  # fmt: skip
    assert made.exit_code == 0, made.stderr
    await system.add_agent("l-1", "late", zone="Europe/London")
    shown = await wfm("teams", "get", "late")
    assert "mon-fri 18:00-02:00" in shown.stdout and "sat 10:00-14:00" in shown.stdout
    assert "12h" in shown.stdout
    me = _scheduler(wfm)

    async def assign(day: str, start: str, hours: str) -> tuple[int, str]:
        run = await wfm("shifts", "assign", "l-1", "--date", day, "--start", start,
                        "--hours", hours, "--client-clock", token=me)  # fmt: skip
        return run.exit_code, run.stderr

    assert await assign(MONDAY, "19:00", "6") == (0, "")  # 19:00 to 01:00, past midnight
    code, why = await assign("2027-03-02", "09:00", "8")  # a day shift
    assert code == exitcodes.FAILED_PRECONDITION and "OPERATING_HOURS" in why
    code, why = await assign(SUNDAY, "19:00", "6")  # Sunday is closed
    assert code == exitcodes.FAILED_PRECONDITION and "OPERATING_HOURS" in why

    rest = await wfm("teams", "update", "late", "--min-rest-hours", "20", "--version", "1",
                     token=me)  # fmt: skip
    assert rest.exit_code == 0, rest.stderr
    code, why = await assign("2027-03-02", "19:00", "6")  # 18 h after Monday's shift ended
    assert code == exitcodes.FAILED_PRECONDITION and "MIN_REST" in why

    stale = await wfm("teams", "update", "late", "--no-hours", "--version", "1", token=me)
    assert stale.exit_code == exitcodes.CONFLICT, stale.stderr
    unchanged = (await wfm("teams", "get", "late", "--json")).json()
    assert unchanged["version"] == "2" and len(unchanged["operating_hours"]) == 6
    assert unchanged["min_rest_minutes"] == 1200

    cleared = await wfm("teams", "update", "late", "--no-hours", "--version", "2", token=me)
    assert cleared.exit_code == 0, cleared.stderr
    assert "any time" in cleared.stdout
    assert await assign(SUNDAY, "19:00", "6") == (0, "")


async def test_bad_input_is_named_and_changes_nothing(wfm: Cli, system: System) -> None:
    await h.add_team(system)
    before = (await wfm("teams", "get", h.TEAM, "--json")).json()

    async def refused(*args: str) -> tuple[int, str]:
        run = await wfm(*args)
        assert run.stdout == "", run.stdout
        return run.exit_code, run.stderr

    code, why = await refused("teams", "update", h.TEAM, "--open", "mon-fry 08:00-17:00")
    assert code == exitcodes.USAGE and "--open: 'fry' is not a weekday" in why
    code, why = await refused("teams", "update", h.TEAM, "--open", "mon-fri 08:00-25:00")
    assert code == exitcodes.USAGE and "--open: a time HH:MM" in why
    code, why = await refused("teams", "update", h.TEAM, "--open", "mon 08:00-12:00",
                              "--open", "mon-fri 13:00-17:00")  # fmt: skip
    assert code == exitcodes.USAGE and "mon is given twice" in why
    code, why = await refused("teams", "update", h.TEAM, "--no-hours", "--open", "mon 08:00-12:00")
    assert code == exitcodes.USAGE and "not both" in why
    code, why = await refused("teams", "update", h.TEAM)
    assert code == exitcodes.USAGE and "nothing to change" in why
    code, why = await refused("teams", "create", "other", "--name", "x", "--client-zone", "UTC",
                              "--open", "weekdays 08:00-17:00")  # fmt: skip
    assert code == exitcodes.USAGE and "--open" in why
    assert (await wfm("teams", "get", h.TEAM, "--json")).json() == before
    assert (await wfm("teams", "get", "other")).exit_code == exitcodes.NOT_FOUND

    code, why = await refused("patterns", "create", "p1", "--name", "x", "--start", "8am",
                              "--hours", "8")  # fmt: skip
    assert code == exitcodes.USAGE and "--start: a time HH:MM" in why
    code, why = await refused("patterns", "create", "p1", "--name", "x", "--start", "08:00",
                              "--hours", "8", "--days", "mon-fryday")  # fmt: skip
    assert code == exitcodes.USAGE and "--days: 'fryday' is not a weekday" in why
    code, why = await refused("patterns", "create", "p1", "--name", "x", "--start", "08:00",
                              "--hours", "8", "--lunch", "4h-30")  # fmt: skip
    assert code == exitcodes.USAGE and "--lunch: OFFSET:LENGTH" in why
    code, why = await refused("patterns", "create", "p1", "--name", "x", "--start", "08:00",
                              "--hours", "20")  # fmt: skip
    assert code == exitcodes.INVALID_ARGUMENT and "shift_pattern.length_minutes" in why
    code, why = await refused("patterns", "create", "p1", "--name", "x", "--start", "08:00",
                              "--hours", "8", "--lunch", "7h30:1h")  # fmt: skip
    assert code == exitcodes.INVALID_ARGUMENT and "shift_pattern.activities[0]" in why
    code, why = await refused("patterns", "create", "p1", "--name", "x", "--start", "08:00",
                              "--hours", "8", "--break", "2h:15", "--lunch", "2h10:30")  # fmt: skip
    assert code == exitcodes.INVALID_ARGUMENT, why  # lunch would start inside the break
    assert "shift_pattern.activities[1]: overlaps shift_pattern.activities[0]" in why
    assert (await wfm("patterns", "get", "p1")).exit_code == exitcodes.NOT_FOUND

    code, why = await refused("sites", "create", "Bad Site", "--name", "x", "--zone", "Mars/Base")
    assert code == exitcodes.INVALID_ARGUMENT and "site.time_zone" in why and "site_id" in why
    assert (await wfm("sites", "create", "pune", "--name", "Pune", "--zone", "Asia/Kolkata")
            ).exit_code == 0  # fmt: skip
    code, why = await refused("sites", "holidays", "pune", "--year", "2027", "--holiday",
                              "2027-02-30=Nope")  # fmt: skip
    assert code == exitcodes.USAGE and "--holiday: no such date: 2027-02-30" in why
    code, why = await refused("sites", "holidays", "pune", "--year", "2027", "--holiday",
                              "2026-12-25")  # fmt: skip
    assert code == exitcodes.USAGE and "2026-12-25 is not in 2027" in why
    code, why = await refused("sites", "holidays", "pune", "--year", "2027")
    assert code == exitcodes.USAGE and "--holiday (repeatable) or --file" in why
    site = (await wfm("sites", "get", "pune", "--json")).json()
    assert site["version"] == "1" and site["public_holidays"] == []


def _rows(table: str) -> dict[str, list[str]]:
    """The rows of a printed table (the header first) by their first cell: every cell, stripped;
    a cell's second line is left out."""
    rows = {}
    for line in table.splitlines():
        bar = line[:1]
        if bar in ("│", "┃"):
            cells = [c.strip() for c in line.strip(bar).split(bar)]
            if cells[0]:
                rows[cells[0]] = cells
    return rows


def _more(stdout: str) -> str:
    """The token of the `more: --page-token T` line."""
    [line] = [x for x in stdout.splitlines() if x.startswith("more: --page-token ")]
    return line.removeprefix("more: --page-token ")


async def test_sites_are_listed_by_id_a_page_at_a_time_or_all(wfm: Cli) -> None:
    agent = wfm.token("p-1", "agent")
    empty = await wfm("sites", "list", token=agent)
    assert (empty.exit_code, empty.stdout) == (0, "no sites\n")
    me = _scheduler(wfm)
    for site, name, zone in (("pune", "Pune", "Asia/Kolkata"), ("leeds", "Leeds", "Europe/London"),
                             ("manila", "Manila", "Asia/Manila")):  # fmt: skip
        made = await wfm("sites", "create", site, "--name", name, "--zone", zone, token=me)
        assert made.exit_code == 0, made.stderr
    for year, days in (("2027", ["2027-01-26=Republic Day", "2027-03-04=Holi"]),
                       ("2028", ["2028-01-26=Republic Day"])):  # fmt: skip
        holidays = [x for day in days for x in ("--holiday", day)]
        done = await wfm("sites", "holidays", "pune", "--year", year, *holidays, token=me)
        assert done.exit_code == 0, done.stderr

    # Listed at once (the service shows its own changes), to anyone signed in.
    shown = await wfm("sites", "list", token=agent)
    assert shown.exit_code == 0, shown.stderr
    rows = _rows(shown.stdout)
    assert list(rows) == ["site", "leeds", "manila", "pune"]
    assert rows["site"] == ["site", "name", "zone", "public holidays", "version"]
    assert rows["pune"] == ["pune", "Pune", "Asia/Kolkata", "2027: 2, 2028: 1", "3"]
    assert rows["leeds"] == ["leeds", "Leeds", "Europe/London", "none", "1"]
    assert "more:" not in shown.stdout

    first = await wfm("sites", "list", "--page-size", "2")
    assert list(_rows(first.stdout))[1:] == ["leeds", "manila"]
    rest = await wfm("sites", "list", "--page-size", "2", "--page-token", _more(first.stdout),
                     "--json")  # fmt: skip
    assert rest.exit_code == 0, rest.stderr
    assert [s["name"] for s in rest.json()["sites"]] == ["sites/pune"]
    assert rest.json()["next_page_token"] == ""
    every = (await wfm("sites", "list", "--all", "--page-size", "1", "--json")).json()
    assert [(s["name"], s["version"]) for s in every["sites"]] == [
        ("sites/leeds", "1"), ("sites/manila", "1"), ("sites/pune", "3")
    ]  # fmt: skip
    assert every["sites"][2]["public_holidays"][1] == {"date": "2027-03-04", "display_name": "Holi"}

    bad = await wfm("sites", "list", "--page-token", "not-a-token!")
    assert bad.exit_code == exitcodes.INVALID_ARGUMENT and bad.stdout == ""
    assert "page_token" in bad.stderr


async def test_patterns_are_listed_by_id_and_by_clock(wfm: Cli) -> None:
    assert (await wfm("patterns", "list")).stdout == "no shift patterns\n"
    me = _scheduler(wfm)
    for args in (
        ["ny-day", "--name", "New York day", "--start", "08:00", "--hours", "9", "--client-clock",
         "--break", "2h:15", "--lunch", "4h:30"],
        ["pune-evening", "--name", "Pune evening", "--start", "18:30", "--hours", "9",
         "--agent-clock", "--days", "tue"],
        ["uk-late", "--name", "UK late", "--start", "14:00", "--hours", "8", "--client-clock",
         "--days", "sat,sun"],
    ):  # fmt: skip
        made = await wfm("patterns", "create", *args, token=me)
        assert made.exit_code == 0, made.stderr

    shown = await wfm("patterns", "list", token=wfm.token("tl-1", "team_leader", teams=("t1",)))
    assert shown.exit_code == 0, shown.stderr
    rows = _rows(shown.stdout)
    assert list(rows) == ["pattern", "ny-day", "pune-evening", "uk-late"]
    assert rows["ny-day"] == [
        "ny-day", "New York day", "08:00-17:00 (9h)", "client", "mon-fri",
        "break 10:00-10:15 paid (+2h00)", "1",
    ]  # fmt: skip
    assert "lunch 12:00-12:30 unpaid (+4h00)" in shown.stdout  # the second line of its cell
    assert rows["pune-evening"][2:5] == ["18:30-03:30 (9h)", "agent", "tue"]

    on_client = await wfm("patterns", "list", "--client-clock", "--all", "--page-size", "1",
                          "--json")  # fmt: skip
    assert [p["name"] for p in on_client.json()["shift_patterns"]] == [
        "shiftPatterns/ny-day", "shiftPatterns/uk-late"
    ]  # fmt: skip
    assert on_client.json()["shift_patterns"][1]["iso_weekdays"] == [6, 7]
    on_agent = await wfm("patterns", "list", "--agent-clock")
    assert list(_rows(on_agent.stdout))[1:] == ["pune-evening"]

    first = await wfm("patterns", "list", "--client-clock", "--page-size", "1")
    assert list(_rows(first.stdout))[1:] == ["ny-day"]
    token = _more(first.stdout)
    nxt = await wfm("patterns", "list", "--client-clock", "--page-size", "1", "--page-token", token)
    assert list(_rows(nxt.stdout))[1:] == ["uk-late"] and "more:" not in nxt.stdout
    # A token goes on only with the filter it was issued for.
    other = await wfm("patterns", "list", "--agent-clock", "--page-token", token)
    assert other.exit_code == exitcodes.INVALID_ARGUMENT
    assert "page_token" in other.stderr and "different filter" in other.stderr
