"""The coverage view's UTC grid (services/scheduling/coverage.py) gives exactly the numbers of
computing coverage from the shifts, for any zone, day, interval length and shift minute."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.scheduling import coverage, roster
from services.scheduling.roster import Anchor, Schedule, ShiftPlan
from tests.unit.test_roster_rules import BREAK, LUNCH, PUNE
from wfm_runtime.errors import FailedPrecondition

ZONES = (
    "Asia/Kolkata",
    "America/New_York",
    "Europe/London",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
)


@settings(max_examples=120, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    client=st.sampled_from(ZONES),
    day=st.dates(min_value=date(2026, 1, 1), max_value=date(2028, 12, 31)),
    starts=st.lists(st.integers(min_value=0, max_value=2 * 24 * 60 - 1), min_size=1, max_size=4),
    hours=st.integers(min_value=1, max_value=12),
    step=st.sampled_from((15, 30)),
)
def test_grid_sums_equal_coverage_from_the_shifts(
    *, zone: str, client: str, day: date, starts: list[int], hours: int, step: int
) -> None:
    ctx = replace(PUNE, agent_zone=zone, client_zone=client)
    shifts = []
    for n, minute in enumerate(starts):
        plan = ShiftPlan(
            day + timedelta(days=minute // 1440),
            time(minute % 1440 // 60, minute % 60),
            hours * 60,
            Anchor.AGENT,
            (LUNCH, BREAK),
        )
        try:
            shifts.append(roster.build_shift(f"s{n}", plan, ctx))
        except FailedPrecondition:  # a start in a DST gap: not a shift
            continue
    schedule = Schedule("a", tuple(shifts))
    slots = [
        s for d in (day, day + timedelta(days=1)) for s in roster.intervals_of_day(d, client, step)
    ]
    needs = roster.needs_of(slots, [1] * (1440 // step))
    spans = [p for s in shifts for p in roster.productive_spans(s, ())]
    expected = roster.coverage(slots, needs, spans)
    assert coverage.aligned(slots)
    mine = coverage.agent_buckets(schedule)
    totals = {d: coverage.totals([mine.get(("night", d), {})]) for d in coverage.utc_dates(slots)}
    assert coverage.intervals(slots, needs, totals) == expected


def test_local_mean_time_days_are_off_the_grid() -> None:
    slots = roster.intervals_of_day(date(1900, 1, 1), "Asia/Kolkata", 30)
    assert not coverage.aligned(slots)
