"""Edges of roster time found by a bug hunt: DST gaps and folds, midnight, boundaries."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, time

import pytest

from services.scheduling import roster
from services.scheduling.roster import Anchor, OperatingWindow, Schedule, ShiftPlan
from tests.unit.test_roster_rules import PUNE

EMPTY = Schedule("asha")


def _broken(p: ShiftPlan, ctx: roster.Context, schedule: Schedule = EMPTY) -> list[str]:
    shift = roster.build_shift("new", p, ctx)
    return [v.type for v in roster.violations(schedule, shift, ctx)]


def _client(zone: str, *windows: OperatingWindow) -> roster.Context:
    return replace(
        PUNE,
        agent_zone="Asia/Kolkata",
        client_zone=zone,
        holidays=frozenset(),
        operating_hours=windows,
    )


# Saturday-night windows that close inside the spring-forward gap of the next morning.
@pytest.mark.parametrize(
    ("zone", "saturday", "window", "inside", "outside"),
    [
        # London: 01:00 -> 02:00 on 2027-03-28; the window 18:00 + 7h30 "closes" at 01:30.
        (
            "Europe/London",
            date(2027, 3, 27),
            (time(18, 0), 450),
            (time(18, 0), 390),
            (time(8, 0), 480),
        ),
        # Sydney: 02:00 -> 03:00 on 2027-10-03; the window 20:00 + 6h30 "closes" at 02:30.
        (
            "Australia/Sydney",
            date(2027, 10, 2),
            (time(20, 0), 390),
            (time(20, 0), 300),
            (time(9, 0), 480),
        ),
    ],
)
def test_a_window_closing_in_a_dst_gap_still_bounds_the_shifts(
    zone: str,
    saturday: date,
    window: tuple[time, int],
    inside: tuple[time, int],
    outside: tuple[time, int],
) -> None:
    # It used to fall back to the whole calendar day: the night inside the window was refused
    # (it runs past midnight) and a day shift long before opening was accepted.
    ctx = _client(zone, OperatingWindow(saturday.weekday(), *window))
    assert _broken(ShiftPlan(saturday, *inside, Anchor.CLIENT), ctx) == []
    assert _broken(ShiftPlan(saturday, *outside, Anchor.CLIENT), ctx) == ["OPERATING_HOURS"]


def test_a_window_opening_in_a_dst_gap_opens_when_the_clocks_jump() -> None:
    # New York 02:00 -> 03:00 on Sunday 2027-03-14: a 02:30 opening is passed at 03:00 EDT.
    sunday = date(2027, 3, 14)
    ctx = _client("America/New_York", OperatingWindow(sunday.weekday(), time(2, 30), 600))
    assert _broken(ShiftPlan(sunday, time(3, 0), 480, Anchor.CLIENT), ctx) == []
    assert _broken(ShiftPlan(sunday, time(1, 30), 240, Anchor.CLIENT), ctx) == ["OPERATING_HOURS"]


def test_a_shift_after_midnight_lies_in_the_night_window_that_opened_the_evening_before() -> None:
    # 18:30-03:30 IST every night: 00:00-03:30 on Tuesday is inside Monday's window. Only the
    # roster date's own window used to be tried, so no shift could start after midnight.
    night = tuple(OperatingWindow(d, time(18, 30), 540) for d in range(7))
    ctx = _client("Asia/Kolkata", *night)
    tuesday = date(2027, 3, 2)
    assert _broken(ShiftPlan(tuesday, time(0, 0), 210, Anchor.CLIENT), ctx) == []
    assert _broken(ShiftPlan(tuesday, time(0, 0), 240, Anchor.CLIENT), ctx) == ["OPERATING_HOURS"]


def test_a_team_open_around_the_clock_takes_night_shifts_across_midnight() -> None:
    # Windows 00:00 + 24 h every day meet at midnight: a 22:00-06:00 night is inside them, also
    # on the night New York clocks go back (2026-11-01) and on the last night of a leap February.
    always = tuple(OperatingWindow(d, time(0, 0), 1440) for d in range(7))
    ctx = _client("America/New_York", *always)
    for day in (date(2026, 10, 31), date(2028, 2, 29), date(2027, 12, 31)):
        assert _broken(ShiftPlan(day, time(22, 0), 480, Anchor.CLIENT), ctx) == []
    weekdays_only = _client("America/New_York", *always[:5])  # closed at the weekend
    friday = date(2027, 3, 5)
    assert _broken(ShiftPlan(friday, time(22, 0), 480, Anchor.CLIENT), weekdays_only) == [
        "OPERATING_HOURS"
    ]
