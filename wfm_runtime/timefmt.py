"""Instants are stored in UTC; people see them on their own wall clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from google.protobuf.timestamp_pb2 import Timestamp
from wfm.type.v1 import localized_time_pb2


def utc_now() -> datetime:
    """Now in UTC, at the millisecond precision both MongoDB and FerretDB store."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def as_utc(value: datetime) -> datetime:
    """Drivers return naive UTC datetimes unless tz_aware; normalise either way."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)


def epoch_ms(instant: datetime) -> int:
    """Whole milliseconds since the Unix epoch (how packed view documents keep instants)."""
    return (as_utc(instant) - EPOCH) // MILLISECOND


def from_epoch_ms(ms: int) -> datetime:
    return EPOCH + int(ms) * MILLISECOND


# By arithmetic on timedelta rather than protobuf's FromDatetime/ToDatetime (calendar
# conversions in pure Python, three times slower): every event encodes and decodes several.
def to_timestamp(value: datetime) -> Timestamp:
    since_epoch = as_utc(value) - EPOCH
    return Timestamp(
        seconds=since_epoch.days * 86_400 + since_epoch.seconds,
        nanos=since_epoch.microseconds * 1000,
    )


def from_timestamp(ts: Timestamp) -> datetime:
    """The instant; ValueError or OverflowError when `ts` is not a valid Timestamp."""
    if not 0 <= ts.nanos < 1_000_000_000:
        raise ValueError(f"Timestamp nanos out of range: {ts.nanos}")
    return EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)


def localized(value: datetime, zone: str) -> localized_time_pb2.LocalizedTime:
    if not zone:
        return localized_time_pb2.LocalizedTime()
    local = as_utc(value).astimezone(ZoneInfo(zone))
    return localized_time_pb2.LocalizedTime(
        time_zone=zone,
        local_time=local.isoformat(timespec="seconds"),
        abbreviation=local.tzname() or "",
    )


def checked_timestamp(ts: Timestamp) -> datetime | None:
    """The instant, or None when the Timestamp is outside what a datetime can hold."""
    try:
        return from_timestamp(ts)
    except (ValueError, OverflowError, OSError):
        return None
