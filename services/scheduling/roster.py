"""Roster rules: one agent's schedule (shifts and leave) and every change to it. Pure, no I/O.

The aggregate is the agent's schedule (type `schedule`, id = agent id): every rule that spans
several shifts (overlap, minimum rest, weekly hours, approved leave) is checked against one
version of it, and the change commits as that aggregate's next event, so two concurrent changes
to one agent cannot both pass. Context that lives in other aggregates (the agent's contract, the
team's operating hours and rest, the site's holidays) is read just before deciding.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from enum import Enum

from services.scheduling import rostertime as rt
from wfm_runtime.errors import AlreadyExists, FailedPrecondition, NotFound, RuleViolation

DEFAULT_MIN_REST_MINUTES = 11 * 60
MAX_SHIFT_MINUTES = 16 * 60
# The aggregate keeps shifts from this many days before today, or before the earliest date a
# change touches if that is earlier (enough for weekly hours and rest); older shifts live on in
# the views only.
KEEP_DAYS = 42
MAX_SHIFTS = 400


class ShiftStatus(Enum):
    DRAFT = "DRAFT"
    PUBLISHED = "PUBLISHED"
    CANCELLED = "CANCELLED"


class ActivityKind(Enum):
    BREAK = "BREAK"
    LUNCH = "LUNCH"
    MEETING = "MEETING"
    TRAINING = "TRAINING"


class Anchor(Enum):
    AGENT = "AGENT"  # the agent's home zone (their site)
    CLIENT = "CLIENT"  # the team's client zone


class LeaveKind(Enum):
    ANNUAL = "ANNUAL"
    SICK = "SICK"
    UNPAID = "UNPAID"
    OTHER = "OTHER"


class LeaveStatus(Enum):
    REQUESTED = "REQUESTED"
    APPROVED = "APPROVED"
    DENIED = "DENIED"
    CANCELLED = "CANCELLED"


OVERRIDABLE = frozenset({"PUBLIC_HOLIDAY", "APPROVED_LEAVE"})


@dataclass(frozen=True)
class Activity:
    kind: ActivityKind
    offset_minutes: int  # from the shift's start, in elapsed minutes
    length_minutes: int
    paid: bool = True


@dataclass(frozen=True)
class ShiftPlan:
    """What a scheduler asks for: a wall-clock start and length on a roster date."""

    roster_date: date
    start_local: time
    length_minutes: int
    anchor: Anchor
    activities: tuple[Activity, ...] = ()
    pattern_id: str = ""
    overrides: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Shift:
    shift_id: str
    team_id: str
    roster_date: date
    start: datetime  # UTC
    end: datetime  # UTC
    zone: str  # the anchoring zone
    start_local: time
    length_minutes: int  # wall-clock length as planned
    activities: tuple[Activity, ...] = ()
    pattern_id: str = ""
    status: ShiftStatus = ShiftStatus.DRAFT
    overrides: frozenset[str] = frozenset()
    cancel_reason: str = ""
    published: bool = False  # has been published (agents see it, also once cancelled)

    @property
    def active(self) -> bool:
        return self.status is not ShiftStatus.CANCELLED

    @property
    def elapsed_minutes(self) -> int:
        return rt.minutes(self.start, self.end)

    @property
    def paid_minutes(self) -> int:
        unpaid = sum(a.length_minutes for a in self.activities if not a.paid)
        return self.elapsed_minutes - unpaid

    def activity_spans(self) -> list[tuple[datetime, datetime]]:
        return [
            (
                self.start + timedelta(minutes=a.offset_minutes),
                self.start + timedelta(minutes=a.offset_minutes + a.length_minutes),
            )
            for a in self.activities
        ]


@dataclass(frozen=True)
class Leave:
    leave_id: str
    kind: LeaveKind
    start: datetime  # UTC
    end: datetime  # UTC
    start_date: date  # first day, in the agent's zone
    end_date: date  # last day (inclusive)
    full_days: bool
    status: LeaveStatus = LeaveStatus.REQUESTED
    note: str = ""
    decision_reason: str = ""
    days: float = 0.0  # what it takes from the allowance (annual leave only)
    # Whole days approved: the contract's working days at approval, which they stay counted on.
    working_days: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Schedule:
    agent_id: str
    shifts: tuple[Shift, ...] = ()
    leave: tuple[Leave, ...] = ()
    version: int = 0

    def shift(self, shift_id: str) -> Shift:
        for shift in self.shifts:
            if shift.shift_id == shift_id:
                return shift
        raise NotFound("shift", f"agents/{self.agent_id}/shifts/{shift_id}")

    def leave_request(self, leave_id: str) -> Leave:
        for item in self.leave:
            if item.leave_id == leave_id:
                return item
        raise NotFound("leave request", f"agents/{self.agent_id}/leaveRequests/{leave_id}")


@dataclass(frozen=True)
class OperatingWindow:
    """Local opening time and length on one weekday (0 = Monday), in the client's zone."""

    weekday: int
    open_local: time
    length_minutes: int


@dataclass(frozen=True)
class Context:
    """Facts from other aggregates that the rules need (read just before deciding)."""

    agent_zone: str
    client_zone: str
    team_id: str
    weekly_minutes: int
    min_rest_minutes: int = DEFAULT_MIN_REST_MINUTES
    operating_hours: tuple[OperatingWindow, ...] = ()
    holidays: frozenset[date] = frozenset()
    site: str = ""
    annual_allowance_days: int = 0
    working_days: frozenset[int] = frozenset({1, 2, 3, 4, 5})  # the contract's ISO weekdays
    weekly_label: str = ""  # "full-time 40 h" etc. for messages
    today: date | None = None  # the deciding day (UTC): nothing from it on is pruned
    # The working days through time: (first local date in force, ISO weekdays), oldest first;
    # the first period also covers every earlier date. (): `working_days` all along.
    working_days_history: tuple[tuple[date, frozenset[int]], ...] = ()

    def zone(self, anchor: Anchor) -> str:
        return self.agent_zone if anchor is Anchor.AGENT else self.client_zone

    def working_days_on(self, day: date) -> frozenset[int]:
        """The contract's working days in force on `day` (the agent's local date): those of the
        last change that took effect on or before it, the first contract before any."""
        if not self.working_days_history:
            return self.working_days
        in_force = self.working_days_history[0][1]
        for since, days in self.working_days_history[1:]:
            if since > day:
                break
            in_force = days
        return in_force


@dataclass(frozen=True)
class Change:
    """A decided change: the new schedule and the ids of the shifts and leave it touched."""

    schedule: Schedule
    shift_ids: tuple[str, ...] = ()
    leave_ids: tuple[str, ...] = ()
    violations: tuple[RuleViolation, ...] = field(default=())


# --- building shifts -------------------------------------------------------------------------
def build_shift(shift_id: str, plan: ShiftPlan, ctx: Context) -> Shift:
    """Resolves the plan's wall-clock times; refuses local times skipped by a DST change."""
    zone = ctx.zone(plan.anchor)
    try:
        start, end = rt.local_interval(
            plan.roster_date, plan.start_local, plan.length_minutes, zone
        )
    except rt.NonexistentLocalTime as exc:
        raise FailedPrecondition(
            [RuleViolation("NONEXISTENT_LOCAL_TIME", f"shifts/{shift_id}", str(exc))]
        ) from exc
    return Shift(
        shift_id=shift_id,
        team_id=ctx.team_id,
        roster_date=plan.roster_date,
        start=start,
        end=end,
        zone=zone,
        start_local=plan.start_local,
        length_minutes=plan.length_minutes,
        activities=plan.activities,
        pattern_id=plan.pattern_id,
        overrides=plan.overrides,
    )


# --- the rules -------------------------------------------------------------------------------
def violations(schedule: Schedule, shift: Shift, ctx: Context) -> list[RuleViolation]:
    """Every rule `shift` would break if it joined `schedule` (which must not contain it)."""
    others = [s for s in schedule.shifts if s.active and s.shift_id != shift.shift_id]
    subject = f"agents/{schedule.agent_id}/shifts/{shift.shift_id}"
    found: list[RuleViolation] = []
    found += _overlaps(shift, others, subject)
    found += _rest(shift, others, ctx, subject)
    found += _weekly(shift, others, ctx, subject)
    found += _leave(shift, schedule.leave, subject)
    found += _holiday(shift, ctx, subject)
    found += _operating_hours(shift, ctx, subject)
    return found


def _overlaps(shift: Shift, others: list[Shift], subject: str) -> list[RuleViolation]:
    return [
        RuleViolation(
            "OVERLAP",
            subject,
            f"overlaps shift {o.shift_id} ({_utc(o.start)}-{_utc(o.end)} UTC, roster date "
            f"{o.roster_date})",
        )
        for o in others
        if o.start < shift.end and shift.start < o.end
    ]


def _rest(shift: Shift, others: list[Shift], ctx: Context, subject: str) -> list[RuleViolation]:
    rest = timedelta(minutes=ctx.min_rest_minutes)
    found = []
    for o in others:
        if o.start < shift.end and shift.start < o.end:
            continue  # reported as an overlap
        gap = shift.start - o.end if o.end <= shift.start else o.start - shift.end
        if gap < rest:
            found.append(
                RuleViolation(
                    "MIN_REST",
                    subject,
                    f"only {_hm(gap)} rest next to shift {o.shift_id} "
                    f"(roster date {o.roster_date}); the team's minimum is {_hm(rest)}",
                )
            )
    return found


def _weekly(shift: Shift, others: list[Shift], ctx: Context, subject: str) -> list[RuleViolation]:
    monday = rt.week_start(shift.roster_date)
    week = [o for o in others if rt.week_start(o.roster_date) == monday]
    total = shift.paid_minutes + sum(o.paid_minutes for o in week)
    if total <= ctx.weekly_minutes:
        return []
    return [
        RuleViolation(
            "WEEKLY_HOURS",
            subject,
            f"week of {monday} would have {_hm(timedelta(minutes=total))} paid, over the "
            f"contract's {_hm(timedelta(minutes=ctx.weekly_minutes))}",
        )
    ]


def _leave(shift: Shift, leave: Iterable[Leave], subject: str) -> list[RuleViolation]:
    if "APPROVED_LEAVE" in shift.overrides:
        return []
    return [
        RuleViolation(
            "APPROVED_LEAVE",
            subject,
            f"falls on approved {item.kind.value.lower()} leave {item.leave_id} "
            f"({item.start_date} to {item.end_date})",
        )
        for item in leave
        if item.status is LeaveStatus.APPROVED and on_leave(shift, item)
    ]


def on_leave(shift: Shift, item: Leave) -> bool:
    """Whole-day leave covers the shifts of its roster dates (a night shift that starts the
    evening before a day off is still worked); hourly leave covers the shifts it overlaps."""
    if item.full_days:
        return item.start_date <= shift.roster_date <= item.end_date
    return item.start < shift.end and shift.start < item.end


def _holiday(shift: Shift, ctx: Context, subject: str) -> list[RuleViolation]:
    # A shift is on a holiday when it starts on that date at the agent's site (their zone).
    day = rt.local_date(shift.start, ctx.agent_zone)
    if day not in ctx.holidays or "PUBLIC_HOLIDAY" in shift.overrides:
        return []
    return [
        RuleViolation(
            "PUBLIC_HOLIDAY",
            subject,
            f"starts on {day}, a public holiday at site {ctx.site!r}; override to allow it",
        )
    ]


def _operating_hours(shift: Shift, ctx: Context, subject: str) -> list[RuleViolation]:
    if not ctx.operating_hours:
        return []  # a team without operating hours set has no such constraint
    if any(
        opens <= shift.start and shift.end <= closes for opens, closes in _open_spans(shift, ctx)
    ):
        return []
    return [
        RuleViolation(
            "OPERATING_HOURS",
            subject,
            f"lies outside the team's operating hours on {shift.roster_date:%A %Y-%m-%d} "
            f"({ctx.client_zone})",
        )
    ]


def _open_spans(shift: Shift, ctx: Context) -> list[tuple[datetime, datetime]]:
    """The team's open hours around the shift in UTC, windows that meet merged: a shift may
    start in the previous day's window that runs past midnight, or run from one day's window
    into the next (a team open around the clock)."""
    first = rt.local_date(shift.start, ctx.client_zone) - timedelta(days=1)
    days = [first + timedelta(days=n) for n in range(3)]  # shifts are at most 16 h long
    spans = sorted(
        rt.opening_interval(day, w.open_local, w.length_minutes, ctx.client_zone)
        for day in days
        for w in ctx.operating_hours
        if w.weekday == day.weekday()
    )
    merged: list[tuple[datetime, datetime]] = []
    for opens, closes in spans:
        if merged and opens <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], closes))
        else:
            merged.append((opens, closes))
    return merged


def _utc(instant: datetime) -> str:
    return f"{instant:%Y-%m-%d %H:%M}"


def _hm(delta: timedelta) -> str:
    total = int(delta.total_seconds() // 60)
    return f"{total // 60}h{total % 60:02d}"


# --- changes ---------------------------------------------------------------------------------
def _check(found: list[RuleViolation], dry_run: bool) -> None:
    if found and not dry_run:
        raise FailedPrecondition(found)


def assign(
    schedule: Schedule, shifts: list[Shift], ctx: Context, *, dry_run: bool = False
) -> Change:
    """Adds shifts (all or none): each is checked against the schedule and the others."""
    found: list[RuleViolation] = []
    current = schedule
    for shift in shifts:
        if any(s.shift_id == shift.shift_id for s in current.shifts):
            found.append(
                RuleViolation("SHIFT_EXISTS", f"shifts/{shift.shift_id}", "shift id already used")
            )
            continue
        found += violations(current, shift, ctx)
        current = replace(current, shifts=(*current.shifts, shift))
    _check(found, dry_run)
    kept = _pruned(current, shifts, ctx.today)
    return Change(kept, tuple(s.shift_id for s in shifts), (), tuple(found))


def change_shift(
    schedule: Schedule, shift_id: str, moved: Shift, ctx: Context, *, dry_run: bool = False
) -> Change:
    """Moves or changes a shift (new date, times, activities), keeping its id, team and status.

    The team stays the one the shift was planned for: an agent who changed team since still
    works that shift for the old team (its roster, publishing and coverage), which the update
    has no field to change."""
    old = schedule.shift(shift_id)
    if not old.active:
        raise _precondition("SHIFT_CANCELLED", shift_id, "a cancelled shift cannot be changed")
    # A published shift stays published when moved: the agent's roster shows published ones.
    moved = replace(
        moved,
        shift_id=shift_id,
        team_id=old.team_id,
        status=old.status,
        published=old.published,
    )
    found = violations(schedule, moved, ctx)
    _check(found, dry_run)
    shifts = tuple(moved if s.shift_id == shift_id else s for s in schedule.shifts)
    return Change(replace(schedule, shifts=shifts), (shift_id,), (), tuple(found))


def cancel_shift(schedule: Schedule, shift_id: str, reason: str) -> Change | None:
    old = schedule.shift(shift_id)
    if not old.active:
        return None
    return _set_shifts(schedule, {shift_id}, ShiftStatus.CANCELLED, reason)


def publish(schedule: Schedule, team_id: str, monday: date) -> Change | None:
    """Publishes the team's draft shifts of the week starting `monday`; None if there are none."""
    ids = {
        s.shift_id
        for s in schedule.shifts
        if s.status is ShiftStatus.DRAFT
        and s.team_id == team_id
        and rt.week_start(s.roster_date) == monday
    }
    return _set_shifts(schedule, ids, ShiftStatus.PUBLISHED) if ids else None


def drafted_weeks(schedule: Schedule, shift_ids: Iterable[str]) -> set[tuple[str, date]]:
    """The (team, week's Monday) of each of these shifts that is a draft: the weeks whose
    publishing must reach the agent."""
    ids = set(shift_ids)
    return {
        (s.team_id, rt.week_start(s.roster_date))
        for s in schedule.shifts
        if s.shift_id in ids and s.status is ShiftStatus.DRAFT and s.team_id
    }


def _set_shifts(schedule: Schedule, ids: set[str], status: ShiftStatus, reason: str = "") -> Change:
    shifts = tuple(
        replace(
            s,
            status=status,
            cancel_reason=reason,
            published=s.published or status is ShiftStatus.PUBLISHED,
        )
        if s.shift_id in ids
        else s
        for s in schedule.shifts
    )
    return Change(replace(schedule, shifts=shifts), tuple(sorted(ids)))


def _pruned(schedule: Schedule, touched: list[Shift], today: date | None) -> Schedule:
    """Drops shifts far older than both today and what the change touches: the event stays
    small. Never by the change's date alone: planning months ahead would drop this week's
    shifts, and the rules would stop seeing them."""
    if not touched:
        return schedule
    earliest = min(s.roster_date for s in touched)
    horizon = min(earliest, today or earliest) - timedelta(days=KEEP_DAYS)
    kept = tuple(s for s in schedule.shifts if s.roster_date >= horizon)
    if len(kept) > MAX_SHIFTS:
        raise _precondition(
            "TOO_MANY_SHIFTS",
            touched[0].shift_id,
            f"an agent's schedule holds at most {MAX_SHIFTS} current shifts",
        )
    return replace(schedule, shifts=kept)


def _precondition(kind: str, shift_id: str, text: str) -> FailedPrecondition:
    return FailedPrecondition([RuleViolation(kind, f"shifts/{shift_id}", text)])


# --- leave -----------------------------------------------------------------------------------
def leave_days(leave: Leave, ctx: Context) -> float:
    """What annual leave takes from the allowance: each working day of the contract that is not
    a public holiday (a week off is five days for a Monday-Friday contract, not seven), or the
    hours as a share of a contract day (weekly minutes over the contract's working days: a four
    day week of 40 hours has 10-hour days)."""
    if leave.kind is not LeaveKind.ANNUAL:
        return 0.0
    if leave.full_days:
        count = (leave.end_date - leave.start_date).days + 1
        days = [leave.start_date + timedelta(days=n) for n in range(count)]
        return float(sum(1 for d in days if _working(d, ctx) and d not in ctx.holidays))
    day_minutes = max(ctx.weekly_minutes / max(len(ctx.working_days), 1), 1)
    return round(rt.minutes(leave.start, leave.end) / day_minutes, 2)


def _working(day: date, ctx: Context) -> bool:
    return day.isoweekday() in ctx.working_days


def request_leave(schedule: Schedule, leave: Leave, ctx: Context) -> Change:
    if any(item.leave_id == leave.leave_id for item in schedule.leave):
        raise FailedPrecondition(
            [RuleViolation("LEAVE_EXISTS", f"leaveRequests/{leave.leave_id}", "id already used")]
        )
    clash = [i.leave_id for i in schedule.leave if i.status in HOLDING and _meets(i, leave)]
    if clash:
        # The same days twice (e.g. a double submit) would take them twice from the allowance.
        raise FailedPrecondition(
            [
                RuleViolation(
                    "LEAVE_OVERLAP",
                    f"leaveRequests/{leave.leave_id}",
                    f"overlaps pending or approved leave {', '.join(clash)}",
                )
            ]
        )
    leave = replace(leave, days=leave_days(leave, ctx), status=LeaveStatus.REQUESTED)
    return Change(replace(schedule, leave=(*schedule.leave, leave)), (), (leave.leave_id,))


HOLDING = frozenset({LeaveStatus.REQUESTED, LeaveStatus.APPROVED})


def _meets(a: Leave, b: Leave) -> bool:
    return a.start < b.end and b.start < a.end


def leave_year(item: Leave, zone: str) -> int:
    """The year whose allowance the leave draws on: that of its first day in the agent's
    calendar. Hourly leave is stored as two instants (a decoded one carries UTC dates), so its
    day is taken from its start again."""
    return item.start_date.year if item.full_days else rt.local_date(item.start, zone).year


def counted_days(item: Leave, ctx: Context) -> float:
    """Whole days are counted against the site's current holidays (a year's holidays may be set
    after the leave was requested) and the contract's working days: those it was approved on,
    else the current ones (a later contract does not re-price leave already granted); hours keep
    the share of a contract day they were asked at."""
    if not item.full_days:
        return item.days
    return leave_days(item, replace(ctx, working_days=item.working_days or ctx.working_days))


@dataclass(frozen=True)
class Balance:
    year: int
    allowance_days: int
    public_holidays: int
    taken_days: float
    pending_days: float

    @property
    def remaining_days(self) -> float:
        return round(self.allowance_days - self.public_holidays - self.taken_days, 2)


def balance(schedule: Schedule, year: int, ctx: Context) -> Balance:
    """Annual leave of `year`: the allowance includes the site's public holidays that fall on
    the contract's working days (one on a rest day gives the agent no day off), each on the
    working days in force on its date: a later contract does not re-price a past holiday.
    Whole days not yet approved are counted on the current contract (nothing is granted yet);
    approved ones on the working days they were approved on."""
    annual = [
        item
        for item in schedule.leave
        if item.kind is LeaveKind.ANNUAL and leave_year(item, ctx.agent_zone) == year
    ]
    return Balance(
        year,
        ctx.annual_allowance_days,
        sum(1 for d in ctx.holidays if d.year == year and d.isoweekday() in ctx.working_days_on(d)),
        round(sum(counted_days(i, ctx) for i in annual if i.status is LeaveStatus.APPROVED), 2),
        round(sum(counted_days(i, ctx) for i in annual if i.status is LeaveStatus.REQUESTED), 2),
    )


def approve_leave(schedule: Schedule, leave_id: str, ctx: Context, reason: str = "") -> Change:
    """Approves leave, cancelling every draft or published shift it overlaps (same commit)."""
    item = schedule.leave_request(leave_id)
    if item.status is LeaveStatus.APPROVED:
        return Change(schedule)
    if item.status is not LeaveStatus.REQUESTED:
        raise _leave_rule(
            "LEAVE_DECIDED",
            leave_id,
            f"leave that was {item.status.value.lower()} cannot be approved",
        )
    item = replace(item, days=counted_days(item, ctx))
    if item.kind is LeaveKind.ANNUAL:
        year = leave_year(item, ctx.agent_zone)
        left = balance(schedule, year, ctx).remaining_days
        if item.days > left:
            raise _leave_rule(
                "LEAVE_ALLOWANCE",
                leave_id,
                f"needs {item.days:g} days of annual leave but {left:g} remain in {year}",
            )
    hit = {s.shift_id for s in schedule.shifts if s.active and on_leave(s, item)}
    cancelled = _set_shifts(schedule, hit, ShiftStatus.CANCELLED, f"leave {leave_id}").schedule
    approved = replace(
        item,
        status=LeaveStatus.APPROVED,
        decision_reason=reason,
        working_days=ctx.working_days if item.full_days else frozenset(),
    )
    leave = tuple(approved if i.leave_id == leave_id else i for i in schedule.leave)
    return Change(replace(cancelled, leave=leave), tuple(sorted(hit)), (leave_id,))


def deny_leave(schedule: Schedule, leave_id: str, reason: str) -> Change:
    item = schedule.leave_request(leave_id)
    if item.status is not LeaveStatus.REQUESTED:
        raise _leave_rule(
            "LEAVE_DECIDED", leave_id, f"leave is already {item.status.value.lower()}"
        )
    denied = replace(item, status=LeaveStatus.DENIED, decision_reason=reason)
    leave = tuple(denied if i.leave_id == leave_id else i for i in schedule.leave)
    return Change(replace(schedule, leave=leave), (), (leave_id,))


def cancel_leave(
    schedule: Schedule, leave_id: str, reason: str, *, now: datetime, own: bool
) -> Change:
    """Withdraws pending or approved leave; its days return to the balance. An agent withdrawing
    their own leave (`own`) must do so before it starts. Shifts that the approval cancelled stay
    cancelled: they may have been re-planned since, so the scheduler assigns again if needed."""
    item = schedule.leave_request(leave_id)
    if item.status is LeaveStatus.CANCELLED:
        return Change(schedule)
    if item.status is LeaveStatus.DENIED:
        raise _leave_rule("LEAVE_DECIDED", leave_id, "leave that was denied cannot be withdrawn")
    if own and item.start <= now:
        raise _leave_rule(
            "LEAVE_STARTED",
            leave_id,
            f"leave that started at {_utc(item.start)} UTC can only be withdrawn by a scheduler",
        )
    cancelled = replace(item, status=LeaveStatus.CANCELLED, decision_reason=reason)
    leave = tuple(cancelled if i.leave_id == leave_id else i for i in schedule.leave)
    return Change(replace(schedule, leave=leave), (), (leave_id,))


def _leave_rule(kind: str, leave_id: str, text: str) -> FailedPrecondition:
    return FailedPrecondition([RuleViolation(kind, f"leaveRequests/{leave_id}", text)])


# --- coverage --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime
    required: int
    staffed: float  # agents on productive time, averaged over the interval

    @property
    def gap(self) -> float:
        return round(self.required - self.staffed, 2)


def intervals_of_day(
    day: date, zone: str, step_minutes: int
) -> list[tuple[datetime, datetime, int]]:
    """The day's intervals in UTC with the index of their local wall time in the requirement.

    A 23- or 25-hour day has fewer or more intervals; a repeated local hour reuses its slots.
    """
    start, end = rt.day_bounds(day, zone)
    step = timedelta(minutes=step_minutes)
    out = []
    cursor = start
    while cursor < end:
        local = rt.local_clock_minutes(cursor, zone)
        out.append((cursor, min(cursor + step, end), local // step_minutes))
        cursor += step
    return out


def productive_spans(shift: Shift, leave: Iterable[Leave]) -> list[tuple[datetime, datetime]]:
    """The shift minus its activities (breaks, lunch, meetings, training) and approved leave."""
    holes = shift.activity_spans() + [
        (shift.start, shift.end) if i.full_days else (i.start, i.end)
        for i in leave
        if i.status is LeaveStatus.APPROVED and on_leave(shift, i)
    ]
    spans = [(shift.start, shift.end)]
    for hole in holes:
        spans = [part for span in spans for part in _minus(span, hole)]
    return spans


def _minus(
    span: tuple[datetime, datetime], hole: tuple[datetime, datetime]
) -> list[tuple[datetime, datetime]]:
    if hole[1] <= span[0] or span[1] <= hole[0]:
        return [span]
    parts = []
    if span[0] < hole[0]:
        parts.append((span[0], hole[0]))
    if hole[1] < span[1]:
        parts.append((hole[1], span[1]))
    return parts


def needs_of(slots: list[tuple[datetime, datetime, int]], required: list[int]) -> list[int]:
    """Each slot's requirement: the entry for its local wall-clock interval (0 past the end)."""
    return [required[index] if index < len(required) else 0 for _, _, index in slots]


def coverage(
    slots: list[tuple[datetime, datetime, int]],
    needs: list[int],
    spans: list[tuple[datetime, datetime]],
) -> list[Interval]:
    """Per slot (in time order, any number of days): requirement and staffed, the productive
    agent-minutes inside it over its length. Each span only visits the slots it touches."""
    starts = [start for start, _, _ in slots]
    minutes_in = [0.0] * len(slots)
    for span in spans:
        index = max(bisect_right(starts, span[0]) - 1, 0)
        while index < len(slots) and slots[index][0] < span[1]:
            minutes_in[index] += rt.overlap_minutes((slots[index][0], slots[index][1]), span)
            index += 1
    return [
        Interval(start, end, need, round(staffed / (rt.minutes(start, end) or 1), 2))
        for (start, end, _), need, staffed in zip(slots, needs, minutes_in, strict=True)
    ]


# --- sites, patterns, requirements ----------------------------------------------------------
@dataclass(frozen=True)
class Site:
    site_id: str
    display_name: str = ""
    time_zone: str = ""
    holidays: tuple[tuple[date, str], ...] = ()
    version: int = 0

    @property
    def holiday_dates(self) -> frozenset[date]:
        return frozenset(d for d, _ in self.holidays)


@dataclass(frozen=True)
class Pattern:
    pattern_id: str
    display_name: str = ""
    start_local: time = time()
    length_minutes: int = 0
    anchor: Anchor = Anchor.AGENT
    activities: tuple[Activity, ...] = ()
    iso_weekdays: frozenset[int] = frozenset()
    version: int = 0


@dataclass(frozen=True)
class Requirement:
    team_id: str
    key: str  # a date `YYYY-MM-DD` or a weekday `mon`..`sun`
    interval_minutes: int = 30
    required: tuple[int, ...] = ()
    version: int = 0


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def create_site(current: Site, requested: Site) -> Site:
    if current.version:
        raise AlreadyExists("site", f"sites/{requested.site_id}")
    return replace(requested, version=current.version + 1)


def set_holidays(current: Site, year: int, holidays: tuple[tuple[date, str], ...]) -> Site | None:
    if not current.version:
        raise NotFound("site", f"sites/{current.site_id}")
    kept = tuple(h for h in current.holidays if h[0].year != year)
    merged = tuple(sorted(kept + holidays))
    return None if merged == current.holidays else replace(current, holidays=merged)


def create_pattern(current: Pattern, requested: Pattern) -> Pattern:
    if current.version:
        raise AlreadyExists("shift pattern", f"shiftPatterns/{requested.pattern_id}")
    return replace(requested, version=1)


def pattern_dates(pattern: Pattern, first: date, last: date) -> list[date]:
    """The pattern's working days (ISO weekdays) from `first` to `last` inclusive."""
    count = (last - first).days + 1
    days = (first + timedelta(days=n) for n in range(max(count, 0)))
    return [d for d in days if d.isoweekday() in pattern.iso_weekdays]


def requirement_for(requirements: dict[str, Requirement], day: date) -> Requirement | None:
    """A date's own requirement, else its weekday template."""
    return requirements.get(day.isoformat()) or requirements.get(WEEKDAYS[day.weekday()])


@dataclass(frozen=True)
class CoverageDay:
    """One client-local day of a coverage report: its own interval length (15 or 30, from that
    day's requirement; 30 when none), its slots and the requirement of each."""

    day: date
    interval_minutes: int
    slots: list[tuple[datetime, datetime, int]]
    needs: list[int]


def coverage_days(
    requirements: dict[str, Requirement], first: date, last: date, zone: str
) -> list[CoverageDay]:
    """The days `first`..`last` on the client's clock, each sliced by its own requirement: a
    week can mix 15- and 30-minute days, so no one length describes every interval."""
    out = []
    for n in range((last - first).days + 1):
        day = first + timedelta(days=n)
        need = requirement_for(requirements, day)
        step = need.interval_minutes if need else 30
        slots = intervals_of_day(day, zone, step)
        out.append(
            CoverageDay(day, step, slots, needs_of(slots, list(need.required) if need else []))
        )
    return out


def common_interval(days: list[CoverageDay]) -> int:
    """The one interval length of every day, or 0 when they differ (read each interval's)."""
    lengths = {d.interval_minutes for d in days}
    return lengths.pop() if len(lengths) == 1 else 0
