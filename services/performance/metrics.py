"""Metric rules (docs/metrics.md): pure functions from an agent's inputs to one roster date's sums.

Every instant of an agent's time belongs to exactly one roster date: the roster date of the
shift that covers it (so a night shift's minutes after midnight count for the day it started),
else the agent's local calendar date. A day's figures are stored as sums (numerators and
denominators, in milliseconds or counts) so that weeks, months and teams roll up by adding;
ratios are taken only when a scorecard is read (`derive`).
"""

from __future__ import annotations

import bisect
import functools
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from wfm_runtime.timefmt import EPOCH, epoch_ms

# A status that has not changed for this long counts as offline after it: a forgotten
# log-out does not earn a day of logged-in time.
STATUS_CARRY = timedelta(hours=24)
# A shift starts on its roster date on its anchor's clock: the agent's, or the client's,
# whose midnight is up to ZONE_GAP (UTC+14 to UTC-12) from the agent's (a New York 23:00
# start is 09:30 the next day in Pune); it lasts at most MAX_SHIFT (scheduling's
# MAX_SHIFT_MINUTES). So a roster date's time lies within [local midnight - BEFORE_MIDNIGHT,
# next local midnight + AFTER_MIDNIGHT] on the agent's clock.
ZONE_GAP = timedelta(hours=26)
MAX_SHIFT = timedelta(hours=16)
BEFORE_MIDNIGHT = ZONE_GAP
AFTER_MIDNIGHT = ZONE_GAP + MAX_SHIFT

PRODUCTIVE_STATUSES = frozenset({"AVAILABLE", "ON_CONTACT", "AFTER_CONTACT_WORK"})
OFFLINE = "OFFLINE"
WORK = "WORK"  # the activity of shift time no scheduled activity covers


# --- inputs ------------------------------------------------------------------------------
@dataclass(frozen=True)
class StatusChange:
    """From availability's StatusChanged: the agent entered `status` at `at`."""

    version: int
    at: datetime
    status: str
    reason_code: str = ""


@dataclass(frozen=True)
class Activity:
    kind: str  # WORK, BREAK, LUNCH, MEETING, TRAINING, ...
    start: datetime
    end: datetime
    paid: bool = True
    productive: bool = True


@dataclass(frozen=True)
class Shift:
    shift_id: str
    roster_date: date
    start: datetime
    end: datetime
    activities: tuple[Activity, ...] = ()

    def activity_at(self, instant: datetime) -> Activity | None:
        if not self.start <= instant < self.end:
            return None
        for activity in self.activities:
            if activity.start <= instant < activity.end:
                return activity
        return Activity(WORK, self.start, self.end)


@dataclass(frozen=True)
class Leave:
    """Approved leave: scheduled time inside it is not absence."""

    leave_id: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class TrainingCompletion:
    """From training's CompletionRecorded: `minutes` of training at `at` (the session's
    start; a self-paced session's completion, views.training_completion). It counts on the
    roster date of that instant, like a case: decided from the shifts known when figures are
    computed, so a shift published or moved later moves it too; when no shift covers it, on
    the local date in the agent's zone now (`AgentInputs.zone`), as a case or a status does,
    so one agent-day follows one clock. `zone` is the agent's zone when training recorded it:
    it only finds where a copy stored before the instant was kept was filed
    (views.DayBook.record_training_completion)."""

    completion_id: str
    at: datetime | None
    zone: str
    minutes: int
    technical: bool
    # Stored before the instant was kept (before 2026-12-06): only the date it counted on.
    filed_on: date | None = None


@dataclass(frozen=True)
class CaseOutcome:
    case_id: str
    agent_id: str
    channel: str
    opened: datetime
    resolved: datetime
    handle_ms: int  # talk + hold + after-contact work
    first_contact: bool
    has_sla: bool
    sla_met: bool
    csat: int | None = None
    pulse: int | None = None


@dataclass(frozen=True)
class AgentInputs:
    """Everything stored for an agent around one roster date."""

    zone: str = "UTC"
    changes: tuple[StatusChange, ...] = ()
    shifts: tuple[Shift, ...] = ()
    leave: tuple[Leave, ...] = ()
    trainings: tuple[TrainingCompletion, ...] = ()
    cases: tuple[CaseOutcome, ...] = ()


# --- sums --------------------------------------------------------------------------------
SUM_FIELDS = (
    "scheduled_ms",
    "scheduled_productive_ms",
    "logged_in_ms",
    "absence_ms",
    "late_logins",
    "no_shows",
    "adherent_ms",
    "adherence_base_ms",
    "productive_ms",
    "available_ms",
    "on_contact_ms",
    "after_contact_ms",
    "training_minutes",
    "technical_training_minutes",
    "technical_trainings",
    "cases",
    "sla_cases",
    "sla_met",
    "handle_ms",
    "first_contact",
    "csat_sum",
    "csat_count",
    "pulse_sum",
    "pulse_count",
    "resolution_ms",
    "active_days",
)

Sums = dict[str, int]


def empty_sums() -> Sums:
    return dict.fromkeys(SUM_FIELDS, 0)


def add_sums(total: Sums, more: Mapping[str, int]) -> Sums:
    for name in SUM_FIELDS:
        total[name] = total.get(name, 0) + int(more.get(name, 0))
    return total


# --- attribution -------------------------------------------------------------------------
@functools.lru_cache(maxsize=65_536)
def local_midnight(day: date, zone: str) -> datetime:
    """Cached: the projector asks for the same few midnights thousands of times a batch."""
    return datetime.combine(day, time(), ZoneInfo(zone)).astimezone(UTC)


def window(day: date, zone: str) -> tuple[datetime, datetime]:
    """Where a roster date's time can lie, plus the look-back for the status carried in."""
    start = local_midnight(day, zone) - BEFORE_MIDNIGHT - STATUS_CARRY
    end = local_midnight(day + timedelta(days=1), zone) + AFTER_MIDNIGHT
    return start, end


def days_touched(start: datetime, end: datetime, zone: str) -> list[date]:
    """Roster dates whose figures an input over [start, end] can change (recomputed on arrival)."""
    zone_info = ZoneInfo(zone)
    first = start.astimezone(zone_info).date() - timedelta(days=2)
    last = (end + STATUS_CARRY).astimezone(zone_info).date() + timedelta(days=2)
    days = []
    day = first
    while day <= last:
        w_start, w_end = window(day, zone)
        if w_start <= end and start < w_end:
            days.append(day)
        day += timedelta(days=1)
    return days


_ONE_MS = timedelta(milliseconds=1)


class Piece(NamedTuple):
    """A stretch of a roster date with one status, scheduled activity and leave state (a
    named tuple: a day rule makes dozens per agent-day, and these are cheap to make)."""

    start: datetime
    end: datetime
    status: str
    activity: Activity | None
    on_leave: bool

    @property
    def ms(self) -> int:
        # Integer division: exact for any length.
        return (self.end - self.start) // _ONE_MS


class _Timeline:
    __slots__ = ("changes", "inputs", "times")

    def __init__(self, inputs: AgentInputs) -> None:
        self.inputs = inputs
        self.changes = sorted(inputs.changes, key=_change_order)
        self.times = [c.at for c in self.changes]

    def status_at(self, instant: datetime) -> str:
        index = bisect.bisect_right(self.times, instant) - 1
        if index < 0:
            return OFFLINE
        change = self.changes[index]
        return change.status if instant - change.at < STATUS_CARRY else OFFLINE

    def shift_at(self, instant: datetime) -> Shift | None:
        for shift in self.inputs.shifts:
            if shift.start <= instant < shift.end:
                return shift
        return None

    def on_leave(self, instant: datetime) -> bool:
        leave = self.inputs.leave
        return bool(leave) and any(lv.start <= instant < lv.end for lv in leave)

    def roster_date(self, instant: datetime) -> date:
        return roster_date_at(self.inputs.shifts, instant, self.inputs.zone)


def roster_date_at(shifts: Iterable[Shift], instant: datetime, zone: str) -> date:
    """The roster date an instant belongs to: its (first) covering shift's, else the local
    calendar date."""
    for shift in shifts:
        if shift.start <= instant < shift.end:
            return shift.roster_date
    return instant.astimezone(ZoneInfo(zone)).date()


def _change_order(change: StatusChange) -> tuple[datetime, int]:
    return change.at, change.version


def pieces(inputs: AgentInputs, day: date) -> list[Piece]:
    """The roster date's time cut where anything changes, in order.

    Only the cuts inside `day_span` are walked: no instant outside it belongs to the day, and
    its ends are cuts themselves, so the pieces are those of a cut of the whole window (the
    property test `test_pieces_equal_the_whole_window_cut` holds the two side by side).
    """
    return pieces_between(inputs, day, *day_span(inputs, day))


def pieces_between(inputs: AgentInputs, day: date, first: datetime, last: datetime) -> list[Piece]:
    """The day's pieces among the cuts from `first` to `last` (both cuts themselves)."""
    timeline = _Timeline(inputs)
    cuts = {first, last}
    for offset in (-1, 0, 1, 2):
        cuts.add(local_midnight(day + timedelta(days=offset), inputs.zone))
    for change in timeline.changes:
        cuts.update((change.at, change.at + STATUS_CARRY))
    for shift in inputs.shifts:
        cuts.update((shift.start, shift.end))
        for activity in shift.activities:
            cuts.update((activity.start, activity.end))
    for leave in inputs.leave:
        cuts.update((leave.start, leave.end))
    ordered = sorted(c for c in cuts if first <= c <= last)
    result: list[Piece] = []
    zone = ZoneInfo(inputs.zone)
    for start, end in itertools.pairwise(ordered):
        covering = timeline.shift_at(start)  # once per cut: it decides the roster date too
        roster_date = (
            covering.roster_date if covering is not None else start.astimezone(zone).date()
        )
        if roster_date != day:
            continue
        piece = Piece(
            start,
            end,
            timeline.status_at(start),
            covering.activity_at(start) if covering is not None else None,
            timeline.on_leave(start),
        )
        if result and _same_kind(result[-1], piece) and result[-1].end == start:
            piece = Piece(result[-1].start, end, piece.status, piece.activity, piece.on_leave)
            result[-1] = piece
        else:
            result.append(piece)
    return result


def day_span(inputs: AgentInputs, day: date) -> tuple[datetime, datetime]:
    """Where the roster date's time can lie, given its shifts: from the earlier of its local
    midnight and its first shift start to the later of the next midnight and its last shift
    end (within `window`). An instant before it is in another date's shift or on an earlier
    local date; after it, likewise later."""
    w_start, w_end = window(day, inputs.zone)
    starts = [local_midnight(day, inputs.zone)]
    ends = [local_midnight(day + timedelta(days=1), inputs.zone)]
    for shift in inputs.shifts:
        if shift.roster_date == day:
            starts.append(shift.start)
            ends.append(shift.end)
    return max(w_start, min(starts)), min(w_end, max(ends))


def _same_kind(a: Piece, b: Piece) -> bool:
    return (a.status, a.activity, a.on_leave) == (b.status, b.activity, b.on_leave)


def adheres(status: str, activity: Activity) -> bool:
    """Whether being in `status` is doing the scheduled `activity`."""
    return _adheres(status, activity.productive, activity.kind)


def _adheres(status: str, productive: bool, kind: str) -> bool:
    if productive:
        return status in PRODUCTIVE_STATUSES
    if kind in {"BREAK", "LUNCH", "MEETING", "TRAINING", OFFLINE}:
        return status == kind
    return status != OFFLINE and status not in PRODUCTIVE_STATUSES


# --- real-time adherence -----------------------------------------------------------------
IN_ADHERENCE = "IN_ADHERENCE"
OUT_OF_ADHERENCE = "OUT_OF_ADHERENCE"
NOT_SCHEDULED = "NOT_SCHEDULED"  # no shift now: nothing to adhere to
ON_LEAVE = "ON_LEAVE"


@dataclass(frozen=True)
class Scheduled:
    """The stretch of a shift the schedule says the agent is in now (work runs between the
    shift's other activities)."""

    kind: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class AdherenceNow:
    status: str
    status_since: datetime | None  # None: no status within STATUS_CARRY (offline)
    scheduled: Scheduled | None
    state: str  # IN_ADHERENCE, OUT_OF_ADHERENCE, NOT_SCHEDULED or ON_LEAVE
    state_since: datetime  # when the state began, the roster date's start at the earliest


def adherence_now(inputs: AgentInputs, now: datetime) -> AdherenceNow:
    """The agent's status now against the schedule now, as adherence counts it (`adheres`),
    and since when that state has held: the run of the roster date's pieces up to now with the
    same state."""
    timeline = _Timeline(inputs)
    day = roster_date_at(inputs.shifts, now, inputs.zone)
    first = min(day_span(inputs, day)[0], now)
    # Never empty: the cut from `first` to just past now always has a piece holding now, last.
    cut = pieces_between(inputs, day, first, now + _ONE_MS)
    upto = [piece for piece in cut if piece.start <= now]
    state = _state(upto[-1])
    since = upto[-1].start
    for piece in reversed(upto[:-1]):
        if _state(piece) != state or piece.end != since:
            break
        since = piece.start
    scheduled = _scheduled(timeline.shift_at(now), now)
    return AdherenceNow(upto[-1].status, _status_since(timeline, now), scheduled, state, since)


def _state(piece: Piece) -> str:
    if piece.on_leave:
        return ON_LEAVE
    if piece.activity is None:
        return NOT_SCHEDULED
    return IN_ADHERENCE if adheres(piece.status, piece.activity) else OUT_OF_ADHERENCE


def _status_since(timeline: _Timeline, now: datetime) -> datetime | None:
    index = bisect.bisect_right(timeline.times, now) - 1
    if index < 0 or now - timeline.changes[index].at >= STATUS_CARRY:
        return None
    return timeline.changes[index].at


def _scheduled(shift: Shift | None, now: datetime) -> Scheduled | None:
    activity = shift.activity_at(now) if shift is not None else None
    if shift is None or activity is None:
        return None
    if activity.kind != WORK:
        return Scheduled(activity.kind, activity.start, activity.end)
    # Work: from the end of the activity before now to the start of the next one.
    start = max([shift.start, *(a.end for a in shift.activities if a.end <= now)])
    end = min([shift.end, *(a.start for a in shift.activities if a.start > now)])
    return Scheduled(WORK, start, end)


# --- one roster date ---------------------------------------------------------------------
def day_sums(inputs: AgentInputs, day: date) -> Sums:
    """Every sum of one agent and roster date, from the inputs around it."""
    return combined_sums(time_sums(inputs, day), work_sums(inputs, day))


def time_sums(inputs: AgentInputs, day: date) -> Sums:
    """The sums of time (statuses against shifts and leave): read only changes, shifts, leave."""
    return time_part(inputs, day)[0]


def time_part(inputs: AgentInputs, day: date) -> tuple[Sums, Tail]:
    """`time_sums` and the day's tail: what of them lies after the last status change."""
    sums = empty_sums()
    day_pieces = pieces(inputs, day)
    _piece_sums(sums, day_pieces)
    no_show_ends = _punctuality(sums, inputs, day)
    return sums, day_tail(inputs, day_pieces, no_show_ends)


def work_sums(inputs: AgentInputs, day: date) -> Sums:
    """The sums of cases and training: read only cases, trainings and shifts (roster dates)."""
    sums = empty_sums()
    _training_sums(sums, inputs, day)
    _case_sums(sums, cases_of_day(inputs, day))
    return sums


def combined_sums(time_part: Sums, work_part: Sums) -> Sums:
    """A day's sums from its two parts (each only adds to its own fields, from zero)."""
    sums = {name: time_part[name] + work_part[name] for name in SUM_FIELDS}
    sums["active_days"] = int(bool(sums["scheduled_ms"] or sums["logged_in_ms"] or sums["cases"]))
    return sums


def piece_fields(piece: Piece) -> tuple[str, ...]:
    """The time sums a piece adds its length to (docs/metrics.md, one row per metric)."""
    activity = piece.activity
    return _fields_of(
        piece.status,
        piece.on_leave,
        None if activity is None else (activity.paid, activity.productive, activity.kind),
    )


@functools.lru_cache(maxsize=1024)
def _fields_of(
    status: str, on_leave: bool, activity: tuple[bool, bool, str] | None
) -> tuple[str, ...]:
    fields: list[str] = []
    if status != OFFLINE:
        fields.append("logged_in_ms")
        if status in PRODUCTIVE_STATUSES:
            fields.append("productive_ms")
        fields += {
            "AVAILABLE": ["available_ms"],
            "ON_CONTACT": ["on_contact_ms"],
            "AFTER_CONTACT_WORK": ["after_contact_ms"],
        }.get(status, [])
    if activity is not None:
        paid, productive, kind = activity
        if paid:
            fields.append("scheduled_ms")
        if not on_leave:  # approved leave replaces the schedule: neither absence nor adherence
            fields.append("adherence_base_ms")
            if _adheres(status, productive, kind):
                fields.append("adherent_ms")
            if productive:
                fields.append("scheduled_productive_ms")
                if status == OFFLINE:
                    fields.append("absence_ms")
    return tuple(fields)


def _piece_sums(sums: Sums, day_pieces: Iterable[Piece]) -> None:
    for piece in day_pieces:
        fields = piece_fields(piece)
        if fields:
            ms = piece.ms
            for name in fields:
                sums[name] += ms


def _punctuality(sums: Sums, inputs: AgentInputs, day: date) -> list[datetime]:
    """Counts late log-ins and no-shows; returns the ends of the no-show shifts."""
    timeline = _Timeline(inputs)
    no_show_ends = []
    for shift in inputs.shifts:
        if shift.roster_date != day or timeline.on_leave(shift.start):
            continue
        first_login = first_login_in(timeline, shift)
        if first_login is None:
            sums["no_shows"] += 1
            no_show_ends.append(shift.end)
        elif first_login > shift.start:
            sums["late_logins"] += 1
    return no_show_ends


def first_login_in(timeline: _Timeline, shift: Shift) -> datetime | None:
    """When the agent was first logged in during the shift (its start if already logged in)."""
    if timeline.status_at(shift.start) != OFFLINE:
        return shift.start
    for change in timeline.changes:
        # The status in effect from the change on: a log-in overridden at the same instant
        # (a later version) logged no minute, so it is no log-in.
        if shift.start < change.at < shift.end and timeline.status_at(change.at) != OFFLINE:
            return change.at
    return None


def training_roster_date(
    shifts: Iterable[Shift], training: TrainingCompletion, agent_zone: str
) -> date:
    """The roster date a completion counts on: its covering shift's, else its local date in
    the agent's zone now (not the zone it was recorded in: the day's cases, statuses and
    midnights are all on the agent's clock now); the date it was filed on, if stored without
    its instant."""
    if training.at is None:
        assert training.filed_on is not None  # one or the other (store._training)
        return training.filed_on
    return roster_date_at(shifts, training.at, agent_zone)


def trainings_of_day(inputs: AgentInputs, day: date) -> list[TrainingCompletion]:
    """Completions belong to the roster date of their session's start, as cases do to that of
    their resolve time (same shifts, same zone)."""
    return sorted(
        (t for t in inputs.trainings if training_roster_date(inputs.shifts, t, inputs.zone) == day),
        key=lambda t: t.completion_id,
    )


def _training_sums(sums: Sums, inputs: AgentInputs, day: date) -> None:
    for training in trainings_of_day(inputs, day):
        sums["training_minutes"] += training.minutes
        if training.technical:
            sums["technical_training_minutes"] += training.minutes
            sums["technical_trainings"] += 1


def cases_of_day(inputs: AgentInputs, day: date) -> list[CaseOutcome]:
    """Cases belong to the roster date of the instant they were resolved."""
    timeline = _Timeline(inputs)
    return sorted(
        (c for c in inputs.cases if timeline.roster_date(c.resolved) == day),
        key=lambda c: (c.resolved, c.case_id),
    )


def _case_sums(sums: Sums, cases: Iterable[CaseOutcome]) -> None:
    for case in cases:
        sums["cases"] += 1
        sums["handle_ms"] += case.handle_ms
        sums["resolution_ms"] += int((case.resolved - case.opened) / timedelta(milliseconds=1))
        sums["first_contact"] += int(case.first_contact)
        if case.has_sla:
            sums["sla_cases"] += 1
            sums["sla_met"] += int(case.sla_met)
        if case.csat is not None:
            sums["csat_sum"] += case.csat
            sums["csat_count"] += 1
        if case.pulse is not None:
            sums["pulse_sum"] += case.pulse
            sums["pulse_count"] += 1


# --- figures so far ------------------------------------------------------------------------
# A day's sums take an agent's last status as holding on (up to STATUS_CARRY): that is how the
# projector can file a day before it is over, and why they are exact once it is. Read while
# the day is still going, its time after now must not count: the day's tail is what of its
# sums lies after the last status change (the only time that assumption decides, and never
# before now), so a read takes back the tail's part after now (`so_far`). Instants here are
# epoch milliseconds: a team read adjusts a thousand agent-days at once.
_INDEX = {name: i for i, name in enumerate(SUM_FIELDS)}
_SCHEDULED, _NO_SHOWS, _ACTIVE = _INDEX["scheduled_ms"], _INDEX["no_shows"], _INDEX["active_days"]
_LOGGED_IN, _CASES = _INDEX["logged_in_ms"], _INDEX["cases"]


class TailPiece(NamedTuple):
    start_ms: int
    end_ms: int
    fields: tuple[int, ...]  # the sums its time went to (`piece_fields`), as SUM_FIELDS indices


@dataclass(frozen=True)
class Tail:
    pieces: tuple[TailPiece, ...] = ()
    no_show_ends_ms: tuple[int, ...] = ()  # the no-show shifts' ends: not one before then

    def __bool__(self) -> bool:
        return bool(self.pieces or self.no_show_ends_ms)

    @property
    def end_ms(self) -> int:
        """When nothing of the day is assumed any more (0 for an empty tail)."""
        return max([p.end_ms for p in self.pieces] + list(self.no_show_ends_ms), default=0)


def day_tail(
    inputs: AgentInputs, day_pieces: Iterable[Piece], no_show_ends: Iterable[datetime]
) -> Tail:
    """The part of a day's time sums after its agent's last known status change (the whole
    day when there is none), and its no-shows whose shift ends after that change."""
    last = max((change.at for change in inputs.changes), default=EPOCH)
    kept = tuple(
        TailPiece(
            epoch_ms(max(piece.start, last)),
            epoch_ms(piece.end),
            tuple(_INDEX[name] for name in fields),
        )
        for piece in day_pieces
        if piece.end > last and (fields := piece_fields(piece))
    )
    ends = tuple(epoch_ms(end) for end in no_show_ends if end > last)
    return Tail(kept, ends)


def so_far(row: list[int], tail: Tail, now_ms: int) -> list[int]:
    """One day's sums (in SUM_FIELDS order) as of `now_ms`: its tail's time after now taken
    back, but for scheduled hours (the plan counts whole); a no-show counted only once its
    shift is over; the day active only once something of it has happened."""
    result = list(row)
    scheduled_so_far = result[_SCHEDULED]
    for start_ms, end_ms, fields in tail.pieces:
        if end_ms <= now_ms:
            continue
        ms = end_ms - max(start_ms, now_ms)
        for index in fields:
            if index == _SCHEDULED:
                scheduled_so_far -= ms
            else:
                result[index] -= ms
    result[_NO_SHOWS] -= sum(1 for end_ms in tail.no_show_ends_ms if end_ms > now_ms)
    if result[_ACTIVE]:
        result[_ACTIVE] = int(bool(scheduled_so_far or result[_LOGGED_IN] or result[_CASES]))
    return result


def so_far_sums(sums: Mapping[str, int], tail: Tail, now: datetime) -> Sums:
    row = so_far([int(sums.get(name, 0)) for name in SUM_FIELDS], tail, epoch_ms(now))
    return dict(zip(SUM_FIELDS, row, strict=True))


def first_open_day(now: datetime) -> date:
    """The earliest roster date whose time may go on past `now`, in any zone: a date's time
    ends within `AFTER_MIDNIGHT` of its next local midnight, at latest 12 h after UTC's."""
    return (now - timedelta(days=1, hours=12) - AFTER_MIDNIGHT).date()


def trimmed(day_pieces: Iterable[Piece], now: datetime) -> list[Piece]:
    """The pieces of a day up to `now` (what `ExplainMetric` shows of a day still going)."""
    return [
        piece if piece.end <= now else piece._replace(end=now)
        for piece in day_pieces
        if piece.start < now
    ]


# --- figures -----------------------------------------------------------------------------
METRICS = (
    "scheduled_hours",
    "logged_in_hours",
    "absenteeism_percent",
    "late_logins",
    "no_shows",
    "adherence_percent",
    "conformance_percent",
    "occupancy_percent",
    "training_hours",
    "technical_training_hours",
    "technical_trainings_completed",
    "cases_resolved",
    "cases_resolved_per_day",
    "sla_compliance_percent",
    "average_handle_time_seconds",
    "first_contact_resolution_percent",
    "csat_average",
    "pulse_average",
    "average_time_to_resolution_seconds",
)
STATUS_METRICS = frozenset(
    {
        "scheduled_hours",
        "logged_in_hours",
        "absenteeism_percent",
        "late_logins",
        "no_shows",
        "adherence_percent",
        "conformance_percent",
        "occupancy_percent",
    }
)
TRAINING_METRICS = frozenset(
    {"training_hours", "technical_training_hours", "technical_trainings_completed"}
)
HOUR_MS = 3_600_000


def _ratio(numerator: int, denominator: int, scale: float = 1.0) -> float | None:
    return None if denominator <= 0 else round(numerator * scale / denominator, 4)


def derive(sums: Mapping[str, int]) -> dict[str, float | None]:
    """The figures of a period (or team) from its summed numerators and denominators."""
    s = {name: int(sums.get(name, 0)) for name in SUM_FIELDS}
    occupied = s["on_contact_ms"] + s["after_contact_ms"]
    return {
        "scheduled_hours": round(s["scheduled_ms"] / HOUR_MS, 6),
        "logged_in_hours": round(s["logged_in_ms"] / HOUR_MS, 6),
        "absenteeism_percent": _ratio(s["absence_ms"], s["scheduled_productive_ms"], 100),
        "late_logins": float(s["late_logins"]),
        "no_shows": float(s["no_shows"]),
        "adherence_percent": _ratio(s["adherent_ms"], s["adherence_base_ms"], 100),
        "conformance_percent": _ratio(s["productive_ms"], s["scheduled_productive_ms"], 100),
        "occupancy_percent": _ratio(occupied, s["available_ms"] + occupied, 100),
        "training_hours": round(s["training_minutes"] / 60, 4),
        "technical_training_hours": round(s["technical_training_minutes"] / 60, 4),
        "technical_trainings_completed": float(s["technical_trainings"]),
        "cases_resolved": float(s["cases"]),
        "cases_resolved_per_day": _ratio(s["cases"], s["active_days"]),
        "sla_compliance_percent": _ratio(s["sla_met"], s["sla_cases"], 100),
        "average_handle_time_seconds": _ratio(s["handle_ms"], s["cases"], 0.001),
        "first_contact_resolution_percent": _ratio(s["first_contact"], s["cases"], 100),
        "csat_average": _ratio(s["csat_sum"], s["csat_count"]),
        "pulse_average": _ratio(s["pulse_sum"], s["pulse_count"]),
        "average_time_to_resolution_seconds": _ratio(s["resolution_ms"], s["cases"], 0.001),
    }


def counted(metric: str, piece: Piece) -> bool:
    """Whether a piece counts in the metric's numerator (for ExplainMetric)."""
    activity = piece.activity
    if metric == "scheduled_hours":
        return activity is not None and activity.paid
    if metric == "logged_in_hours":
        return piece.status != OFFLINE
    if metric == "absenteeism_percent":
        return (
            activity is not None
            and activity.productive
            and not piece.on_leave
            and piece.status == OFFLINE
        )
    if metric == "adherence_percent":
        return activity is not None and not piece.on_leave and adheres(piece.status, activity)
    if metric == "conformance_percent":
        return piece.status in PRODUCTIVE_STATUSES
    if metric == "occupancy_percent":
        return piece.status in {"ON_CONTACT", "AFTER_CONTACT_WORK"}
    return False


def dates(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def roster_dates_between(inputs: AgentInputs, start: datetime, end: datetime) -> set[date]:
    """Every roster date that some instant of [start, end) belongs to ({start}'s if equal)."""
    timeline = _Timeline(inputs)
    zone = ZoneInfo(inputs.zone)
    cuts = {start}
    day = start.astimezone(zone).date()
    while (midnight := local_midnight(day, inputs.zone)) < end:
        if midnight > start:
            cuts.add(midnight)
        day += timedelta(days=1)
    for shift in inputs.shifts:
        cuts.update(c for c in (shift.start, shift.end) if start < c < end)
    return {timeline.roster_date(c) for c in cuts}


def status_reach(inputs: AgentInputs, change: StatusChange) -> tuple[datetime, datetime]:
    """The time a status change decides: from it to the next change (or the carry's end)."""
    later = [c.at for c in inputs.changes if c.at > change.at]
    end = change.at + STATUS_CARRY
    return change.at, min([*later, end])
