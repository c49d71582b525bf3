"""Request validation for RosterService: proto fields -> domain values, every violation at once."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, time, timedelta

from wfm.scheduling.v1 import roster_service_pb2 as pb

from services.scheduling import erlang, roster, roster_store
from services.scheduling import rostertime as rt
from services.scheduling.roster import Activity, Anchor, Pattern, ShiftPlan
from wfm_runtime.errors import Violations
from wfm_runtime.validation import ID_PATTERN, check_id, optional_instant, parse_name

MAX_ACTIVITIES = 20
MAX_ROSTER_DAYS = 62
MAX_COVERAGE_DAYS = 14
MAX_BULK_AGENTS = 1000


def parse_child(v: Violations, name: str, field_path: str, child: str) -> tuple[str, str]:
    """`agents/{agent}/{child}/{id}` -> (agent id, id); ('', '') on a violation."""
    parts = name.split("/")
    ok = (
        len(parts) == 4
        and parts[0] == "agents"
        and parts[2] == child
        and all(ID_PATTERN.fullmatch(p) for p in (parts[1], parts[3]))
    )
    if not ok:
        v.add(field_path, f"must be in the form agents/{{agent}}/{child}/{{id}}, got {name[:80]!r}")
        return "", ""
    return parts[1], parts[3]


def check_date(v: Violations, text: str, field_path: str) -> date | None:
    parsed = rt.parse_date(text)
    if parsed is None:
        v.add(field_path, "must be a date YYYY-MM-DD (years 1900-2199)")
    return parsed


def check_range(
    v: Violations, first: str, last: str, field_path: str, max_days: int
) -> tuple[date, date] | None:
    start = check_date(v, first, f"{field_path}start_date")
    end = check_date(v, last, f"{field_path}end_date")
    if start is None or end is None:
        return None
    if not v.check(
        start <= end and (end - start).days < max_days,
        f"{field_path}end_date",
        f"must be on or after start_date, at most {max_days} days in all",
    ):
        return None
    return start, end


def check_monday(v: Violations, text: str, field_path: str) -> date | None:
    day = check_date(v, text, field_path)
    if day is not None and not v.check(day.weekday() == 0, field_path, "must be a Monday"):
        return None
    return day


def check_overrides(v: Violations, values: list[str], field_path: str) -> frozenset[str]:
    for value in values:
        v.check(
            value in roster.OVERRIDABLE,
            field_path,
            f"{value[:40]!r} cannot be overridden; allowed: "
            + ", ".join(sorted(roster.OVERRIDABLE)),
        )
    return frozenset(values) & roster.OVERRIDABLE


def check_activities(
    v: Violations, items: list[pb.Activity], field_path: str
) -> tuple[Activity, ...]:
    if not v.check(len(items) <= MAX_ACTIVITIES, field_path, f"at most {MAX_ACTIVITIES}"):
        return ()
    out = []
    for n, item in enumerate(items):
        where = f"{field_path}[{n}]"
        kind = roster_store.activity_kind(item.kind)
        v.check(kind is not None, f"{where}.kind", "must be a known ACTIVITY_KIND_*")
        v.check(
            0 <= item.offset_minutes <= roster.MAX_SHIFT_MINUTES
            and 0 < item.length_minutes <= roster.MAX_SHIFT_MINUTES,
            where,
            "offset 0-960 and length 1-960 minutes",
        )
        if kind is not None:
            out.append(Activity(kind, item.offset_minutes, item.length_minutes, item.paid))
    _check_apart(v, items, field_path)
    return tuple(out)


def _check_apart(v: Violations, items: list[pb.Activity], field_path: str) -> None:
    """No two activities at once: a lunch inside a break would take its minutes off twice."""
    order = sorted(range(len(items)), key=lambda n: items[n].offset_minutes)
    for before, after in itertools.pairwise(order):
        end = items[before].offset_minutes + items[before].length_minutes
        v.check(
            items[after].offset_minutes >= end,
            f"{field_path}[{after}]",
            f"overlaps {field_path}[{before}] (which runs to minute {end} of the shift)",
        )


@dataclass(frozen=True)
class SpecFields:
    """A ShiftSpec's own values, validated; the pattern (if named) fills what is missing."""

    roster_date: date | None
    pattern_id: str
    start_local: time | None
    length_minutes: int
    anchor: Anchor | None
    activities: tuple[Activity, ...] | None
    overrides: frozenset[str]


def check_spec(v: Violations, spec: pb.ShiftSpec, field_path: str) -> SpecFields:
    roster_date = check_date(v, spec.roster_date, f"{field_path}.roster_date")
    pattern_id = ""
    if spec.shift_pattern:
        pattern_id = parse_name(
            v, spec.shift_pattern, f"{field_path}.shift_pattern", "shiftPatterns"
        )
    start = None
    if spec.start_local_time:
        start = rt.parse_hhmm(spec.start_local_time)
        v.check(start is not None, f"{field_path}.start_local_time", "must be HH:MM")
    anchor = roster_store.anchor(spec.anchor)
    v.check(
        spec.anchor == 0 or anchor is not None,
        f"{field_path}.anchor",
        "must be ANCHOR_AGENT or ANCHOR_CLIENT",
    )
    v.check(
        spec.length_minutes == 0 or 15 <= spec.length_minutes <= roster.MAX_SHIFT_MINUTES,
        f"{field_path}.length_minutes",
        "must be 15 to 960 minutes",
    )
    if not spec.shift_pattern:
        if not spec.start_local_time:
            v.add(f"{field_path}.start_local_time", "is required without a shift_pattern")
        if not spec.length_minutes:
            v.add(f"{field_path}.length_minutes", "is required without a shift_pattern")
        if not spec.anchor:
            v.add(f"{field_path}.anchor", "is required without a shift_pattern")
    activities = check_activities(v, list(spec.activities), f"{field_path}.activities")
    return SpecFields(
        roster_date,
        pattern_id,
        start,
        spec.length_minutes,
        anchor,
        activities if spec.activities else None,
        check_overrides(v, list(spec.overrides), f"{field_path}.overrides"),
    )


def plan_of(fields: SpecFields, pattern: Pattern | None, field_path: str) -> ShiftPlan:
    """The plan from the spec's values, the pattern's where the spec has none."""
    v = Violations()
    start = fields.start_local or (pattern.start_local if pattern else None)
    length = fields.length_minutes or (pattern.length_minutes if pattern else 0)
    activities = fields.activities
    if activities is None:
        activities = pattern.activities if pattern else ()
    for n, a in enumerate(activities):
        v.check(
            a.offset_minutes + a.length_minutes <= length,
            f"{field_path}.activities[{n}]",
            "must end inside the shift",
        )
    v.raise_if_any()
    assert fields.roster_date is not None and start is not None
    return ShiftPlan(
        fields.roster_date,
        start,
        length,
        fields.anchor or (pattern.anchor if pattern else Anchor.AGENT),
        activities,
        fields.pattern_id,
        fields.overrides,
    )


def check_pattern(v: Violations, m: pb.ShiftPattern, pattern_id: str) -> Pattern:
    check_id(v, pattern_id, "shift_pattern_id", "shift pattern id")
    v.check(0 < len(m.display_name) <= 200, "shift_pattern.display_name", "1-200 characters")
    start = rt.parse_hhmm(m.start_local_time)
    v.check(start is not None, "shift_pattern.start_local_time", "must be HH:MM")
    v.check(
        15 <= m.length_minutes <= roster.MAX_SHIFT_MINUTES,
        "shift_pattern.length_minutes",
        "must be 15 to 960 minutes",
    )
    anchor = roster_store.anchor(m.anchor)
    v.check(anchor is not None, "shift_pattern.anchor", "must be ANCHOR_AGENT or ANCHOR_CLIENT")
    days = list(m.iso_weekdays)
    v.check(
        0 < len(days) == len(set(days)) and all(1 <= d <= 7 for d in days),
        "shift_pattern.iso_weekdays",
        "one or more distinct ISO weekdays 1 (Monday) to 7 (Sunday)",
    )
    activities = check_activities(v, list(m.activities), "shift_pattern.activities")
    for n, a in enumerate(activities):
        v.check(
            a.offset_minutes + a.length_minutes <= m.length_minutes,
            f"shift_pattern.activities[{n}]",
            "must end inside the shift",
        )
    return Pattern(
        pattern_id,
        m.display_name,
        start or time(),
        m.length_minutes,
        anchor or Anchor.AGENT,
        activities,
        frozenset(days),
    )


def check_leave(v: Violations, m: pb.LeaveRequest, leave_id: str, zone: str) -> roster.Leave | None:
    """Whole days (dates, same year) or hours (two instants, at most 24 h apart)."""
    check_id(v, leave_id, "leave_request_id", "leave request id")
    kind = roster_store.leave_kind(m.kind)
    v.check(kind is not None, "leave_request.kind", "must be a known LEAVE_KIND_*")
    v.check(len(m.note) <= 500, "leave_request.note", "at most 500 characters")
    by_days = bool(m.start_date or m.end_date)
    by_hours = m.HasField("start_time") or m.HasField("end_time")
    if by_days == by_hours:
        v.add("leave_request", "give either start_date and end_date, or start_time and end_time")
        return None
    if by_days:
        first = check_date(v, m.start_date, "leave_request.start_date")
        last = check_date(v, m.end_date, "leave_request.end_date")
        if first is None or last is None or kind is None:
            return None
        if not v.check(
            first <= last and first.year == last.year,
            "leave_request.end_date",
            "must be on or after start_date, in the same year",
        ):
            return None
        start, _ = rt.day_bounds(first, zone)
        _, end = rt.day_bounds(last, zone)
        return roster.Leave(leave_id, kind, start, end, first, last, True, note=m.note)
    start_at = optional_instant(v, m, "start_time")
    end_at = optional_instant(v, m, "end_time")
    if start_at is None or end_at is None or kind is None:
        v.check(start_at is not None and end_at is not None, "leave_request", "set both times")
        return None
    if not v.check(
        start_at < end_at <= start_at + timedelta(hours=24) and 1900 <= start_at.year <= 2199,
        "leave_request.end_time",
        "must be after start_time, at most 24 hours later",
    ):
        return None
    day = rt.local_date(start_at, zone)
    return roster.Leave(leave_id, kind, start_at, end_at, day, day, False, note=m.note)


def check_requirement(
    v: Violations, m: pb.SetCoverageRequirementRequest
) -> tuple[str, int, tuple[int, ...]]:
    key = ""
    if bool(m.date) == bool(m.weekday):
        v.add("date", "give exactly one of date or weekday")
    elif m.date:
        day = check_date(v, m.date, "date")
        key = day.isoformat() if day else ""
    else:
        v.check(m.weekday in roster.WEEKDAYS, "weekday", "must be one of mon tue wed ... sun")
        key = m.weekday if m.weekday in roster.WEEKDAYS else ""
    step = m.interval_minutes
    if not v.check(step in (15, 30), "interval_minutes", "must be 15 or 30"):
        return key, step, ()
    needed = rt.MINUTES_PER_DAY // step
    if m.HasField("forecast"):
        v.check(not m.required, "required", "leave empty when a forecast is given")
        return key, step, _from_forecast(v, m.forecast, needed, step)
    v.check(
        len(m.required) == needed,
        "required",
        f"must have {needed} entries (one per {step}-minute interval from 00:00)",
    )
    v.check(all(0 <= r <= 100_000 for r in m.required), "required", "each 0 to 100000")
    return key, step, tuple(m.required)


def _from_forecast(v: Violations, f: pb.Forecast, needed: int, step: int) -> tuple[int, ...]:
    """Erlang C agents per interval; () after reporting what is wrong with the forecast."""
    ok = v.check(
        len(f.contacts) == needed and all(0 <= c <= 10_000 for c in f.contacts),
        "forecast.contacts",
        f"must have {needed} entries, each 0 to 10000",
    )
    ok &= v.check(
        1 <= f.average_handle_seconds <= 3600,
        "forecast.average_handle_seconds",
        "must be 1 to 3600",
    )
    ok &= v.check(
        0.01 <= f.service_level <= 0.999, "forecast.service_level", "must be 0.01 to 0.999"
    )
    ok &= v.check(
        1 <= f.target_answer_seconds <= 3600, "forecast.target_answer_seconds", "must be 1 to 3600"
    )
    if not ok:
        return ()
    return tuple(
        erlang.agents_needed(
            c, step * 60, f.average_handle_seconds, f.service_level, f.target_answer_seconds
        )
        for c in f.contacts
    )
