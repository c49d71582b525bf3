"""Productive staffing on a fixed UTC grid (pure): what the `coverage` view stores.

Staffing is kept per team, UTC date and 15-minute UTC bucket as productive agent-seconds, one
entry per agent. A client-local interval of 15 or 30 minutes starts at local midnight plus a
multiple of its length; every offset in use today is a multiple of 15 minutes, so those
intervals are unions of whole buckets and their staffing is an exact sum. The grid does not
depend on the team's zone or on the requirement, so the view never needs either.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta

from services.scheduling.roster import Interval, Schedule, productive_spans
from services.scheduling.rostertime import minutes

BUCKET_SECONDS = 15 * 60
BUCKETS_PER_DAY = 24 * 3600 // BUCKET_SECONDS

# (team id, UTC date) -> {bucket index within the UTC day: productive seconds}
AgentBuckets = dict[tuple[str, date], dict[int, int]]


def agent_buckets(schedule: Schedule) -> AgentBuckets:
    """One agent's productive seconds per team, UTC date and bucket (cancelled shifts,
    activities and approved leave excluded, as `GetCoverage` counts them)."""
    found: AgentBuckets = {}
    for shift in schedule.shifts:
        if not shift.active:
            continue
        for start, end in productive_spans(shift, schedule.leave):
            _add_span(found, shift.team_id, int(start.timestamp()), int(end.timestamp()))
    return found


def _add_span(found: AgentBuckets, team_id: str, start: int, end: int) -> None:
    cursor = start
    while cursor < end:
        bucket_start = cursor - cursor % BUCKET_SECONDS
        upto = min(end, bucket_start + BUCKET_SECONDS)
        day = datetime.fromtimestamp(bucket_start, UTC).date()
        index = (bucket_start % 86_400) // BUCKET_SECONDS
        cell = found.setdefault((team_id, day), {})
        cell[index] = cell.get(index, 0) + upto - cursor
        cursor = upto


def pack(cells: Mapping[int, int]) -> bytes:
    """A compact stored form: 3 bytes per staffed bucket (index, seconds up to 900)."""
    return b"".join(struct.pack(">BH", i, cells[i]) for i in sorted(cells))


def unpack(data: bytes) -> dict[int, int]:
    return dict(struct.iter_unpack(">BH", data))


def aligned(slots: Iterable[tuple[datetime, datetime, int]]) -> bool:
    """Whether every slot starts and ends on the grid (not so for old local-mean-time offsets)."""
    return all(
        int(s.timestamp()) % BUCKET_SECONDS == 0 == int(e.timestamp()) % BUCKET_SECONDS
        and s.microsecond == 0 == e.microsecond
        for s, e, _ in slots
    )


def utc_dates(slots: list[tuple[datetime, datetime, int]]) -> list[date]:
    if not slots:
        return []
    first = slots[0][0].astimezone(UTC).date()
    last = (slots[-1][1] - timedelta(seconds=1)).astimezone(UTC).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def totals(per_agent: Iterable[Mapping[int, int]]) -> list[int]:
    """A UTC day's productive seconds per bucket over all agents."""
    summed = [0] * BUCKETS_PER_DAY
    for cells in per_agent:
        for index, seconds in cells.items():
            summed[index] += seconds
    return summed


def intervals(
    slots: list[tuple[datetime, datetime, int]],
    needs: list[int],
    day_totals: Mapping[date, list[int]],
) -> list[Interval]:
    """Per (grid-aligned) slot: requirement and staffed agents (productive minutes / length)."""
    out = []
    for (start, end, _), need in zip(slots, needs, strict=True):
        seconds = 0
        cursor = int(start.timestamp())
        while cursor < int(end.timestamp()):
            day = datetime.fromtimestamp(cursor, UTC).date()
            row = day_totals.get(day)
            if row is not None:
                seconds += row[(cursor % 86_400) // BUCKET_SECONDS]
            cursor += BUCKET_SECONDS
        staffed = seconds / 60
        out.append(Interval(start, end, need, round(staffed / (minutes(start, end) or 1), 2)))
    return out
