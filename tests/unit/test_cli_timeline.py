"""The roster timeline and the coverage chart of the CLI: pure rendering of API messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console
from wfm.scheduling.v1 import roster_service_pb2 as rpb
from wfm.type.v1 import localized_time_pb2

from wfm_cli.timeline import ACTIVITY, FREE, WORK, coverage_chart, day_bar, roster_timeline

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
    end = start + timedelta(hours=9)
    return rpb.Shift(
        roster_date=day,
        start_time=_stamp(start),
        end_time=_stamp(end),
        start_agent_local=_local(start, KOLKATA),
        end_agent_local=_local(end, KOLKATA),
        start_client_local=_local(start, NEW_YORK),
        end_client_local=_local(end, NEW_YORK),
        paid_minutes=510,
        activities=[
            rpb.Activity(kind=rpb.ACTIVITY_KIND_LUNCH, offset_minutes=240, length_minutes=30)
        ],
    )


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
