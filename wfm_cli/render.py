"""Human output: statuses in colour, local times with their zone, durations in words."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from rich.table import Table
from rich.text import Text
from wfm.availability.v1 import availability_service_pb2 as availability_pb
from wfm.type.v1 import localized_time_pb2

from wfm_sdk.names import status_words

STATUS_STYLES = {
    "available": "bold green",
    "on-contact": "green",
    "after-contact-work": "cyan",
    "break": "yellow",
    "lunch": "yellow",
    "meeting": "magenta",
    "training": "blue",
    "offline": "dim",
}


def status(number: int) -> Text:
    words = status_words(number)
    return Text(words, style=STATUS_STYLES.get(words, ""))


def local_time(value: localized_time_pb2.LocalizedTime, *, with_date: bool = False) -> str:
    """`02:23 IST` (or `2026-11-24 02:23 IST`) from a LocalizedTime; `-` when unset."""
    if not value.local_time:
        return "-"
    try:
        when = datetime.fromisoformat(value.local_time)
    except ValueError:
        return value.local_time
    shown = when.strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M")
    return f"{shown} {value.abbreviation}".strip()


def enum_words(enum: Any, number: int, prefix: str, joiner: str = "-") -> str:
    """An enum value as words: `SESSION_STATE_IN_PROGRESS` -> `in-progress` (the number when
    this client does not know it)."""
    try:
        return str(enum.Name(number)).removeprefix(prefix).lower().replace("_", joiner)
    except ValueError:
        return str(number)


def seconds(value: float) -> str:
    """`1h 05m`, `5m 12s`, `12s`, `0.4s`."""
    if 0 < value < 10:
        return f"{value:.1f}s"
    whole = max(0, int(value))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def duration(value: Duration) -> str:
    return seconds(value.seconds + value.nanos / 1e9)


def since(value: Timestamp, now: datetime | None = None) -> str:
    """How long ago `value` was: the time in the current status."""
    if not value.seconds and not value.nanos:
        return "-"
    start = value.ToDatetime(tzinfo=UTC)
    return seconds(((now or datetime.now(UTC)) - start).total_seconds())


def board_table(rows: list[availability_pb.Availability], title: str = "") -> Table:
    table = Table(title=title or None, title_justify="left")
    for column in ("agent", "team", "status", "reason", "since (agent)", "since (client)", "for"):
        table.add_column(column, no_wrap=True)
    now = datetime.now(UTC)
    for row in sorted(rows, key=lambda a: (a.team, a.agent_id)):
        table.add_row(
            row.agent_id,
            row.team.removeprefix("teams/"),
            status(row.status),
            row.reason_code,
            local_time(row.since_agent_local),
            local_time(row.since_client_local),
            since(row.since, now) if row.version else "-",
        )
    return table


def board_summary(rows: list[availability_pb.Availability]) -> str:
    """`12 agents: 5 available, 3 on-contact, ...; productive 8/12`."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[status_words(row.status)] = counts.get(status_words(row.status), 0) + 1
    productive = sum(1 for row in rows if row.productive)
    parts = ", ".join(f"{n} {words}" for words, n in sorted(counts.items(), key=lambda i: -i[1]))
    return f"{len(rows)} agents: {parts or 'none'}; productive now {productive}/{len(rows)}"


def history_table(result: availability_pb.GetStatusHistoryResponse, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("status", "reason", "start (agent)", "start (client)", "duration", ""):
        table.add_column(column, no_wrap=True)
    for segment in result.segments:
        table.add_row(
            status(segment.status),
            segment.reason_code,
            local_time(segment.start_agent_local, with_date=True),
            local_time(segment.start_client_local, with_date=True),
            duration(segment.duration),
            "ongoing" if segment.ongoing else "",
        )
    return table
