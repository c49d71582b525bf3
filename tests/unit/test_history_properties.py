"""Property tests of build_history: segments tile the covered time exactly, in any zone."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from services.availability.domain import (
    MAX_HISTORY_RANGE,
    History,
    Status,
    Transition,
    build_history,
)

BASE = datetime(2026, 1, 1, tzinfo=UTC)
ZONES = ["America/New_York", "Asia/Kolkata", "Europe/London", "Australia/Sydney", "UTC"]
DST_DAYS = [date(2026, 3, 8), date(2026, 3, 29), date(2026, 4, 5), date(2026, 10, 4),
            date(2026, 10, 25), date(2026, 11, 1)]  # fmt: skip


@dataclass(frozen=True)
class Case:
    transitions: list[Transition]
    start: datetime
    end: datetime
    now: datetime


def transitions_from(base: datetime, steps: list[tuple[int, Status, str]]) -> list[Transition]:
    """Versions 1..n at non-decreasing instants (`since` never goes backwards)."""
    out: list[Transition] = []
    moment = base
    for version, (gap_ms, status, reason) in enumerate(steps, start=1):
        moment += timedelta(milliseconds=gap_ms)
        out.append(Transition(version, status, reason, moment))
    return out


step = st.tuples(
    st.one_of(st.just(0), st.integers(0, 6 * 3600 * 1000)),
    st.sampled_from(list(Status)),
    st.sampled_from(["", "COFFEE", "VIP"]),
)


# Few statuses and reasons, often in one millisecond: the same status comes back at once.
crowded_step = st.tuples(
    st.one_of(st.just(0), st.just(0), st.integers(0, 3600 * 1000)),
    st.sampled_from([Status.AVAILABLE, Status.LUNCH]),
    st.sampled_from(["", "COFFEE"]),
)


@st.composite
def cases(draw: st.DrawFn, steps: st.SearchStrategy[tuple[int, Status, str]] = step) -> Case:
    """What the API passes in: transitions before `end`, none after `now`."""
    first = BASE + timedelta(minutes=draw(st.integers(0, 60 * 24 * 10)))
    transitions = transitions_from(first, draw(st.lists(steps, max_size=25)))
    start = BASE + timedelta(seconds=draw(st.integers(-86_400, 86_400 * 20)))
    length = timedelta(seconds=draw(st.integers(1, int(MAX_HISTORY_RANGE.total_seconds()))))
    end = start + length
    last = transitions[-1].at if transitions else first
    now = last + timedelta(seconds=draw(st.integers(0, 86_400 * 40)))
    return Case([t for t in transitions if t.at < end], start, end, now)


def status_at(transitions: list[Transition], moment: datetime) -> Status | None:
    """The status of the highest version that started at or before `moment`."""
    state = state_at(transitions, moment)
    return state[0] if state else None


def state_at(transitions: list[Transition], moment: datetime) -> tuple[Status, str] | None:
    """The status and reason of the highest version that started at or before `moment`."""
    started = [t for t in sorted(transitions, key=lambda t: t.version) if t.at <= moment]
    return (started[-1].status, started[-1].reason_code) if started else None


def check_invariants(history: History, case: Case) -> None:
    stop = min(case.end, case.now)
    segments = history.segments
    for before, after in itertools.pairwise(segments):
        assert before.end == after.start, "segments must be contiguous"
        assert (before.status, before.reason_code) != (after.status, after.reason_code), (
            "the same status and reason twice in a row must be one segment"
        )
    for segment in segments:
        assert case.start <= segment.start < segment.end <= stop
        assert segment.status == status_at(case.transitions, segment.start)
        # The agent stays in the segment's status and reason at every change inside it.
        for moment in [segment.start] + [
            t.at for t in case.transitions if segment.start < t.at < segment.end
        ]:
            assert state_at(case.transitions, moment) == (segment.status, segment.reason_code)
    assert [s.ongoing for s in segments[:-1]] == [False] * (len(segments) - 1)
    if segments:
        # Only the latest status can be ongoing, and only if it has begun and not been cut off.
        latest = max(case.transitions, key=lambda t: t.version)
        ongoing = case.now < case.end and max(latest.at, case.start) < case.now
        assert segments[-1].ongoing == ongoing
        if ongoing:
            assert segments[-1].end == case.now
            assert segments[-1].status == latest.status

    covered = sum((s.duration for s in segments), timedelta())
    assert history.covered == covered
    totals: dict[Status, timedelta] = {}
    for segment in segments:
        totals[segment.status] = totals.get(segment.status, timedelta()) + segment.duration
    assert history.totals == totals
    assert all(d > timedelta() for d in history.totals.values())
    productive = sum((d for s, d in totals.items() if s.productive), timedelta())
    assert history.productive == productive
    assert timedelta() <= history.productive <= history.covered

    # Everything from the first status (or the range start) until min(end, now) is covered.
    if case.transitions:
        first = min(t.at for t in case.transitions)
        expected = max(stop - max(case.start, first), timedelta())
    else:
        expected = timedelta()
    assert history.covered == expected


@settings(max_examples=300, deadline=None)
@given(cases())
def test_segments_tile_the_covered_time(case: Case) -> None:
    check_invariants(build_history(case.transitions, case.start, case.end, case.now), case)


@settings(max_examples=300, deadline=None)
@given(cases(crowded_step))
def test_a_status_that_comes_back_at_once_is_one_segment(case: Case) -> None:
    check_invariants(build_history(case.transitions, case.start, case.end, case.now), case)


@settings(max_examples=100, deadline=None)
@given(cases(), st.randoms(use_true_random=False))
def test_input_order_does_not_matter(case: Case, rnd: random.Random) -> None:
    shuffled = list(case.transitions)
    rnd.shuffle(shuffled)
    assert build_history(shuffled, case.start, case.end, case.now) == build_history(
        case.transitions, case.start, case.end, case.now
    )


def local_day(zone: str, day: date) -> tuple[datetime, datetime]:
    """[local midnight, next local midnight) of `day` in `zone`, as UTC instants."""
    tz = ZoneInfo(zone)
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("America/New_York", date(2026, 3, 8), 23),
        ("America/New_York", date(2026, 11, 1), 25),
        ("America/New_York", date(2026, 3, 9), 24),
        ("Asia/Kolkata", date(2026, 3, 8), 24),
        ("Asia/Kolkata", date(2026, 11, 1), 24),
        ("Europe/London", date(2026, 3, 29), 23),
        ("Europe/London", date(2026, 10, 25), 25),
        ("Australia/Sydney", date(2026, 4, 5), 25),
        ("Australia/Sydney", date(2026, 10, 4), 23),
    ],
)
def test_a_local_day_covers_its_true_length(zone: str, day: date, hours: int) -> None:
    start, end = local_day(zone, day)
    transitions = [
        Transition(1, Status.AVAILABLE, "", start - timedelta(hours=3)),
        Transition(2, Status.LUNCH, "", start + timedelta(hours=4)),
        Transition(3, Status.AVAILABLE, "", start + timedelta(hours=5)),
    ]
    history = build_history(transitions, start, end, now=end + timedelta(days=2))
    assert history.covered == timedelta(hours=hours) == end - start
    assert history.totals[Status.LUNCH] == timedelta(hours=1)
    assert history.productive == timedelta(hours=hours - 1)
    assert history.segments[0].start == start
    assert history.segments[-1].end == end


@settings(max_examples=150, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    day=st.one_of(
        st.sampled_from(DST_DAYS),
        st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 12, 31)),
    ),
    days=st.integers(1, 31),
    steps=st.lists(step, max_size=20),
    lead=st.integers(0, 48 * 3600),
)
@example(zone="America/New_York", day=date(2026, 3, 8), days=1, steps=[], lead=0)
@example(zone="America/New_York", day=date(2026, 11, 1), days=1, steps=[], lead=0)
@example(zone="Asia/Kolkata", day=date(2026, 3, 8), days=1, steps=[], lead=0)
def test_local_calendar_ranges_across_midnight_and_dst(
    zone: str, day: date, days: int, steps: list[tuple[int, Status, str]], lead: int
) -> None:
    start, _ = local_day(zone, day)
    _, end = local_day(zone, day + timedelta(days=days - 1))
    # The agent was already OFFLINE before the range, then changes status inside it.
    first = Transition(1, Status.OFFLINE, "", start - timedelta(seconds=lead + 1))
    inside = [
        Transition(t.version + 1, t.status, t.reason_code, t.at)
        for t in transitions_from(start, steps)
        if t.at < end
    ]
    case = Case([first, *inside], start, end, now=end + timedelta(hours=1))
    history = build_history(case.transitions, start, end, case.now)
    check_invariants(history, case)
    # Fully covered: the covered time is the real UTC length, whatever the wall clock did.
    assert history.covered == end - start
    wall_hours = 24 * days
    assert abs(history.covered - timedelta(hours=wall_hours)) <= timedelta(hours=1)
