"""Leave, balance and publishing edges of the roster rules (services/scheduling/roster.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest
from wfm.scheduling.v1 import roster_service_pb2 as pb

from services.scheduling import roster, roster_store
from services.scheduling import roster_request as req
from services.scheduling.roster import Anchor, Context, Leave, LeaveKind, Schedule, ShiftPlan
from services.scheduling.rostertime import day_bounds
from wfm_runtime.errors import FailedPrecondition, Violations
from wfm_runtime.timefmt import to_timestamp

PUNE = Context(
    agent_zone="Asia/Kolkata",
    client_zone="Asia/Kolkata",
    team_id="day",
    weekly_minutes=40 * 60,
    site="pune",
    annual_allowance_days=25,
    holidays=frozenset({date(2027, 12, 25)}),
)
EMPTY = Schedule("asha")


def days_off(leave_id: str, first: date, last: date) -> Leave:
    start, end = day_bounds(first, PUNE.agent_zone)[0], day_bounds(last, PUNE.agent_zone)[1]
    return Leave(leave_id, LeaveKind.ANNUAL, start, end, first, last, full_days=True)


def hours_off(leave_id: str, start: datetime, hours: int) -> Leave:
    """Hourly annual leave as RequestLeave parses it."""
    message = pb.LeaveRequest(kind=pb.LEAVE_KIND_ANNUAL)
    message.start_time.CopyFrom(to_timestamp(start))
    message.end_time.CopyFrom(to_timestamp(start + timedelta(hours=hours)))
    leave = req.check_leave(Violations(), message, leave_id, PUNE.agent_zone)
    assert leave is not None
    return leave


def reloaded(schedule: Schedule) -> Schedule:
    """The schedule as the next command or read sees it: decoded from its stored event."""
    return roster_store.schedule_from_proto(roster_store.schedule_to_proto(schedule), 1)


def test_hourly_leave_on_new_years_morning_counts_in_the_new_year_after_reloading() -> None:
    # 02:00-06:00 IST on 1 January 2028 is still 31 December in UTC: the stored leave came back
    # with the UTC date, and its hours moved to the previous year's balance.
    start = datetime(2027, 12, 31, 20, 30, tzinfo=UTC)
    asked = roster.request_leave(EMPTY, hours_off("h1", start, 4), PUNE).schedule
    stored = reloaded(asked)
    assert roster.balance(stored, 2028, PUNE).pending_days == 0.5
    assert roster.balance(stored, 2027, PUNE).pending_days == 0.0
    approved = reloaded(roster.approve_leave(stored, "h1", PUNE).schedule)
    assert roster.balance(approved, 2028, PUNE).taken_days == 0.5
    assert roster.balance(approved, 2027, PUNE).taken_days == 0.0


def test_the_same_days_cannot_be_requested_twice() -> None:
    # Two requests for one week (a double submit) were both approved and took the week twice.
    week = days_off("l1", date(2027, 3, 8), date(2027, 3, 12))
    asked = roster.request_leave(EMPTY, week, PUNE).schedule
    again = days_off("l2", date(2027, 3, 12), date(2027, 3, 15))
    with pytest.raises(FailedPrecondition) as caught:
        roster.request_leave(asked, again, PUNE)
    assert caught.value.violations[0].type == "LEAVE_OVERLAP"
    hour = hours_off("h1", datetime(2027, 3, 10, 5, 0, tzinfo=UTC), 2)
    with pytest.raises(FailedPrecondition):
        roster.request_leave(asked, hour, PUNE)
    # Denied or withdrawn leave no longer holds its days.
    denied = roster.deny_leave(asked, "l1", "peak").schedule
    assert roster.request_leave(denied, again, PUNE).leave_ids == ("l2",)


def test_a_holiday_set_after_the_request_is_not_counted_twice() -> None:
    # Leave over Christmas booked before the site's holidays for the year were published:
    # the 25th counted as a holiday in the allowance and again as a leave day. The contract
    # works Thursday to Monday, so Saturday the 25th is one of its working days.
    thu_to_mon = replace(PUNE, working_days=frozenset({4, 5, 6, 7, 1}))
    unknown = replace(thu_to_mon, holidays=frozenset())
    asked = roster.request_leave(
        EMPTY, days_off("l1", date(2027, 12, 24), date(2027, 12, 27)), unknown
    )
    stored = asked.schedule
    assert roster.balance(stored, 2027, thu_to_mon).pending_days == 3.0
    approved = roster.approve_leave(stored, "l1", thu_to_mon).schedule
    bal = roster.balance(approved, 2027, thu_to_mon)
    assert (bal.taken_days, bal.remaining_days) == (3.0, 21.0)
    assert approved.leave[0].days == 3.0


def test_a_week_of_leave_takes_only_the_contracts_working_days() -> None:
    # Monday to Sunday off took seven days from a Monday-Friday worker's allowance.
    week = days_off("l1", date(2027, 3, 8), date(2027, 3, 14))
    asked = roster.request_leave(EMPTY, week, PUNE).schedule
    assert asked.leave[0].days == 5.0
    assert roster.balance(asked, 2027, PUNE).pending_days == 5.0
    approved = roster.approve_leave(asked, "l1", PUNE).schedule
    bal = roster.balance(approved, 2027, PUNE)
    assert (approved.leave[0].days, bal.taken_days, bal.remaining_days) == (5.0, 5.0, 20.0)
    # A weekend off costs nothing; a Tuesday-Saturday contract pays for the Saturday instead.
    weekend = days_off("l2", date(2027, 3, 20), date(2027, 3, 21))
    assert roster.request_leave(EMPTY, weekend, PUNE).schedule.leave[0].days == 0.0
    tue_to_sat = replace(PUNE, working_days=frozenset({2, 3, 4, 5, 6}))
    assert roster.request_leave(EMPTY, weekend, tue_to_sat).schedule.leave[0].days == 1.0
    assert roster.request_leave(EMPTY, week, tue_to_sat).schedule.leave[0].days == 5.0


def test_a_public_holiday_on_a_rest_day_is_not_taken_from_the_allowance() -> None:
    # The allowance includes the holidays the agent gets off: Christmas 2027 is a Saturday,
    # no day off for a Monday-Friday contract, a day off for one working Saturdays.
    assert roster.balance(EMPTY, 2027, PUNE).public_holidays == 0
    assert roster.balance(EMPTY, 2027, PUNE).remaining_days == 25.0
    saturdays = replace(PUNE, working_days=frozenset({2, 3, 4, 5, 6}))
    assert roster.balance(EMPTY, 2027, saturdays).remaining_days == 24.0


def test_updating_a_published_shift_keeps_it_on_the_agents_roster() -> None:
    # The moved shift kept its PUBLISHED state but lost the published mark, so the agent's
    # roster (published shifts only) stopped showing it.
    nine = ShiftPlan(date(2027, 3, 8), time(9, 0), 480, Anchor.AGENT)
    shift = roster.build_shift("s1", nine, PUNE)
    drafted = roster.assign(EMPTY, [shift], PUNE).schedule
    change = roster.publish(drafted, "day", date(2027, 3, 8))
    assert change is not None
    later = roster.build_shift(
        "s1", ShiftPlan(date(2027, 3, 8), time(10, 0), 480, Anchor.AGENT), PUNE
    )
    moved = roster.change_shift(change.schedule, "s1", later, PUNE).schedule
    assert moved.shift("s1").published and moved.shift("s1").start_local == time(10, 0)
    cancelled = roster.cancel_shift(moved, "s1", "sick cover")  # agents still see it, cancelled
    assert cancelled is not None and cancelled.schedule.shift("s1").published


def test_hourly_leave_is_a_share_of_the_contracts_own_working_day() -> None:
    # Five hours off: half a day of a four-day week of 40 hours (10-hour days), but five-eighths
    # of a day of the same hours over five days.
    start = datetime(2027, 3, 10, 4, 0, tzinfo=UTC)
    four_days = replace(PUNE, working_days=frozenset({1, 2, 3, 4}))
    assert roster.leave_days(hours_off("h1", start, 5), four_days) == 0.5
    assert roster.leave_days(hours_off("h2", start, 5), PUNE) == 0.62


def test_approved_leave_keeps_the_working_days_it_was_approved_on() -> None:
    # A Monday-Sunday week off approved on a Monday-Friday contract took five days. A later
    # contract of four or six working days re-priced it (four or six days): four gave the agent
    # a day of allowance back for a week already taken, six overdrew the allowance.
    week = days_off("l1", date(2027, 3, 8), date(2027, 3, 14))
    asked = roster.request_leave(EMPTY, week, PUNE).schedule
    approved = reloaded(roster.approve_leave(asked, "l1", PUNE).schedule)
    four_days = replace(PUNE, working_days=frozenset({1, 2, 3, 4}))
    six_days = replace(PUNE, working_days=frozenset({1, 2, 3, 4, 5, 6}))
    assert roster.balance(approved, 2027, four_days).taken_days == 5.0
    assert roster.balance(approved, 2027, six_days).taken_days == 5.0
    # A holiday set since on one of those days still comes off it (it is in the allowance).
    holiday = replace(four_days, holidays=frozenset({date(2027, 3, 12)}))
    assert roster.balance(approved, 2027, holiday).taken_days == 4.0
    # Leave not yet decided follows the contract: the approval counts on the one it meets.
    assert roster.balance(asked, 2027, six_days).pending_days == 6.0
