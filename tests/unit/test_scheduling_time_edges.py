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
