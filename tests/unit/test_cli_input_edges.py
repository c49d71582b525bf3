"""Edges of the files the CLI reads before sending anything, as people on the floor make them:
saved from Excel or Notepad (a UTF-8 byte order mark), with blank lines, with a bad value in a
column the CLI converts itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from wfm_cli.commands.performance import THRESHOLDS, metric_name, read_cases
from wfm_cli.context import read_file
from wfm_cli.schedule_syntax import holiday_lines, holidays_of_year
from wfm_cli.training_input import read_completions

BOM = "\ufeff"  # what Excel's "CSV UTF-8" and older Notepad put before the first line
CASES_HEADER = "case_id,agent,channel,resolve_time,talk_seconds,sla_met,csat_score\n"


def _case(case_id: str, *, talk: str = "420", csat: str = "5") -> str:
    return f"{case_id},a-1001,chat,2026-11-24T14:09:00Z,{talk},yes,{csat}\n"


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_files_saved_with_a_byte_order_mark_read_as_without(tmp_path: Path) -> None:
    results = _file(tmp_path, "class.csv", f"{BOM}agent,score,passed\r\na-1001,80,yes\r\n")
    assert len(read_completions(read_file(results, "--file"), "class.csv")) == 1

    holidays = _file(tmp_path, "holidays.txt", f"{BOM}2026-12-25=Christmas Day\n")
    lines = holiday_lines(read_file(holidays, "--file"))
    assert holidays_of_year(lines, 2026)[0].display_name == "Christmas Day"

    cases = _file(tmp_path, "cases.csv", f"{BOM}{CASES_HEADER}{_case('c-1')}")
    assert [r.case_id for r in read_cases(cases)] == ["c-1"]
    jsonl = _file(tmp_path, "cases.jsonl", f'{BOM}{{"case_id": "c-1", "agent": "a-1001"}}\n')
    assert [r.case_id for r in read_cases(jsonl)] == ["c-1"]


def test_every_bad_case_line_is_listed_with_its_number(tmp_path: Path) -> None:
    # A CSAT of 4.5 is converted by the CLI itself: it must be listed like any other bad
    # line, not stop the check at the first one with a bare int() message.
    text = CASES_HEADER + _case("c-1", csat="4.5") + "\n" + _case("c-2", talk="abc")
    with pytest.raises(ValueError) as raised:
        read_cases(_file(tmp_path, "cases.csv", text))
    message = str(raised.value)
    assert "2 bad cases, nothing sent" in message
    assert "line 2: csat_score" in message
    assert "line 4: " in message  # the file's line, after the blank one


def test_text_people_type_is_printed_as_typed_not_read_as_markup(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A leave note or a holiday name in square brackets was taken for rich markup: dropped
    # from the table, and a `[/]` stopped the command with a MarkupError.
    from wfm.scheduling.v1 import roster_service_pb2 as roster_pb

    from wfm_cli.commands.roster import _show_leave
    from wfm_cli.commands.sites import _show_site

    note = "back [monday] [/] sorry"
    _show_leave([roster_pb.LeaveRequest(name="agents/a-1/leaveRequests/l", note=note)], False)
    holiday = roster_pb.PublicHoliday(date="2026-11-09", display_name="Diwali [observed]")
    site = roster_pb.Site(name="sites/pune", display_name="Pune [B]", public_holidays=[holiday])
    _show_site(site, False)
    shown = capsys.readouterr().out
    assert note in shown
    assert "Diwali [observed]" in shown and "Pune [B]" in shown


def test_hours_too_large_to_send_are_a_bad_line_like_any_other() -> None:
    # 1e308 hours stopped the check with an OverflowError, 99999999 with protobuf's bare
    # "Value out of range": each is a line's mistake, listed with the others.
    with pytest.raises(ValueError) as raised:
        read_completions("a-1,80,yes,1e308\na-2,80,yes,99999999\na-3,80,maybe\n", "class.csv")
    message = str(raised.value)
    assert "3 problems, nothing sent" in message
    assert "line 1: hours:" in message and "line 2: hours:" in message


def test_a_session_start_the_clocks_jump_over_is_a_usage_error() -> None:
    from datetime import UTC, datetime

    import typer

    from wfm_cli.commands.training import _instant

    with pytest.raises(typer.BadParameter, match="does not exist in America/New_York"):
        _instant("2027-03-14T02:30", "America/New_York")  # 02:00 -> 03:00 that night
    twice = _instant("2027-11-07T01:30", "America/New_York")  # the first 01:30 (EDT)
    assert twice.astimezone(UTC) == datetime(2027, 11, 7, 5, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("typed", "field"),
    [
        ("MIN_ADHERENCE_PERCENT", "min_adherence_percent"),
        ("Max_Late_Logins", "max_late_logins"),
        ("min-csat-average", "min_csat_average"),
        (" max_absenteeism_percent ", "max_absenteeism_percent"),
    ],
)
def test_limit_and_metric_names_are_matched_whatever_their_case(typed: str, field: str) -> None:
    assert metric_name(typed, THRESHOLDS, "--limit: METRIC") == field


def test_an_unknown_limit_name_is_refused_listing_the_known_ones() -> None:
    with pytest.raises(typer.BadParameter) as raised:
        metric_name("SPEED", THRESHOLDS, "--limit: METRIC")
    assert "'SPEED'" in str(raised.value)
    assert all(name in str(raised.value) for name in THRESHOLDS)
