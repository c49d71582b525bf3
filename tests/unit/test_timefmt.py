"""Instants in UTC, shown on wall clocks (wfm_runtime/timefmt.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from wfm_runtime.timefmt import (
    as_utc,
    epoch_ms,
    from_epoch_ms,
    from_timestamp,
    localized,
    to_timestamp,
    utc_now,
)

ZONES = ["Asia/Kolkata", "America/New_York", "Europe/London", "UTC", "Australia/Sydney"]
IST = ZoneInfo("Asia/Kolkata")
NEW_YORK = ZoneInfo("America/New_York")

instants = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)
whole_seconds = instants.map(lambda d: d.replace(microsecond=0))


@settings(max_examples=300, deadline=None)
@given(whole_seconds, st.sampled_from(ZONES), st.sampled_from(ZONES))
def test_local_time_parses_back_to_the_same_instant(
    instant: datetime, zone: str, other: str
) -> None:
    here, there = localized(instant, zone), localized(instant, other)
    assert here.time_zone == zone
    parsed = datetime.fromisoformat(here.local_time)
    assert parsed == instant
    assert parsed.utcoffset() == instant.astimezone(ZoneInfo(zone)).utcoffset()
    # Two zones show the same instant, whatever their wall clocks say.
    assert datetime.fromisoformat(there.local_time) == parsed
    assert here.abbreviation == instant.astimezone(ZoneInfo(zone)).tzname()
    assert here.abbreviation


@settings(max_examples=100, deadline=None)
@given(instants, st.sampled_from(ZONES))
def test_local_time_is_shown_to_the_second(instant: datetime, zone: str) -> None:
    parsed = datetime.fromisoformat(localized(instant, zone).local_time)
    assert parsed == instant.replace(microsecond=0)
    assert timedelta() <= instant - parsed < timedelta(seconds=1)


@given(whole_seconds, st.sampled_from(ZONES))
def test_naive_values_are_utc(instant: datetime, zone: str) -> None:
    assert localized(instant.replace(tzinfo=None), zone) == localized(instant, zone)


@given(whole_seconds, st.sampled_from(ZONES))
def test_aware_values_in_any_zone_are_the_same_instant(instant: datetime, zone: str) -> None:
    shifted = instant.astimezone(ZoneInfo(zone))
    assert localized(shifted, "Asia/Kolkata") == localized(instant, "Asia/Kolkata")
    assert as_utc(shifted) == instant
    assert as_utc(shifted).tzinfo is UTC


def test_empty_zone_gives_an_empty_message() -> None:
    shown = localized(datetime(2026, 3, 8, tzinfo=UTC), "")
    assert (shown.time_zone, shown.local_time, shown.abbreviation) == ("", "", "")


def test_india_standard_time() -> None:
    shown = localized(datetime(2026, 3, 8, 13, 0, tzinfo=UTC), "Asia/Kolkata")
    assert shown.local_time == "2026-03-08T18:30:00+05:30"
    assert shown.abbreviation == "IST"


@pytest.mark.parametrize(
    ("instant", "zone", "local", "abbreviation"),
    [
        (datetime(2026, 3, 8, 6, 59, 59, tzinfo=UTC), "America/New_York",
         "2026-03-08T01:59:59-05:00", "EST"),
        (datetime(2026, 3, 8, 7, 0, 0, tzinfo=UTC), "America/New_York",
         "2026-03-08T03:00:00-04:00", "EDT"),
        (datetime(2026, 11, 1, 5, 30, tzinfo=UTC), "America/New_York",
         "2026-11-01T01:30:00-04:00", "EDT"),
        (datetime(2026, 11, 1, 6, 30, tzinfo=UTC), "America/New_York",
         "2026-11-01T01:30:00-05:00", "EST"),
        (datetime(2026, 7, 1, 12, 0, tzinfo=UTC), "Europe/London",
         "2026-07-01T13:00:00+01:00", "BST"),
        (datetime(2026, 1, 1, 12, 0, tzinfo=UTC), "Europe/London",
         "2026-01-01T12:00:00+00:00", "GMT"),
        (datetime(2026, 1, 1, 12, 0, tzinfo=UTC), "Australia/Sydney",
         "2026-01-01T23:00:00+11:00", "AEDT"),
        (datetime(2026, 7, 1, 12, 0, tzinfo=UTC), "Australia/Sydney",
         "2026-07-01T22:00:00+10:00", "AEST"),
        (datetime(2026, 7, 1, 12, 0, tzinfo=UTC), "UTC", "2026-07-01T12:00:00+00:00", "UTC"),
    ],
)  # fmt: skip
def test_known_wall_clocks(instant: datetime, zone: str, local: str, abbreviation: str) -> None:
    shown = localized(instant, zone)
    assert (shown.local_time, shown.abbreviation) == (local, abbreviation)


def test_repeated_hour_is_told_apart_by_its_offset() -> None:
    first = localized(datetime(2026, 11, 1, 5, 30, tzinfo=UTC), "America/New_York")
    second = localized(datetime(2026, 11, 1, 6, 30, tzinfo=UTC), "America/New_York")
    assert first.local_time[:19] == second.local_time[:19]
    assert datetime.fromisoformat(second.local_time) - datetime.fromisoformat(
        first.local_time
    ) == timedelta(hours=1)


@pytest.mark.parametrize(
    ("day", "ny_start", "ny_abbreviation"),
    [
        ((2026, 3, 6), "2026-03-06T08:00:00-05:00", "EST"),  # before US DST
        ((2026, 3, 8), "2026-03-08T09:00:00-04:00", "EDT"),  # US DST began 02:00 that day
        ((2026, 11, 1), "2026-11-01T08:00:00-05:00", "EST"),  # US DST ended 02:00 that day
    ],
)
def test_us_night_shift_from_india_crosses_midnight(
    day: tuple[int, int, int], ny_start: str, ny_abbreviation: str
) -> None:
    # 18:30 to 03:30 IST: one working day in New York, two calendar days in Pune.
    start = datetime(*day, 18, 30, tzinfo=IST)
    end = start + timedelta(hours=9)
    start_ist, end_ist = localized(start, "Asia/Kolkata"), localized(end, "Asia/Kolkata")
    assert start_ist.local_time == f"{start.date().isoformat()}T18:30:00+05:30"
    assert end_ist.local_time == f"{(start.date() + timedelta(days=1)).isoformat()}T03:30:00+05:30"
    assert start_ist.abbreviation == end_ist.abbreviation == "IST"

    start_ny, end_ny = localized(start, "America/New_York"), localized(end, "America/New_York")
    assert start_ny.local_time == ny_start
    assert start_ny.abbreviation == ny_abbreviation
    assert end_ny.local_time[:10] == start_ny.local_time[:10] == start.date().isoformat()
    parsed_start = datetime.fromisoformat(start_ny.local_time)
    assert datetime.fromisoformat(end_ny.local_time) - parsed_start == timedelta(hours=9)
    assert parsed_start == start


@given(instants)
def test_timestamp_round_trip(instant: datetime) -> None:
    assert from_timestamp(to_timestamp(instant)) == instant
    assert from_timestamp(to_timestamp(instant.replace(tzinfo=None))) == instant


def test_as_utc_of_other_offsets() -> None:
    value = datetime(2026, 3, 8, 18, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert as_utc(value) == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)
    assert as_utc(value).utcoffset() == timedelta()


def test_utc_now_is_aware_and_millisecond_precise() -> None:
    before = datetime.now(UTC)
    now = utc_now()
    assert now.tzinfo is UTC
    assert now.microsecond % 1000 == 0
    assert before - timedelta(milliseconds=1) <= now <= datetime.now(UTC)


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999)),
    st.sampled_from([UTC, IST, NEW_YORK, None]),
)
def test_timestamps_match_protobufs_own_conversion_both_ways(
    wall: datetime, zone: ZoneInfo | None
) -> None:
    """Our arithmetic conversion is protobuf's FromDatetime/ToDatetime, before 1970 too."""
    value = wall.replace(tzinfo=zone) if zone is not None else wall  # naive means UTC
    try:
        reference = Timestamp()
        reference.FromDatetime(as_utc(value))
    except (OverflowError, ValueError):
        return  # a local wall clock at the ends of the range that UTC cannot hold
    assert to_timestamp(value) == reference
    assert from_timestamp(reference) == reference.ToDatetime(tzinfo=UTC) == as_utc(value)


@pytest.mark.parametrize(
    "ts",
    [
        Timestamp(seconds=0, nanos=-1),
        Timestamp(seconds=0, nanos=1_000_000_000),
        Timestamp(seconds=-62_135_596_801),  # 0000-12-31T23:59:59
        Timestamp(seconds=253_402_300_800),  # 10000-01-01
    ],
)
def test_invalid_timestamps_are_refused_as_protobuf_refuses_them(ts: Timestamp) -> None:
    with pytest.raises((ValueError, OverflowError)):
        ts.ToDatetime(tzinfo=UTC)
    with pytest.raises((ValueError, OverflowError)):
        from_timestamp(ts)


@settings(max_examples=200, deadline=None)
@given(instants)
def test_epoch_milliseconds_floor_the_instant_and_come_back(instant: datetime) -> None:
    ms = epoch_ms(instant)
    back = from_epoch_ms(ms)
    assert back <= instant < back + timedelta(milliseconds=1)
    assert back.utcoffset() == timedelta(0)
    assert epoch_ms(back) == ms
