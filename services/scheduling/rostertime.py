"""Wall-clock arithmetic for rosters: local times in a zone <-> UTC instants. Pure, no I/O.

Rules (docs/scheduling.md):
- A shift is planned as a local start time and a wall-clock length in its anchoring zone on its
  roster date; start and end are resolved to UTC separately, so a fall-back night is one hour
  longer in elapsed (and paid) time and a spring-forward night one hour shorter.
- A local start or end time that does not exist (inside a spring-forward gap) is refused.
- An ambiguous local time (inside a fall-back overlap) resolves to its first occurrence for a
  start and its second for an end: the shift covers the whole repeated hour.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MINUTES_PER_DAY = 24 * 60


class NonexistentLocalTime(ValueError):
    """A wall-clock time skipped by a daylight-saving change."""

    def __init__(self, local: datetime, zone: str) -> None:
        self.local = local
        self.zone = zone
        super().__init__(
            f"{local:%Y-%m-%d %H:%M} does not exist in {zone} (clocks go forward then): "
            "choose a time outside the gap"
        )


def exists(local: datetime, zone: ZoneInfo) -> bool:
    """True unless the naive wall time falls in a spring-forward gap of `zone`."""
    aware = local.replace(tzinfo=zone)
    back = aware.astimezone(UTC).astimezone(zone)
    return back.replace(tzinfo=None) == local


def to_utc(local: datetime, zone_name: str, *, later: bool = False) -> datetime:
    """UTC instant of a naive wall time (`later`: the second of two in a fall-back overlap)."""
    zone = ZoneInfo(zone_name)
    if not exists(local, zone):
        raise NonexistentLocalTime(local, zone_name)
    return local.replace(tzinfo=zone, fold=1 if later else 0).astimezone(UTC)


def local_interval(
    day: date, start: time, length_minutes: int, zone_name: str
) -> tuple[datetime, datetime]:
    """UTC [start, end) of a wall-clock interval starting at `start` on `day` in the zone."""
    local_start = datetime.combine(day, start)
    local_end = local_start + timedelta(minutes=length_minutes)
    return to_utc(local_start, zone_name), to_utc(local_end, zone_name, later=True)


def opening_interval(
    day: date, opens: time, length_minutes: int, zone_name: str
) -> tuple[datetime, datetime]:
    """UTC [open, close) of opening hours on `day`. Unlike a shift, hours are never refused: a
    bound skipped by a spring-forward gap is reached when the clocks jump past it."""
    local_open = datetime.combine(day, opens)
    local_close = local_open + timedelta(minutes=length_minutes)
    return _at_or_after(local_open, zone_name), _at_or_after(local_close, zone_name, later=True)


def _at_or_after(local: datetime, zone_name: str, *, later: bool = False) -> datetime:
    # 02:30 in a 02:00->03:00 gap has passed once the clock shows 03:00: the jump's instant.
    zone = ZoneInfo(zone_name)
    while not exists(local, zone):
        local += timedelta(minutes=1)
    return to_utc(local, zone_name, later=later)


def day_bounds(day: date, zone_name: str) -> tuple[datetime, datetime]:
    """UTC [start, end) of a calendar day in a zone (23, 24 or 25 hours long)."""
    return _first_valid(day, zone_name), _first_valid(day + timedelta(days=1), zone_name)


def _first_valid(day: date, zone_name: str) -> datetime:
    # Midnight itself can be skipped (e.g. America/Santiago); take the first minute that exists.
    local = datetime.combine(day, time())
    zone = ZoneInfo(zone_name)
    while not exists(local, zone):
        local += timedelta(minutes=15)
    return local.replace(tzinfo=zone).astimezone(UTC)


def local_date(instant: datetime, zone_name: str) -> date:
    return instant.astimezone(ZoneInfo(zone_name)).date()


def week_start(day: date) -> date:
    """Monday of the ISO week of `day`: weekly hours are counted Monday to Sunday."""
    return day - timedelta(days=day.weekday())


def minutes(start: datetime, end: datetime) -> int:
    return int((end - start).total_seconds() // 60)


def overlap_minutes(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> float:
    start, end = max(a[0], b[0]), min(a[1], b[1])
    return max(0.0, (end - start).total_seconds() / 60)


def parse_hhmm(text: str) -> time | None:
    """'HH:MM' (00:00-23:59) or None."""
    if len(text) != 5 or text[2] != ":" or not (text[:2] + text[3:]).isdigit():
        return None
    hours, mins = int(text[:2]), int(text[3:])
    if hours > 23 or mins > 59:
        return None
    return time(hours, mins)


def parse_date(text: str) -> date | None:
    """'YYYY-MM-DD' (years 1900-2199, enough for rosters, far from datetime's edges) or None."""
    try:
        parsed = date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None
    return parsed if parsed is not None and 1900 <= parsed.year <= 2199 else None


def local_clock_minutes(instant: datetime, zone_name: str) -> int:
    """Minutes since local midnight on the wall clock of `zone_name`."""
    local = instant.astimezone(ZoneInfo(zone_name))
    return local.hour * 60 + local.minute
