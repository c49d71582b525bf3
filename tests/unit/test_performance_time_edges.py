"""Time edges of the day rule (docs/metrics.md) against a minute-by-minute reading of the
definitions: DST changes in New York, London and Sydney against Pune, the last days of a year,
the leap day, and shifts anchored on another zone's clock (the client's)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from services.performance.metrics import (
    IN_ADHERENCE,
    NOT_SCHEDULED,
    OFFLINE,
    ON_LEAVE,
    OUT_OF_ADHERENCE,
    PRODUCTIVE_STATUSES,
    STATUS_CARRY,
    Activity,
    AgentInputs,
    Leave,
    Shift,
    StatusChange,
    adherence_now,
    day_sums,
    days_touched,
    local_midnight,
    roster_date_at,
    roster_dates_between,
    status_reach,
)
from tests.unit.test_performance_metrics import D23, at, changes, night_shift

MINUTE = timedelta(minutes=1)
MINUTE_MS = 60_000
PUNE, NEW_YORK = "Asia/Kolkata", "America/New_York"


def test_a_graveyard_shift_on_the_clients_clock_counts_whole_for_its_roster_date() -> None:
    # 23:00-08:00 in New York on 2026-12-07 (EST) is 09:30-18:30 in Pune on the 8th: it ends
    # 42.5 h after the Pune midnight that starts the roster date (in EDT it would be 41.5 h).
    start = datetime(2026, 12, 7, 23, tzinfo=ZoneInfo(NEW_YORK))
    end = start + timedelta(hours=9)
    roster = date(2026, 12, 7)
    inputs = AgentInputs(
        zone=PUNE,
        shifts=(Shift("graveyard", roster, start, end),),
        changes=changes((start, "AVAILABLE"), (end, OFFLINE)),
    )
    sums = day_sums(inputs, roster)
    assert sums["scheduled_ms"] == sums["logged_in_ms"] == sums["adherent_ms"] == 9 * 60 * MINUTE_MS
    for other in (roster - timedelta(days=1), roster + timedelta(days=1)):
        assert day_sums(inputs, other)["logged_in_ms"] == 0


# --- the definitions, minute by minute ------------------------------------------------------
EDGE_DATES = (
    date(2026, 3, 7),  # New York springs forward on the 8th
    date(2026, 10, 31),  # New York falls back on 1 November
    date(2026, 3, 28),  # London springs forward on the 29th
    date(2026, 10, 24),  # London falls back on the 25th
    date(2026, 4, 4),  # Sydney falls back on the 5th
    date(2026, 10, 3),  # Sydney springs forward on the 4th
    date(2026, 12, 30),  # the year's last days
    date(2028, 2, 28),  # the leap day
)
ZONES = (NEW_YORK, PUNE, "Australia/Sydney", "Europe/London", "UTC")
ANCHORS = (*ZONES, "America/Los_Angeles", "Pacific/Kiritimati", "Etc/GMT+12")
KINDS = (("BREAK", True), ("LUNCH", False), ("MEETING", True), ("TRAINING", True), ("HUDDLE", True))
STATUSES = (
    "AVAILABLE",
    "ON_CONTACT",
    "AFTER_CONTACT_WORK",
    "BREAK",
    "LUNCH",
    "MEETING",
    "TRAINING",
    OFFLINE,
)


@st.composite
def _shift(draw: st.DrawFn, first: date, anchor: str, index: int) -> Shift:
    """A shift starting on its roster date on the anchor's clock, up to 16 h (scheduling's
    longest), with non-overlapping activities."""
    roster = first + timedelta(days=draw(st.integers(0, 3)))
    start = local_midnight(roster, anchor) + MINUTE * draw(st.integers(0, 24 * 60 - 1))
    end = start + MINUTE * draw(st.integers(1, 16 * 60))
    activities: list[Activity] = []
    for offset, length, (kind, paid) in draw(
        st.lists(st.tuples(st.integers(0, 16 * 60), st.integers(1, 90), st.sampled_from(KINDS)))
    ):
        a_start, a_end = start + MINUTE * offset, start + MINUTE * (offset + length)
        if a_end <= end and all(a_end <= b.start or b.end <= a_start for b in activities):
            activities.append(Activity(kind, a_start, a_end, paid, False))
    return Shift(f"s{index}", roster, start, end, tuple(sorted(activities, key=_start)))


def _start(item: Activity | Shift) -> datetime:
    return item.start


@st.composite
def edge_days(draw: st.DrawFn) -> tuple[AgentInputs, date]:
    """An agent's non-overlapping shifts (a roster never overlaps them), status changes (some
    at the same instant) and leave around one of EDGE_DATES."""
    zone, anchor = draw(st.sampled_from(ZONES)), draw(st.sampled_from(ANCHORS))
    first = draw(st.sampled_from(EDGE_DATES))
    drawn = [draw(_shift(first, anchor, i)) for i in range(draw(st.integers(0, 3)))]
    shifts: list[Shift] = []
    for shift in sorted(drawn, key=_start):
        if not shifts or shifts[-1].end <= shift.start:
            shifts.append(shift)
    moment, timeline = local_midnight(first, zone) - timedelta(hours=30), []
    base = moment
    for minutes, status in draw(
        st.lists(st.tuples(st.integers(0, 900), st.sampled_from(STATUSES)), max_size=16)
    ):
        moment += MINUTE * minutes
        timeline.append((moment, status))
    leave = tuple(
        Leave(f"l{i}", base + MINUTE * at, base + MINUTE * (at + length))
        for i, (at, length) in enumerate(
            draw(st.lists(st.tuples(st.integers(0, 6000), st.integers(1, 3000)), max_size=2))
        )
    )
    return AgentInputs(zone, changes(*timeline), tuple(shifts), leave), first


def _status_at(inputs: AgentInputs, instant: datetime) -> str:
    known = [c for c in inputs.changes if c.at <= instant]
    if not known:
        return OFFLINE
    last = max(known, key=lambda c: (c.at, c.version))
    return last.status if instant - last.at < STATUS_CARRY else OFFLINE


@dataclass(frozen=True)
class Minute:
    roster_date: date
    status: str
    activity: Activity | None
    on_leave: bool

    @property
    def adheres(self) -> bool:
        activity = self.activity
        assert activity is not None
        if activity.productive:
            return self.status in PRODUCTIVE_STATUSES
        if activity.kind in {"BREAK", "LUNCH", "MEETING", "TRAINING"}:
            return self.status == activity.kind
        return self.status != OFFLINE and self.status not in PRODUCTIVE_STATUSES

    @property
    def state(self) -> str:
        if self.on_leave:
            return ON_LEAVE
        if self.activity is None:
            return NOT_SCHEDULED
        return IN_ADHERENCE if self.adheres else OUT_OF_ADHERENCE


def minute(inputs: AgentInputs, instant: datetime) -> Minute:
    shift = next((s for s in inputs.shifts if s.start <= instant < s.end), None)
    return Minute(
        roster_date_at(inputs.shifts, instant, inputs.zone),
        _status_at(inputs, instant),
        shift.activity_at(instant) if shift else None,
        any(lv.start <= instant < lv.end for lv in inputs.leave),
    )


def minute_fields(m: Minute) -> list[str]:
    """The time sums a minute adds to, row by row of docs/metrics.md."""
    out = []
    if m.status != OFFLINE:
        out.append("logged_in_ms")
    if m.status in PRODUCTIVE_STATUSES:
        out.append("productive_ms")
    if m.activity is not None and m.activity.paid:
        out.append("scheduled_ms")
    if m.activity is not None and not m.on_leave:
        out += ["adherence_base_ms"] + ["adherent_ms"] * m.adheres
        if m.activity.productive:
            out += ["scheduled_productive_ms"] + ["absence_ms"] * (m.status == OFFLINE)
    return out


def by_minute(inputs: AgentInputs, first: date) -> dict[date, dict[str, int]]:
    """Each roster date's time sums, one minute at a time over five days either side."""
    sums: dict[date, dict[str, int]] = {}
    instant = datetime.combine(first - timedelta(days=5), datetime.min.time(), UTC)
    while instant < datetime.combine(first + timedelta(days=9), datetime.min.time(), UTC):
        m = minute(inputs, instant)
        day = sums.setdefault(m.roster_date, {})
        for name in minute_fields(m):
            day[name] = day.get(name, 0) + MINUTE_MS
        instant += MINUTE
    return sums


def punctuality(inputs: AgentInputs, day: date) -> tuple[int, int]:
    """(late log-ins, no-shows): shifts not under leave at their start, judged by their
    first logged-in minute."""
    late = no_shows = 0
    for shift in inputs.shifts:
        if shift.roster_date != day or minute(inputs, shift.start).on_leave:
            continue
        instant = shift.start
        while instant < shift.end and _status_at(inputs, instant) == OFFLINE:
            instant += MINUTE
        no_shows += instant == shift.end
        late += shift.start < instant < shift.end
    return late, no_shows


@settings(max_examples=60, deadline=None)
@given(drawn=edge_days())
def test_every_minute_counts_once_for_its_roster_date_across_dst_and_zones(
    drawn: tuple[AgentInputs, date],
) -> None:
    inputs, first = drawn
    expected = by_minute(inputs, first)
    for offset in range(-2, 6):
        day = first + timedelta(days=offset)
        sums = day_sums(inputs, day)
        for name, ms in expected.get(day, {}).items():
            assert sums[name] == ms, (day, name)
        assert (sums["late_logins"], sums["no_shows"]) == punctuality(inputs, day), day


@settings(max_examples=150, deadline=None)
@given(drawn=edge_days(), minutes=st.integers(-24 * 60, 5 * 24 * 60))
def test_the_state_holds_since_state_since_and_not_a_minute_before(
    drawn: tuple[AgentInputs, date], minutes: int
) -> None:
    """`state_since` starts the run of the roster date's minutes in the state now."""
    inputs, first = drawn
    now = datetime.combine(first, datetime.min.time(), UTC) + MINUTE * minutes
    judged = adherence_now(inputs, now)
    here = minute(inputs, now)
    assert judged.state == here.state
    instant = now
    while instant >= judged.state_since:
        m = minute(inputs, instant)
        assert (m.roster_date, m.state) == (here.roster_date, here.state), instant
        instant -= MINUTE
    before = minute(inputs, judged.state_since - MINUTE)
    assert (before.roster_date, before.state) != (here.roster_date, here.state)


# --- what an input can change -----------------------------------------------------------------
def _days_changed(inputs: AgentInputs, without: AgentInputs, first: date) -> set[date]:
    days = [first + timedelta(days=offset) for offset in range(-3, 8)]
    return {d for d in days if day_sums(inputs, d) != day_sums(without, d)}


@settings(max_examples=100, deadline=None)
@given(drawn=edge_days(), pick=st.integers(0, 20))
def test_a_shift_or_leave_changes_only_the_days_it_touches(
    drawn: tuple[AgentInputs, date], pick: int
) -> None:
    """What the projector recomputes when a shift or leave arrives (`days_touched`)."""
    inputs, first = drawn
    items: list[Shift | Leave] = [*inputs.shifts, *inputs.leave]
    if not items:
        return
    item = items[pick % len(items)]
    if isinstance(item, Shift):
        without = replace(inputs, shifts=tuple(s for s in inputs.shifts if s is not item))
        own = {item.roster_date}
    else:
        without = replace(inputs, leave=tuple(lv for lv in inputs.leave if lv is not item))
        own = set()
    touched = set(days_touched(item.start, item.end, inputs.zone)) | own
    assert _days_changed(inputs, without, first) <= touched


@settings(max_examples=100, deadline=None)
@given(drawn=edge_days(), pick=st.integers(0, 20))
def test_a_status_change_changes_only_the_roster_dates_of_its_reach(
    drawn: tuple[AgentInputs, date], pick: int
) -> None:
    """What the projector recomputes when a status change arrives (`status_reach`)."""
    inputs, first = drawn
    if not inputs.changes:
        return
    change = inputs.changes[pick % len(inputs.changes)]
    without = replace(inputs, changes=tuple(c for c in inputs.changes if c is not change))
    touched = roster_dates_between(inputs, *status_reach(inputs, change))
    assert _days_changed(inputs, without, first) <= touched


def test_a_log_in_undone_at_the_same_instant_is_no_log_in() -> None:
    """A no-show is a shift with no logged-in minute: a log-in that a later version replaces
    at the same instant logged none (it is neither a late log-in nor time)."""
    shift = night_shift(23, D23)
    inputs = AgentInputs(
        zone=PUNE,
        shifts=(shift,),
        changes=(StatusChange(1, at(23, 14), "AVAILABLE"), StatusChange(2, at(23, 14), OFFLINE)),
    )
    sums = day_sums(inputs, D23)
    assert (sums["logged_in_ms"], sums["late_logins"], sums["no_shows"]) == (0, 0, 1)
