"""A day still going counts only up to now (docs/metrics.md, "Figures so far").

The projector files a whole day as if the agent's last status held on; `so_far` takes the
day's tail (what lies after the last status change) back past now. Same night shift as
`test_performance_metrics`: roster date 2026-11-23, 13:00-22:00 UTC (18:30-03:30 IST).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.performance import store
from services.performance.metrics import (
    SUM_FIELDS,
    AgentInputs,
    Sums,
    Tail,
    _piece_sums,
    combined_sums,
    day_sums,
    derive,
    empty_sums,
    first_login_in,
    first_open_day,
    local_midnight,
    pieces,
    time_part,
    trimmed,
    window,
    work_sums,
)
from services.performance.metrics import _Timeline as Timeline
from tests.unit.test_performance_metrics import (
    D23,
    PUNE,
    WORKED_NIGHT,
    agent_days,
    at,
    changes,
    night_shift,
)
from wfm_runtime.timefmt import epoch_ms

HOUR_MS, MINUTE_MS = 3_600_000, 60_000


def figures_at(inputs: AgentInputs, day: date, now: datetime) -> Sums:
    """What a read at `now` gets: the stored whole-day sums and tail, through their text."""
    time_sums, tail = time_part(inputs, day)
    stored = store.pack_sums(combined_sums(time_sums, work_sums(inputs, day)))
    row = store.so_far_row(store.row_of(stored), store.pack_tail(tail), epoch_ms(now))
    return dict(zip(SUM_FIELDS, row, strict=True))


def test_mid_shift_a_late_login_counts_only_the_time_so_far() -> None:
    inputs = AgentInputs(
        zone=PUNE, changes=changes((at(23, 13, 10), "AVAILABLE")), shifts=(night_shift(23, D23),)
    )
    whole = day_sums(inputs, D23)
    assert whole["logged_in_ms"] == (22 * 60 - (13 * 60 + 10)) * MINUTE_MS  # carried to 22:00
    now = at(23, 15)
    sums = figures_at(inputs, D23, now)
    assert sums["logged_in_ms"] == sums["available_ms"] == 110 * MINUTE_MS  # 13:10-15:00
    assert sums["absence_ms"] == 10 * MINUTE_MS
    assert sums["scheduled_productive_ms"] == sums["adherence_base_ms"] == 2 * HOUR_MS
    assert sums["adherent_ms"] == 110 * MINUTE_MS
    assert (sums["late_logins"], sums["no_shows"], sums["active_days"]) == (1, 0, 1)
    assert sums["scheduled_ms"] == whole["scheduled_ms"] == 510 * MINUTE_MS  # the plan, whole
    figures = derive(sums)
    assert figures["absenteeism_percent"] == round(10 / 120 * 100, 4)
    assert figures["conformance_percent"] == round(110 / 120 * 100, 4)


def test_a_shift_not_yet_logged_into_is_absent_so_far_but_no_no_show_until_it_ends() -> None:
    inputs = AgentInputs(zone=PUNE, shifts=(night_shift(23, D23),))
    assert day_sums(inputs, D23)["no_shows"] == 1  # filed as if nobody ever comes
    early = figures_at(inputs, D23, at(23, 14))
    assert (early["no_shows"], early["absence_ms"], early["logged_in_ms"]) == (0, HOUR_MS, 0)
    assert derive(early)["absenteeism_percent"] == 100.0
    assert figures_at(inputs, D23, at(23, 22))["no_shows"] == 1  # the shift is over


def test_before_the_shift_starts_nothing_is_absent_and_the_day_is_not_active() -> None:
    inputs = AgentInputs(zone=PUNE, shifts=(night_shift(23, D23),))
    sums = figures_at(inputs, D23, at(23, 9))
    assert (sums["absence_ms"], sums["no_shows"], sums["active_days"]) == (0, 0, 0)
    figures = derive(sums)
    assert figures["absenteeism_percent"] is None and figures["adherence_percent"] is None
    assert figures["scheduled_hours"] == 8.5


def test_a_day_that_is_over_is_its_whole_stored_figures() -> None:
    inputs = AgentInputs(zone=PUNE, changes=WORKED_NIGHT, shifts=(night_shift(23, D23),))
    assert figures_at(inputs, D23, at(24, 18)) == day_sums(inputs, D23)
    # After the last status change every read is the stored row: no tail is kept once the
    # day's last change is its end (22:00 OFFLINE, and nothing scheduled after it).
    assert not time_part(inputs, D23)[1]


def test_an_empty_tail_keeps_the_row_as_stored() -> None:
    row = store.pack_sums({**empty_sums(), "cases": 3, "active_days": 1})
    assert store.so_far_row(store.row_of(row), None, epoch_ms(at(23, 0))) == store.row_of(row)
    assert store.unpack_tail(store.pack_tail(Tail())) == Tail()


def test_a_tail_that_does_not_read_leaves_the_row_as_filed() -> None:
    row = store.pack_sums({**empty_sums(), "logged_in_ms": 5, "active_days": 1})
    now = epoch_ms(at(23, 0))
    for text in ("", "x|1,2,3|", f"{now + 1}|1,2|", f"{now + 1}|{now},{now + 1},2|x"):
        assert store.so_far_row(store.row_of(row), text, now) == store.row_of(row), text


def test_the_earliest_open_day_bounds_every_zone() -> None:
    now = at(25, 3)
    first = first_open_day(now)
    for zone in ("Etc/GMT+12", "Pacific/Kiritimati", "America/New_York", PUNE, "UTC"):
        assert window(first - timedelta(days=1), zone)[1] <= now  # over everywhere
    assert window(first + timedelta(days=1), "Etc/GMT+12")[1] > now  # at most a day early


def as_of(inputs: AgentInputs, day: date, now: datetime) -> Sums:
    """The definition, straight: the day's pieces cut at now, the whole plan, and shifts
    judged by what happened before now (a no-show once over, a late log-in once logged in)."""
    sums = empty_sums()
    day_pieces = pieces(inputs, day)
    _piece_sums(sums, trimmed(day_pieces, now))
    sums["scheduled_ms"] = day_sums(inputs, day)["scheduled_ms"]
    timeline = Timeline(inputs)
    for shift in inputs.shifts:
        if shift.roster_date != day or timeline.on_leave(shift.start):
            continue
        login = first_login_in(timeline, shift)
        if login is None or login > now:
            sums["no_shows"] += int(shift.end <= now)
        elif login > shift.start:
            sums["late_logins"] += 1
    scheduled_so_far = empty_sums()
    _piece_sums(scheduled_so_far, [p for p in trimmed(day_pieces, now) if p.activity])
    work = work_sums(inputs, day)
    for name in SUM_FIELDS:
        sums[name] += work[name]
    sums["active_days"] = int(
        bool(scheduled_so_far["scheduled_ms"] or sums["logged_in_ms"] or sums["cases"])
    )
    return sums


@settings(max_examples=200, deadline=None)
@given(
    drawn=agent_days(steps_from=timedelta(hours=-12), shift_days=2, max_steps=12),
    later=st.integers(0, 4 * 24 * 60),
)
def test_so_far_is_the_day_cut_at_now(drawn: tuple[AgentInputs, date], later: int) -> None:
    """For any shifts, leave and status changes, and any now after the last change (the
    service stamps changes when they happen): the stored day read at now is the definition."""
    inputs, first = drawn
    last = inputs.changes[-1].at if inputs.changes else local_midnight(first, inputs.zone)
    now = last + timedelta(minutes=later)
    for offset in range(-1, 3):
        day = first + timedelta(days=offset)
        assert figures_at(inputs, day, now) == as_of(inputs, day, now), day
