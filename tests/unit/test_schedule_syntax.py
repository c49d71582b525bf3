"""What schedulers type for operating hours, weekdays, activities and holidays, read into API
messages and written back in the same words (wfm_cli.schedule_syntax)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wfm.scheduling.v1 import directory_service_pb2 as dpb
from wfm.scheduling.v1 import roster_service_pb2 as rpb

from wfm_cli.schedule_syntax import (
    activity_words,
    holiday_lines,
    holidays_of_year,
    opening_words,
    parse_activity,
    parse_clock,
    parse_duration,
    parse_opening,
    parse_operating_hours,
    parse_weekdays,
    weekday_words,
)


def window(day: int, opens: str, minutes: int) -> dpb.OperatingWindow:
    return dpb.OperatingWindow(iso_weekday=day, open_local_time=opens, length_minutes=minutes)


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("mon-fri", [1, 2, 3, 4, 5]),
        ("mon,wed,sat", [1, 3, 6]),
        ("mon-wed, sat", [1, 2, 3, 6]),
        ("thu-mon", [1, 4, 5, 6, 7]),  # over the weekend
        ("Sunday", [7]),
        ("mon-sun", [1, 2, 3, 4, 5, 6, 7]),
        ("fri,mon-fri", [1, 2, 3, 4, 5]),
    ],
)
def test_weekdays_as_ranges_and_lists(text: str, days: list[int]) -> None:
    assert parse_weekdays(text) == days


@pytest.mark.parametrize("text", ["", "mon-", "mo", "mon-funday", "1-5", "weekdays"])
def test_a_bad_weekday_is_named(text: str) -> None:
    with pytest.raises(ValueError, match="is not a weekday"):
        parse_weekdays(text)


@given(st.sets(st.integers(1, 7), min_size=1))
def test_weekday_words_read_back_as_the_same_days(days: set[int]) -> None:
    assert parse_weekdays(weekday_words(days)) == sorted(days)


def test_opening_hours_for_a_day_team_and_a_night_team() -> None:
    assert parse_opening("mon-sun 08:00-23:00") == [window(d, "08:00", 900) for d in range(1, 8)]
    # An end before the start crosses midnight: 18:30 to 03:30 the next morning is 9 hours.
    assert parse_opening("mon-fri 18:30-03:30") == [window(d, "18:30", 540) for d in range(1, 6)]
    assert parse_opening("sat 9:00-24:00") == [window(6, "09:00", 900)]
    assert parse_opening("sun 00:00-24:00") == [window(7, "00:00", 1440)]
    assert parse_opening("sun 06:00-06:00") == [window(7, "06:00", 1440)]  # round the clock


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("08:00-17:00", "weekdays and hours"),  # no days
        ("mon-fri", "weekdays and hours"),  # no hours
        ("mon-fri 08:00", "weekdays and hours"),
        ("mon-fri 8-17", "a time HH:MM"),
        ("mon-fri 25:00-03:00", "a time HH:MM from 00:00 to 23:59"),
        ("mon-fri 08:00-24:30", "a time HH:MM from 00:00 to 24:00"),
        ("mon-fri 08:60-17:00", "a time HH:MM"),
        ("mon-fry 08:00-17:00", "'fry' is not a weekday"),
    ],
)
def test_bad_opening_hours_say_what_was_expected(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_opening(text)


def test_several_openings_make_one_week_and_a_day_given_twice_is_refused() -> None:
    week = parse_operating_hours(["sat,sun 10:00-16:00", "mon-fri 08:00-20:00"])
    assert [w.iso_weekday for w in week] == [1, 2, 3, 4, 5, 6, 7]
    assert week[5] == window(6, "10:00", 360)
    assert parse_operating_hours([]) == []
    with pytest.raises(ValueError, match="fri is given twice"):
        parse_operating_hours(["mon-fri 08:00-17:00", "fri-sun 10:00-14:00"])


def test_opening_words_group_days_with_the_same_hours_in_the_syntax_read() -> None:
    week = parse_operating_hours(["mon-fri 18:30-03:30", "sat 10:00-24:00", "sun 00:00-24:00"])
    words = opening_words(week)
    assert words == ["mon-fri 18:30-03:30", "sat 10:00-24:00", "sun 00:00-24:00"]
    assert parse_operating_hours(words) == week
    assert opening_words([]) == []


@pytest.mark.parametrize(
    ("text", "minutes"), [("90", 90), ("90m", 90), ("2h", 120), ("2h30", 150), ("4h30m", 270)]
)
def test_durations_in_minutes_or_hours(text: str, minutes: int) -> None:
    assert parse_duration(text) == minutes


@pytest.mark.parametrize("text", ["", "h", "1.5h", "2h:30", "-5", "ten"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="minutes"):
        parse_duration(text)


def test_activities_default_to_a_paid_break_and_an_unpaid_lunch() -> None:
    assert parse_activity("break", "120:15") == rpb.Activity(
        kind=rpb.ACTIVITY_KIND_BREAK, offset_minutes=120, length_minutes=15, paid=True
    )
    assert parse_activity("lunch", "4h:30") == rpb.Activity(
        kind=rpb.ACTIVITY_KIND_LUNCH, offset_minutes=240, length_minutes=30, paid=False
    )
    assert parse_activity("lunch", "4h:30m:paid").paid
    assert not parse_activity("break", "2h:15:unpaid").paid
    assert parse_activity("meeting", "0:1h").paid and parse_activity("training", "1h:2h").paid


@pytest.mark.parametrize("text", ["120", "120:15:free", "1:2:3:4", "2h-15", "noon:30"])
def test_bad_activities(text: str) -> None:
    with pytest.raises(ValueError, match=r"OFFSET:LENGTH|minutes"):
        parse_activity("break", text)


def test_activities_show_on_the_shifts_clock_so_a_typed_clock_time_stands_out() -> None:
    lunch = parse_activity("lunch", "4h:30")
    assert activity_words(lunch, "08:00") == "lunch 12:00-12:30 unpaid (+4h00)"
    assert activity_words(lunch, "22:00") == "lunch 02:00-02:30 unpaid (+4h00)"  # next morning
    assert activity_words(parse_activity("break", "12:30"), "08:00") == (
        "break 08:12-08:42 paid (+12m)"  # 12:30 meant as a clock time reads wrong at once
    )


def test_clock_times() -> None:
    assert parse_clock("08:00") == 480 and parse_clock("0:05") == 5
    assert parse_clock("24:00", end_of_day=True) == 1440
    for bad in ("24:00", "12:60", "noon", "12", "12:5"):
        with pytest.raises(ValueError, match="a time HH:MM"):
            parse_clock(bad)


def test_holidays_of_a_year_sorted_with_their_names() -> None:
    found = holidays_of_year(
        ["2026-12-25=Christmas Day", "2026-01-26, Republic Day", "2026-08-15 Independence Day",
         "2026-12-28"],
        2026,
    )  # fmt: skip
    assert [(h.date, h.display_name) for h in found] == [
        ("2026-01-26", "Republic Day"),
        ("2026-08-15", "Independence Day"),
        ("2026-12-25", "Christmas Day"),
        ("2026-12-28", ""),
    ]
    assert holidays_of_year([], 2026) == []


@pytest.mark.parametrize(
    ("entries", "words"),
    [
        (["2026-02-30=Nope"], "no such date: 2026-02-30"),
        (["26-12-25"], "a date YYYY-MM-DD"),
        (["20261225"], "a date YYYY-MM-DD"),
        (["Christmas=2026-12-25"], "a date YYYY-MM-DD"),
        (["2027-01-01=New Year"], "2027-01-01 is not in 2026"),
        (["2026-12-25=Christmas", "2026-12-25=Xmas"], "2026-12-25 is given twice"),
    ],
)
def test_bad_holidays_are_named(entries: list[str], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        holidays_of_year(entries, 2026)


def test_a_holidays_file_skips_blank_lines_and_comments() -> None:
    text = "# UK 2026\n2026-12-25=Christmas Day\n\n  2026-12-28 Boxing Day  # substitute\n"
    assert holiday_lines(text) == ["2026-12-25=Christmas Day", "2026-12-28 Boxing Day"]
