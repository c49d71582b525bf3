"""Wall-clock arithmetic of rosters (services/scheduling/rostertime.py), with hypothesis."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.scheduling import roster
from services.scheduling import rostertime as rt

ZONES = sorted(
    z
    for z in available_timezones()
    if not z.startswith(("posix", "right", "Etc/Unknown")) and z not in {"localtime", "Factory"}
)
# Zones whose daylight-saving changes sit at the hours shifts start and end in.
DST_ZONES = [
    "America/New_York",
    "Europe/London",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "Africa/Casablanca",
]

zones = st.sampled_from(ZONES) | st.sampled_from(DST_ZONES)
days = st.dates(min_value=date(1970, 1, 1), max_value=date(2100, 12, 31))
# Dates around the DST changes of the next years, where bugs hide.
dst_days = st.sampled_from(
    [
        date(2026, 3, 8),
        date(2026, 3, 29),
        date(2026, 4, 5),
        date(2026, 10, 4),
        date(2026, 10, 25),
        date(2026, 11, 1),
        date(2027, 3, 14),
        date(2027, 3, 13),
        date(2026, 10, 31),
    ]
)
clock = st.times().map(lambda t: t.replace(second=0, microsecond=0))
lengths = st.integers(min_value=15, max_value=roster.MAX_SHIFT_MINUTES)


def _offset(value: datetime | None, zone: str | None = None) -> timedelta:
    assert value is not None
    offset = value.utcoffset() if zone is None else ZoneInfo(zone).utcoffset(value)
    assert offset is not None
    return offset


def _wall(instant: datetime, zone: str) -> datetime:
    return instant.astimezone(ZoneInfo(zone)).replace(tzinfo=None)


@settings(max_examples=400, deadline=None)
@given(zone=zones, day=days | dst_days, start=clock, length=lengths, other=zones)
def test_resolved_shift_shows_its_wall_times_in_any_zone_pair(
    zone: str, day: date, start: time, length: int, other: str
) -> None:
    local_start = datetime.combine(day, start)
    local_end = local_start + timedelta(minutes=length)
    try:
        begin, end = rt.local_interval(day, start, length, zone)
    except rt.NonexistentLocalTime as exc:
        skipped = [t for t in (local_start, local_end) if not rt.exists(t, ZoneInfo(zone))]
        assert skipped and exc.local in skipped
        return
    # The anchor zone's wall clock shows exactly what was planned...
    assert _wall(begin, zone) == local_start
    assert _wall(end, zone) == local_end
    # ...the elapsed time differs from the wall-clock length only by the offset change...
    offset_change = _offset(local_start.replace(fold=0), zone) - _offset(
        local_end.replace(fold=1), zone
    )
    assert end - begin == timedelta(minutes=length) + offset_change
    assert begin < end
    # ...and another zone's clock shows the same elapsed time plus its own offset change.
    other_start = begin.astimezone(ZoneInfo(other))
    other_end = end.astimezone(ZoneInfo(other))
    wall_other = other_end.replace(tzinfo=None) - other_start.replace(tzinfo=None)
    assert wall_other == (end - begin) + (_offset(other_end) - _offset(other_start))
    assert other_start.astimezone(UTC) == begin


@settings(max_examples=300, deadline=None)
@given(zone=zones, day=days | dst_days)
def test_a_local_day_is_contiguous_and_its_intervals_tile_it(zone: str, day: date) -> None:
    start, end = rt.day_bounds(day, zone)
    next_start, _ = rt.day_bounds(day + timedelta(days=1), zone)
    assert start <= end == next_start
    slots = roster.intervals_of_day(day, zone, 30)
    if start < end:
        assert slots[0][0] == start and slots[-1][1] == end
    assert all(a[1] == b[0] for a, b in itertools.pairwise(slots))
    assert all(0 <= index < 48 for _, _, index in slots)


@given(day=days, start=clock, length=lengths)
def test_india_has_no_dst_so_wall_length_is_elapsed_length(
    day: date, start: time, length: int
) -> None:
    begin, end = rt.local_interval(day, start, length, "Asia/Kolkata")
    assert end - begin == timedelta(minutes=length)


def test_fall_back_night_is_one_hour_longer() -> None:
    # US Eastern clocks go back 02:00 -> 01:00 on Sunday 2026-11-01.
    begin, end = rt.local_interval(date(2026, 10, 31), time(22, 0), 8 * 60, "America/New_York")
    assert end - begin == timedelta(hours=9)


def test_spring_forward_night_is_one_hour_shorter() -> None:
    begin, end = rt.local_interval(date(2027, 3, 13), time(22, 0), 8 * 60, "America/New_York")
    assert end - begin == timedelta(hours=7)


def test_a_start_in_the_spring_forward_gap_is_refused_with_a_clear_message() -> None:
    with pytest.raises(rt.NonexistentLocalTime, match="2027-03-14 02:30 does not exist"):
        rt.local_interval(date(2027, 3, 14), time(2, 30), 60, "America/New_York")


def test_an_ambiguous_start_is_the_first_and_an_ambiguous_end_the_second() -> None:
    begin, end = rt.local_interval(date(2026, 11, 1), time(0, 30), 60, "America/New_York")
    assert begin == datetime(2026, 11, 1, 4, 30, tzinfo=UTC)  # 00:30 EDT
    assert end == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # the second 01:30, EST


def test_a_shift_anchored_to_new_york_moves_an_hour_in_ist_when_us_dst_starts() -> None:
    before, _ = rt.local_interval(date(2027, 3, 12), time(8, 0), 9 * 60, "America/New_York")
    after, _ = rt.local_interval(date(2027, 3, 15), time(8, 0), 9 * 60, "America/New_York")
    assert _wall(before, "Asia/Kolkata").time() == time(18, 30)
    assert _wall(after, "Asia/Kolkata").time() == time(17, 30)


def test_dst_days_have_more_or_fewer_intervals() -> None:
    assert len(roster.intervals_of_day(date(2027, 3, 14), "America/New_York", 30)) == 46
    assert len(roster.intervals_of_day(date(2026, 11, 1), "America/New_York", 30)) == 50
    assert len(roster.intervals_of_day(date(2026, 11, 1), "Asia/Kolkata", 15)) == 96


def test_weeks_start_on_monday() -> None:
    assert rt.week_start(date(2027, 3, 14)) == date(2027, 3, 8)  # a Sunday
    assert rt.week_start(date(2027, 3, 15)) == date(2027, 3, 15)


@pytest.mark.parametrize(
    ("text", "ok"),
    [("08:00", True), ("23:59", True), ("24:00", False), ("8:00", False), ("ab:cd", False)],
)
def test_parse_hhmm(text: str, ok: bool) -> None:
    assert (rt.parse_hhmm(text) is not None) == ok


@pytest.mark.parametrize(
    ("text", "ok"),
    [("2027-03-14", True), ("2027-02-30", False), ("0001-01-01", False), ("27-3-14", False)],
)
def test_parse_date(text: str, ok: bool) -> None:
    assert (rt.parse_date(text) is not None) == ok
