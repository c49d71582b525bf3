"""The roster timeline and the coverage chart of the CLI: pure rendering of API messages."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from wfm.scheduling.v1 import roster_service_pb2 as rpb
from wfm.type.v1 import localized_time_pb2

from wfm_cli.timeline import (
    ACTIVITY,
    FREE,
    LONG_DAY_NOTE,
    SHORT_DAY_NOTE,
    SKIPPED,
    WORK,
    coverage_chart,
    day_bar,
    day_hours,
    roster_timeline,
)

KOLKATA = ZoneInfo("Asia/Kolkata")
NEW_YORK = ZoneInfo("America/New_York")


def _stamp(when: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(when.astimezone(UTC))
    return stamp


def _local(when: datetime, zone: ZoneInfo) -> localized_time_pb2.LocalizedTime:
    local = when.astimezone(zone)
    return localized_time_pb2.LocalizedTime(
        time_zone=str(zone), local_time=local.isoformat(), abbreviation=local.tzname() or ""
    )


def night_shift(day: str) -> rpb.Shift:
    """08:00-17:00 New York on `day`, lunch after four hours."""
    start = datetime.fromisoformat(f"{day}T08:00").replace(tzinfo=NEW_YORK)
    shift = shift_between(start, start + timedelta(hours=9), agent_zone=KOLKATA)
    shift.activities.add(kind=rpb.ACTIVITY_KIND_LUNCH, offset_minutes=240, length_minutes=30)
    return shift


def shift_between(start: datetime, end: datetime, agent_zone: ZoneInfo = NEW_YORK) -> rpb.Shift:
    """A shift from `start` to `end` (aware), of an agent in `agent_zone`, client New York."""
    return rpb.Shift(
        roster_date=start.astimezone(agent_zone).date().isoformat(),
        start_time=_stamp(start),
        end_time=_stamp(end),
        start_agent_local=_local(start, agent_zone),
        end_agent_local=_local(end, agent_zone),
        start_client_local=_local(start, NEW_YORK),
        end_client_local=_local(end, NEW_YORK),
        paid_minutes=int((end - start).total_seconds() // 60),
    )


def _rows(table: object) -> tuple[dict[str, str], str]:
    console = Console(width=200, record=True)
    console.print(table)
    text = console.export_text()
    return {
        line.split("│")[1].strip(): line for line in text.splitlines() if line.startswith("│")
    }, text


def test_a_night_shift_fills_the_evening_and_the_next_morning_on_the_agents_clock() -> None:
    shift = night_shift("2026-11-24")  # 18:30-03:30 IST
    evening = day_bar(datetime(2026, 11, 24), [shift], KOLKATA).plain
    morning = day_bar(datetime(2026, 11, 25), [shift], KOLKATA).plain
    assert len(evening) == len(morning) == 48
    assert evening[:37] == FREE * 37 and evening[37:45] == WORK * 8  # 18:30 to 22:30
    assert evening[45] == ACTIVITY  # lunch 22:30-23:00 IST
    assert morning[:7] == WORK * 7 and morning[7:] == FREE * 41  # until 03:30


def test_the_bar_follows_the_clients_clock_change() -> None:
    """New York springs forward on 14 March 2027: the same 08:00 shift starts an hour earlier
    in India (17:30 IST instead of 18:30)."""
    before = day_bar(datetime(2027, 3, 12), [night_shift("2027-03-12")], KOLKATA).plain
    after = day_bar(datetime(2027, 3, 15), [night_shift("2027-03-15")], KOLKATA).plain
    assert before.index(WORK) == 37 and after.index(WORK) == 35


def test_every_date_of_the_range_is_a_row_and_days_without_shifts_say_off() -> None:
    roster = rpb.AgentRoster(
        agent="agents/p-1",
        days=[rpb.RosterDay(roster_date="2026-11-27", shifts=[night_shift("2026-11-27")])],
    )
    table = roster_timeline(
        roster, "Asia/Kolkata", "America/New_York", first="2026-11-27", last="2026-11-29"
    )
    console = Console(width=200, record=True)
    console.print(table)
    text = console.export_text()
    assert "Fri 27 Nov" in text and "Sat 28 Nov" in text and "Sun 29 Nov" in text
    assert "18:30 IST-03:30 IST" in text and "08:00 EST-17:00 EST" in text
    assert text.count("off") == 2


def test_a_shift_cancelled_for_leave_is_listed_but_not_drawn_and_leave_days_are_named() -> None:
    cancelled = night_shift("2026-12-09")
    cancelled.state = rpb.SHIFT_STATE_CANCELLED
    cancelled.cancel_reason = "approved leave [annual]"
    roster = rpb.AgentRoster(
        agent="agents/p-1",
        days=[
            rpb.RosterDay(roster_date="2026-12-08", shifts=[night_shift("2026-12-08")]),
            rpb.RosterDay(roster_date="2026-12-09", shifts=[cancelled]),
        ],
        leave_requests=[
            rpb.LeaveRequest(
                kind=rpb.LEAVE_KIND_ANNUAL, start_date="2026-12-09", end_date="2026-12-09",
                state=rpb.LEAVE_STATE_APPROVED,
            ),
            rpb.LeaveRequest(
                kind=rpb.LEAVE_KIND_SICK, start_date="2026-12-11", end_date="2026-12-11",
                state=rpb.LEAVE_STATE_REQUESTED,
            ),
        ],
    )  # fmt: skip
    table = roster_timeline(
        roster, "Asia/Kolkata", "America/New_York", first="2026-12-08", last="2026-12-11"
    )
    console = Console(width=200, record=True)
    console.print(table)
    rows = {line[2:12]: line for line in console.export_text().splitlines() if "Dec" in line}
    assert "cancelled: approved leave [annual]" in rows["Wed 09 Dec"]  # reason shown as typed
    assert WORK * 7 in rows["Wed 09 Dec"]  # only the night before runs into the morning
    assert WORK not in rows["Thu 10 Dec"]  # the cancelled night does not
    assert "leave (sick, asked)" in rows["Fri 11 Dec"]
    assert rows["Wed 09 Dec"].rstrip(" │").endswith("-")  # no paid hours


def test_the_coverage_chart_shows_the_gap_and_skips_closed_intervals() -> None:
    start = datetime(2026, 11, 24, 13, tzinfo=UTC)
    intervals = [
        rpb.CoverageInterval(
            start_time=_stamp(start + timedelta(minutes=30 * i)),
            start_client_local=_local(start + timedelta(minutes=30 * i), NEW_YORK),
            required=required,
            scheduled=scheduled,
            gap=required - scheduled,
        )
        for i, (required, scheduled) in enumerate([(4, 5), (4, 2), (0, 0)])
    ]
    chart = coverage_chart(rpb.GetCoverageResponse(team="teams/t", intervals=intervals))
    console = Console(width=200, record=True)
    console.print(chart)
    text = console.export_text()
    assert "08:00 EST" in text and "08:30 EST" in text and "09:00 EST" not in text
    assert "+2" in text and "-1" in text


# New York springs forward on 14 March 2027 (02:00 EST -> 03:00 EDT: 23 hours) and falls back on
# 7 November 2027 (02:00 EDT -> 01:00 EST: 01:00-02:00 twice, 25 hours).
SPRING, FALL = datetime(2027, 3, 14), datetime(2027, 11, 7)


def test_on_the_spring_forward_day_the_skipped_hour_is_drawn_as_such_not_as_work() -> None:
    # 00:00 EST to 06:00 EDT: five hours of work; the clocks skip 02:00-03:00.
    across = shift_between(
        datetime(2027, 3, 14, 5, tzinfo=UTC), datetime(2027, 3, 14, 10, tzinfo=UTC)
    )
    bar = day_bar(SPRING, [across], NEW_YORK).plain
    assert len(bar) == 48
    assert bar[:12] == WORK * 4 + SKIPPED * 2 + WORK * 6 and bar[12:] == FREE * 36
    # A shift from 03:00 EDT stands under 03, not under the 02 the clocks skipped.
    early = datetime(2027, 3, 14, 3).replace(tzinfo=NEW_YORK)
    bar = day_bar(SPRING, [shift_between(early, early + timedelta(hours=8))], NEW_YORK).plain
    assert bar.index(WORK) == 6 and bar.count(WORK) == 16 and bar[4:6] == SKIPPED * 2


def test_on_the_fall_back_day_work_in_the_repeated_hour_is_drawn() -> None:
    # From 01:00 EST (the second 01:00 of the night) to 09:00 EST.
    second_pass = datetime(2027, 11, 7, 6, tzinfo=UTC)
    late = shift_between(second_pass, second_pass + timedelta(hours=8))
    bar = day_bar(FALL, [late], NEW_YORK).plain
    assert bar[:2] == FREE * 2 and bar[2:18] == WORK * 16 and bar[18:] == FREE * 30
    # A night shift that ends at 01:30 EDT (the first pass) draws the 01:00 cell only.
    first_pass = datetime(2027, 11, 7, 5, 30, tzinfo=UTC)
    night = shift_between(first_pass - timedelta(hours=8), first_pass)
    bar = day_bar(FALL, [night], NEW_YORK).plain
    assert bar[:3] == WORK * 3 and bar[3:] == FREE * 45
    assert SKIPPED not in bar


def test_a_clock_change_day_is_dated_with_its_length_and_the_bar_explained() -> None:
    days = [SPRING, FALL, datetime(2027, 6, 1)]
    assert [day_hours(day, NEW_YORK) for day in days] == [23, 25, 24]
    assert [day_hours(day, KOLKATA) for day in days] == [24, 24, 24]
    roster = rpb.AgentRoster(agent="agents/u-1")
    rows, text = _rows(
        roster_timeline(roster, "America/New_York", "", first="2027-11-06", last="2027-11-07")
    )
    assert set(rows) == {"Sat 06 Nov", "Sun 07 Nov 25h"}
    assert LONG_DAY_NOTE in text and SHORT_DAY_NOTE not in text
    rows, text = _rows(
        roster_timeline(roster, "America/New_York", "", first="2027-03-14", last="2027-03-15")
    )
    assert set(rows) == {"Sun 14 Mar 23h", "Mon 15 Mar"}
    assert SHORT_DAY_NOTE in text and LONG_DAY_NOTE not in text
    rows, text = _rows(
        roster_timeline(roster, "America/New_York", "", first="2027-03-15", last="2027-03-16")
    )
    assert set(rows) == {"Mon 15 Mar", "Tue 16 Mar"} and "clocks" not in text


def test_an_indian_night_shift_keeps_its_place_when_the_client_changes_clocks() -> None:
    """Kolkata has no DST: across the client's clock changes the agent's bar stays 24 hours,
    and the 08:00 New York shift starts at 17:30 IST in summer time, 18:30 IST in winter, running
    past midnight into the next row."""
    for day, start, end in (("2027-03-14", 35, 5), ("2027-11-07", 37, 7)):
        shift = night_shift(day)
        evening = day_bar(datetime.fromisoformat(day), [shift], KOLKATA).plain
        morning = day_bar(datetime.fromisoformat(day) + timedelta(days=1), [shift], KOLKATA).plain
        assert evening.index(WORK) == start and evening.endswith(WORK * 2)
        assert morning[:end] == WORK * end and morning[end:] == FREE * (48 - end)
        assert SKIPPED not in evening + morning


CHANGING_ZONES = [
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",  # half an hour forward and back
    "America/Santiago",  # changes at midnight
    "Asia/Kolkata",
    "Asia/Kathmandu",  # +05:45
    "Pacific/Chatham",  # +12:45 / +13:45
]
CHANGE_DAYS = [
    date(2027, 3, 14),
    date(2027, 11, 7),
    date(2027, 3, 28),
    date(2027, 10, 31),
    date(2027, 4, 4),
    date(2027, 10, 3),
    date(2027, 9, 5),
    date(2027, 9, 26),
]


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(CHANGING_ZONES),
    day=st.sampled_from(CHANGE_DAYS) | st.dates(date(2026, 1, 1), date(2027, 12, 31)),
    start=st.integers(min_value=-48, max_value=96),
    quarters=st.integers(min_value=1, max_value=56),
)
def test_every_cell_shows_what_the_agents_clock_shows_at_that_time(
    zone: str, day: date, start: int, quarters: int
) -> None:
    """The oracle turns UTC into the wall clock (never the other way, which is ambiguous):
    every quarter hour around the day, where the clock shows it. A cell is work exactly when
    the clock shows its time at some instant of the shift; skipped when it never shows it."""
    where = ZoneInfo(zone)
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    begin = midnight + timedelta(minutes=15 * start)
    shift = shift_between(begin, begin + timedelta(minutes=15 * quarters), agent_zone=where)
    shown: dict[datetime, list[datetime]] = {}
    for step in range(-4 * 16, 4 * 40):
        instant = midnight + timedelta(minutes=15 * step)
        shown.setdefault(instant.astimezone(where).replace(tzinfo=None), []).append(instant)
    bar = day_bar(datetime(day.year, day.month, day.day), [shift], where).plain
    for cell, char in enumerate(bar):
        wall = datetime(day.year, day.month, day.day) + timedelta(minutes=30 * cell)
        instants = shown.get(wall, [])
        worked = any(begin <= i < begin + timedelta(minutes=15 * quarters) for i in instants)
        expected = SKIPPED if not instants else WORK if worked else FREE
        assert char == expected, (cell, wall, instants)
    quarter_hours_of_the_day = sum(len(v) for wall, v in shown.items() if wall.date() == day)
    assert day_hours(datetime(day.year, day.month, day.day), where) == quarter_hours_of_the_day / 4
