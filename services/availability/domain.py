"""Availability rules: pure functions on dataclasses, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum

from wfm_runtime.errors import Violations
from wfm_runtime.validation import REASON_CODE_PATTERN, check_idempotency_key

MAX_HISTORY_RANGE = timedelta(days=31)


class Status(Enum):
    AVAILABLE = "AVAILABLE"
    ON_CONTACT = "ON_CONTACT"
    AFTER_CONTACT_WORK = "AFTER_CONTACT_WORK"
    BREAK = "BREAK"
    LUNCH = "LUNCH"
    MEETING = "MEETING"
    TRAINING = "TRAINING"
    OFFLINE = "OFFLINE"

    @property
    def productive(self) -> bool:
        """Productive = ready for or handling contacts (counts towards occupancy)."""
        return self in PRODUCTIVE


PRODUCTIVE = frozenset({Status.AVAILABLE, Status.ON_CONTACT, Status.AFTER_CONTACT_WORK})


@dataclass(frozen=True)
class AgentAvailability:
    """An agent's current state; version 0 means no status was ever set (shown as offline)."""

    agent_id: str
    status: Status = Status.OFFLINE
    reason_code: str = ""
    since: datetime | None = None
    version: int = 0


@dataclass(frozen=True)
class StatusChanged:
    agent_id: str
    team: str
    status: Status
    reason_code: str
    since: datetime
    previous_status: Status
    previous_since: datetime | None
    previous_reason_code: str


@dataclass(frozen=True)
class SetStatus:
    agent_id: str
    status: Status
    reason_code: str


def validate_set_status(
    *,
    agent_id: str,
    status_name: str | None,
    reason_code: str,
    idempotency_key: str,
    expected_version: int | None,
    v: Violations,
) -> SetStatus | None:
    """Checks the request's fields; collects every violation in `v`."""
    status = Status.__members__.get(status_name) if status_name else None
    if status is None:
        v.add("status", f"must be one of {', '.join(s.value for s in Status)}")
    if reason_code:
        v.check(
            len(reason_code) <= 64 and bool(REASON_CODE_PATTERN.fullmatch(reason_code)),
            "reason_code",
            "must be at most 64 characters of A-Z, 0-9 and '_'",
        )
    check_idempotency_key(v, idempotency_key)
    if expected_version is not None:
        v.check(expected_version >= 0, "expected_version", "must not be negative")
    if v.items or status is None or not agent_id:
        return None
    return SetStatus(agent_id, status, reason_code)


def decide_set_status(
    current: AgentAvailability, command: SetStatus, team: str, now: datetime
) -> StatusChanged | None:
    """The change to record, or None when the agent is already in that status and reason."""
    if current.version and (current.status, current.reason_code) == (
        command.status,
        command.reason_code,
    ):
        return None
    since = now if current.since is None or now > current.since else current.since
    return StatusChanged(
        agent_id=command.agent_id,
        team=team,
        status=command.status,
        reason_code=command.reason_code,
        since=since,
        previous_status=current.status,
        previous_since=current.since,
        previous_reason_code=current.reason_code,
    )


def evolve(current: AgentAvailability, event: StatusChanged, version: int) -> AgentAvailability:
    return replace(
        current,
        status=event.status,
        reason_code=event.reason_code,
        since=event.since,
        version=version,
    )


# --- history -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Transition:
    """The agent entered `status` at `at` (one stored StatusChanged)."""

    version: int
    status: Status
    reason_code: str
    at: datetime


@dataclass(frozen=True)
class Segment:
    status: Status
    reason_code: str
    start: datetime
    end: datetime
    ongoing: bool

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True)
class History:
    segments: list[Segment]
    totals: dict[Status, timedelta]
    productive: timedelta
    covered: timedelta


def validate_range(start: datetime | None, end: datetime | None, v: Violations) -> None:
    if start is None:
        v.add("start_time", "is required")
    if end is None:
        v.add("end_time", "is required")
    if start is None or end is None:
        return
    if end <= start:
        v.add("end_time", "must be after start_time")
    elif end - start > MAX_HISTORY_RANGE:
        v.add("end_time", f"must be at most {MAX_HISTORY_RANGE.days} days after start_time")


def build_history(
    transitions: list[Transition], start: datetime, end: datetime, now: datetime
) -> History:
    """Contiguous segments clipped to [start, end); the last one runs until now if ongoing.

    A status that lasted no time (a change overtaken in the same millisecond) is not shown, and
    the same status with the same reason twice in a row (on both sides of such a change, or set
    again) is one segment: the agent never left it. A new reason in the same status is a
    segment of its own, because a team leader reads it.
    """
    ordered = sorted(transitions, key=lambda t: t.version)
    segments: list[Segment] = []
    for index, transition in enumerate(ordered):
        is_last = index == len(ordered) - 1
        seg_end = min(end, now) if is_last else min(end, now, ordered[index + 1].at)
        seg_start = max(transition.at, start)
        if seg_end <= seg_start:
            continue
        segment = Segment(
            transition.status,
            transition.reason_code,
            seg_start,
            seg_end,
            ongoing=is_last and now < end,
        )
        if segments and _continues(segments[-1], segment):
            segment = replace(segment, start=segments.pop().start)
        segments.append(segment)
    totals: dict[Status, timedelta] = {}
    for segment in segments:
        totals[segment.status] = totals.get(segment.status, timedelta()) + segment.duration
    productive = sum((d for s, d in totals.items() if s.productive), timedelta())
    covered = sum(totals.values(), timedelta())
    return History(segments, totals, productive, covered)


def _continues(before: Segment, after: Segment) -> bool:
    return (before.status, before.reason_code, before.end) == (
        after.status,
        after.reason_code,
        after.start,
    )
