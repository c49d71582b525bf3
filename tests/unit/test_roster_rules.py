"""Roster rules (services/scheduling/roster.py): every change to one agent's schedule."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.scheduling import roster
from services.scheduling.roster import (
    Activity,
    ActivityKind,
    Anchor,
    Context,
    Leave,
    LeaveKind,
    LeaveStatus,
    OperatingWindow,
    Schedule,
    ShiftPlan,
    ShiftStatus,
)
from services.scheduling.rostertime import opening_interval
from wfm_runtime.errors import FailedPrecondition

PUNE = Context(
    agent_zone="Asia/Kolkata",
    client_zone="America/New_York",
    team_id="night",
    weekly_minutes=45 * 60,
    site="pune",
    annual_allowance_days=29,
    holidays=frozenset({date(2027, 3, 6)}),
)
# 18:30-03:30 IST every day: a window crossing midnight, in the team's (here Indian) zone.
NIGHT_WINDOW = tuple(OperatingWindow(d, time(18, 30), 9 * 60) for d in range(7))
LUNCH = Activity(ActivityKind.LUNCH, 240, 30, paid=False)
BREAK = Activity(ActivityKind.BREAK, 120, 15)


def plan(day: date, start: time = time(18, 30), hours: int = 9, **kw: object) -> ShiftPlan:
    return ShiftPlan(day, start, hours * 60, Anchor.AGENT, (LUNCH, BREAK), **kw)  # type: ignore[arg-type]


def add(schedule: Schedule, *plans: ShiftPlan, ctx: Context = PUNE) -> Schedule:
    shifts = [
        roster.build_shift(f"s{len(schedule.shifts) + n}", p, ctx) for n, p in enumerate(plans)
    ]
    return roster.assign(schedule, shifts, ctx).schedule


def broken(schedule: Schedule, p: ShiftPlan, ctx: Context = PUNE) -> list[str]:
    shift = roster.build_shift("new", p, ctx)
    return [v.type for v in roster.violations(schedule, shift, ctx)]


EMPTY = Schedule("asha")
MON = date(2027, 3, 1)
MON_TO_SAT = frozenset(range(1, 7))


def test_a_clean_week_passes_and_paid_time_excludes_unpaid_lunch() -> None:
    week = add(EMPTY, *(plan(MON + timedelta(days=n)) for n in range(5)))
    assert len(week.shifts) == 5
    assert week.shifts[0].paid_minutes == 9 * 60 - 30


def test_overlap_and_rest_are_reported_together() -> None:
    week = add(EMPTY, plan(MON))
    assert broken(week, plan(MON, time(22, 0))) == ["OVERLAP"]
    # Ends 03:30, next starts 10:00: 6h30 rest < 11h.
    assert broken(week, plan(MON + timedelta(days=1), time(10, 0), hours=8)) == ["MIN_REST"]
    relaxed = replace(PUNE, min_rest_minutes=6 * 60)
    assert broken(week, plan(MON + timedelta(days=1), time(10, 0), hours=8), relaxed) == []


def test_every_violation_is_listed_and_nothing_changes() -> None:
    week = add(EMPTY, plan(MON))
    holiday_clash = plan(date(2027, 3, 6))
    part_timer = replace(
        PUNE, weekly_minutes=30 * 60, client_zone="Asia/Kolkata", operating_hours=NIGHT_WINDOW
    )
    shifts = [
        roster.build_shift("x1", plan(MON, time(20, 0)), part_timer),
        roster.build_shift("x2", holiday_clash, part_timer),
    ]
    with pytest.raises(FailedPrecondition) as caught:
        roster.assign(week, shifts, part_timer)
    kinds = sorted(v.type for v in caught.value.violations)
    assert kinds == ["OPERATING_HOURS", "OVERLAP", "PUBLIC_HOLIDAY"]
    dry = roster.assign(week, shifts, part_timer, dry_run=True)
    assert sorted(v.type for v in dry.violations) == kinds


def test_part_timer_weekly_cap_counts_paid_minutes_by_roster_date() -> None:
    part_timer = replace(PUNE, weekly_minutes=30 * 60)
    # Three 8h30 paid shifts = 25h30; a fourth would be 34h > 30h.
    week = add(EMPTY, *(plan(MON + timedelta(days=n)) for n in range(3)), ctx=part_timer)
    assert broken(week, plan(MON + timedelta(days=3)), part_timer) == ["WEEKLY_HOURS"]
    # A Sunday night shift (ends Monday) counts wholly in the week of its roster date.
    sunday = add(EMPTY, plan(MON + timedelta(days=6)), ctx=part_timer)
    next_week = add(sunday, *(plan(MON + timedelta(days=8 + n)) for n in range(3)), ctx=part_timer)
    assert len(next_week.shifts) == 4


def test_public_holiday_can_be_overridden() -> None:
    assert broken(EMPTY, plan(date(2027, 3, 6))) == ["PUBLIC_HOLIDAY"]
    assert broken(EMPTY, plan(date(2027, 3, 6), overrides=frozenset({"PUBLIC_HOLIDAY"}))) == []


def test_operating_window_across_midnight() -> None:
    ctx = replace(PUNE, client_zone="Asia/Kolkata", operating_hours=NIGHT_WINDOW)
    assert broken(EMPTY, plan(MON), ctx) == []
    assert broken(EMPTY, plan(MON, time(18, 0)), ctx) == ["OPERATING_HOURS"]
    assert broken(EMPTY, plan(MON, time(19, 0)), ctx) == ["OPERATING_HOURS"]  # ends 04:00


def test_spring_forward_start_is_refused() -> None:
    with pytest.raises(FailedPrecondition) as caught:
        roster.build_shift("s", ShiftPlan(date(2027, 3, 14), time(2, 0), 480, Anchor.CLIENT), PUNE)
    assert caught.value.violations[0].type == "NONEXISTENT_LOCAL_TIME"


def _leave(first: date, last: date, kind: LeaveKind = LeaveKind.ANNUAL) -> Leave:
    from services.scheduling.rostertime import day_bounds

    return Leave(
        "l1",
        kind,
        day_bounds(first, "Asia/Kolkata")[0],
        day_bounds(last, "Asia/Kolkata")[1],
        first,
        last,
        full_days=True,
    )


def test_approving_leave_cancels_overlapping_shifts_and_counts_days_without_holidays() -> None:
    holiday_ok = frozenset({"PUBLIC_HOLIDAY"})
    ctx = replace(PUNE, weekly_minutes=60 * 60, working_days=MON_TO_SAT)
    week = add(
        EMPTY, *(plan(MON + timedelta(days=n), overrides=holiday_ok) for n in range(6)), ctx=ctx
    )
    requested = roster.request_leave(week, _leave(date(2027, 3, 4), date(2027, 3, 6)), ctx)
    assert requested.schedule.leave[0].days == 2.0  # Saturday the 6th is a public holiday
    assert roster.balance(requested.schedule, 2027, ctx).pending_days == 2.0
    approved = roster.approve_leave(requested.schedule, "l1", ctx)
    cancelled = {s.roster_date for s in approved.schedule.shifts if not s.active}
    # Whole days of leave cover the shifts of those roster dates: the 3rd's night shift, which
    # runs into the morning of the 4th, is still worked.
    assert cancelled == {date(2027, 3, 4), date(2027, 3, 5), date(2027, 3, 6)}
    bal = roster.balance(approved.schedule, 2027, ctx)
    assert (bal.taken_days, bal.pending_days, bal.remaining_days) == (2.0, 0.0, 26.0)
    assert broken(approved.schedule, plan(date(2027, 3, 5))) == ["APPROVED_LEAVE"]


def test_leave_beyond_the_allowance_is_refused() -> None:
    # 1 public holiday (on a working Saturday) leaves 1 day
    tight = replace(PUNE, annual_allowance_days=2, working_days=MON_TO_SAT)
    requested = roster.request_leave(EMPTY, _leave(date(2027, 3, 8), date(2027, 3, 9)), tight)
    with pytest.raises(FailedPrecondition, match="needs 2 days"):
        roster.approve_leave(requested.schedule, "l1", tight)
    denied = roster.deny_leave(requested.schedule, "l1", "peak week")
    assert denied.schedule.leave[0].status is LeaveStatus.DENIED
    with pytest.raises(FailedPrecondition):
        roster.approve_leave(denied.schedule, "l1", tight)


def test_withdrawn_leave_returns_its_days_and_leaves_cancelled_shifts_cancelled() -> None:
    worked = add(EMPTY, plan(date(2027, 3, 8)))
    requested = roster.request_leave(worked, _leave(date(2027, 3, 8), date(2027, 3, 9)), PUNE)
    approved = roster.approve_leave(requested.schedule, "l1", PUNE, "enjoy").schedule
    assert approved.leave[0].decision_reason == "enjoy"
    before_start = approved.leave[0].start - timedelta(minutes=1)
    withdrawn = roster.cancel_leave(approved, "l1", "", now=before_start, own=True).schedule
    assert withdrawn.leave[0].status is LeaveStatus.CANCELLED
    bal = roster.balance(withdrawn, 2027, PUNE)
    assert (bal.taken_days, bal.pending_days) == (0.0, 0.0)
    assert [s.active for s in withdrawn.shifts] == [False]  # stays cancelled
    assert broken(withdrawn, plan(date(2027, 3, 9))) == []  # the days are free again
    assert (
        roster.cancel_leave(withdrawn, "l1", "", now=before_start, own=True).schedule == withdrawn
    )

    started = approved.leave[0].start
    with pytest.raises(FailedPrecondition, match="only be withdrawn by a scheduler"):
        roster.cancel_leave(approved, "l1", "", now=started, own=True)
    by_scheduler = roster.cancel_leave(approved, "l1", "late", now=started, own=False)
    assert by_scheduler.schedule.leave[0].decision_reason == "late"
    with pytest.raises(FailedPrecondition, match="cancelled cannot be approved"):
        roster.approve_leave(withdrawn, "l1", PUNE)
    denied = roster.deny_leave(requested.schedule, "l1", "peak").schedule
    with pytest.raises(FailedPrecondition, match="denied cannot be withdrawn"):
        roster.cancel_leave(denied, "l1", "", now=before_start, own=False)


def test_publish_moves_only_the_teams_drafts_of_that_week() -> None:
    two_weeks = add(EMPTY, plan(MON), plan(MON + timedelta(days=7)))
    change = roster.publish(two_weeks, "night", MON)
    assert change is not None
    assert [s.status for s in change.schedule.shifts] == [ShiftStatus.PUBLISHED, ShiftStatus.DRAFT]
    assert roster.publish(change.schedule, "night", MON) is None


def test_drafted_weeks_name_the_team_and_monday_of_each_changed_draft() -> None:
    # s0 Sunday 7 March belongs to the week of 1 March; s1 Monday 8 March to the next week.
    two = add(EMPTY, plan(MON + timedelta(days=6)), plan(MON + timedelta(days=7)))
    assert roster.drafted_weeks(two, ["s0", "s1"]) == {
        ("night", MON),
        ("night", MON + timedelta(days=7)),
    }
    assert roster.drafted_weeks(two, ["s1", "gone"]) == {("night", MON + timedelta(days=7))}
    change = roster.publish(two, "night", MON)
    assert change is not None
    assert roster.drafted_weeks(change.schedule, ["s0"]) == set()  # published: no draft left


def test_a_moved_shift_stays_with_the_team_it_was_planned_for() -> None:
    # The agent joined another team after the night was planned: moving the night an hour
    # must not hand it to the new team (its roster, publishing and coverage).
    planned = add(EMPTY, plan(MON))
    new_team = replace(PUNE, team_id="day")
    later = roster.build_shift("s0", plan(MON, time(19, 30)), new_team)
    moved = roster.change_shift(planned, "s0", later, new_team).schedule
    assert [(s.team_id, s.start_local) for s in moved.shifts] == [("night", time(19, 30))]


def test_old_shifts_leave_the_aggregate() -> None:
    today = replace(PUNE, today=date(2026, 6, 1))
    old = add(EMPTY, plan(date(2026, 1, 5)), ctx=today)
    later = add(old, plan(date(2026, 6, 1)), ctx=today)
    assert [s.roster_date for s in later.shifts] == [date(2026, 6, 1)]


def test_planning_months_ahead_keeps_this_weeks_shifts_in_the_rules() -> None:
    # Pruned by the new shift's date alone, next week's night left the aggregate when May was
    # planned, and a second shift on top of it was accepted.
    today = replace(PUNE, today=date(2027, 2, 22))
    near = add(EMPTY, plan(MON), ctx=today)
    planned = add(near, plan(date(2027, 5, 3)), ctx=today)
    assert [s.roster_date for s in planned.shifts] == [MON, date(2027, 5, 3)]
    assert "OVERLAP" in broken(planned, plan(MON, time(20, 0), 4), ctx=today)


def test_coverage_counts_productive_time_only() -> None:
    ctx = replace(PUNE, agent_zone="Asia/Kolkata")
    shift = roster.build_shift("s", plan(MON), ctx)
    spans = roster.productive_spans(shift, ())
    assert sum((b - a for a, b in spans), timedelta()) == timedelta(minutes=9 * 60 - 45)
    slots = roster.intervals_of_day(MON, "Asia/Kolkata", 30)
    cells = roster.coverage(slots, roster.needs_of(slots, [1] * 48), spans)
    by_start = {c.start: c for c in cells}
    at_1830 = datetime(2027, 3, 1, 13, 0, tzinfo=UTC)
    assert by_start[at_1830].staffed == 1.0 and by_start[at_1830].gap == 0
    at_2030 = at_1830 + timedelta(hours=2)  # the 15-minute break
    assert by_start[at_2030].staffed == 0.5
    assert by_start[datetime(2027, 3, 1, 0, 0, tzinfo=UTC)].gap == 1


@settings(max_examples=150, deadline=None)
@given(
    starts=st.lists(st.integers(min_value=0, max_value=14 * 24 * 4), min_size=1, max_size=8),
    hours=st.integers(min_value=1, max_value=12),
)
def test_any_accepted_schedule_has_no_overlap_and_respects_rest(
    starts: list[int], hours: int
) -> None:
    ctx = replace(PUNE, weekly_minutes=60 * 60)
    schedule = EMPTY
    for n, quarter in enumerate(starts):
        at = datetime(2027, 3, 1, tzinfo=UTC) + timedelta(minutes=15 * quarter)
        local = at.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Kolkata"))
        p = ShiftPlan(local.date(), local.time(), hours * 60, Anchor.AGENT)
        shift = roster.build_shift(f"s{n}", p, ctx)
        try:
            schedule = roster.assign(schedule, [shift], ctx).schedule
        except FailedPrecondition:
            continue
    ordered = sorted(schedule.shifts, key=lambda s: s.start)
    for a, b in itertools.pairwise(ordered):
        assert b.start - a.end >= timedelta(minutes=ctx.min_rest_minutes)


def test_fall_back_night_is_paid_one_hour_more() -> None:
    ny = replace(PUNE, agent_zone="America/New_York", client_zone="America/New_York")
    night = ShiftPlan(date(2026, 10, 31), time(22, 0), 8 * 60, Anchor.AGENT, (LUNCH,))
    shift = roster.build_shift("n", night, ny)
    assert (shift.elapsed_minutes, shift.paid_minutes) == (9 * 60, 9 * 60 - 30)


zone_names = st.sampled_from(
    ["Asia/Kolkata", "America/New_York", "Europe/London", "Australia/Sydney", "America/Santiago"]
)


@settings(max_examples=200, deadline=None)
@given(
    zone=zone_names,
    agent_zone=zone_names,
    day=st.dates(min_value=date(2026, 1, 1), max_value=date(2028, 12, 31)),
    opens=st.integers(min_value=0, max_value=95),
    window=st.integers(min_value=60, max_value=24 * 60),
    offset=st.integers(min_value=0, max_value=24 * 60),
    length=st.integers(min_value=15, max_value=16 * 60),
)
def test_operating_window_accepts_exactly_the_shifts_inside_it(
    *, zone: str, agent_zone: str, day: date, opens: int, window: int, offset: int, length: int
) -> None:
    start_wall = time(opens // 4, opens % 4 * 15)
    ctx = replace(
        PUNE,
        agent_zone=agent_zone,
        client_zone=zone,
        operating_hours=(OperatingWindow(day.weekday(), start_wall, window),),
        holidays=frozenset(),  # only the operating window is under test
    )
    local = datetime.combine(day, start_wall) + timedelta(minutes=offset)
    # Past midnight the start wall time is still placed on the roster date: the shift then
    # starts before the window, which the rule must refuse just the same.
    p = ShiftPlan(day, local.time(), length, Anchor.CLIENT)
    try:
        shift = roster.build_shift("s", p, ctx)
    except FailedPrecondition:
        return  # a shift time skipped by DST: refused elsewhere
    # A window bound skipped by DST is reached when the clocks jump past it.
    opened, closed = opening_interval(day, start_wall, window, zone)
    inside = opened <= shift.start and shift.end <= closed
    assert (broken(EMPTY, p, ctx) == []) == inside


@settings(max_examples=100, deadline=None)
@given(
    starts=st.lists(st.integers(min_value=0, max_value=27), min_size=1, max_size=20),
    zone=zone_names,
)
def test_accepted_weeks_stay_within_the_contract(starts: list[int], zone: str) -> None:
    ctx = replace(PUNE, agent_zone=zone, weekly_minutes=30 * 60, min_rest_minutes=0)
    schedule = EMPTY
    for n, day_index in enumerate(starts):
        p = ShiftPlan(MON + timedelta(days=day_index), time(22, 0), 9 * 60, Anchor.AGENT)
        try:
            shift = roster.build_shift(f"s{n}", p, ctx)
            schedule = roster.assign(schedule, [shift], ctx).schedule
        except FailedPrecondition:
            continue
    weeks: dict[date, int] = {}
    for s in schedule.shifts:
        monday = s.roster_date - timedelta(days=s.roster_date.weekday())
        weeks[monday] = weeks.get(monday, 0) + s.paid_minutes
    assert all(total <= ctx.weekly_minutes for total in weeks.values())
