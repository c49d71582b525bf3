"""Real-time adherence (`metrics.adherence_now`): an agent's status now against the schedule
now, and since when that state has held, on the day rule's own pieces."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.performance.metrics import (
    IN_ADHERENCE,
    NOT_SCHEDULED,
    ON_LEAVE,
    OUT_OF_ADHERENCE,
    WORK,
    AgentInputs,
    Leave,
    Scheduled,
    adherence_now,
    adheres,
)
from tests.unit.test_performance_metrics import agent_days, at, night


def test_on_a_scheduled_break_in_a_break_is_in_adherence_since_the_log_in() -> None:
    now = adherence_now(night(), at(23, 17, 10))
    assert (now.status, now.status_since) == ("BREAK", at(23, 17))
    assert now.scheduled == Scheduled("BREAK", at(23, 17), at(23, 17, 15))
    # Available at work from the late log-in at 13:10, then on the break: in adherence since.
    assert (now.state, now.state_since) == (IN_ADHERENCE, at(23, 13, 10))


def test_an_overrunning_break_is_out_of_adherence_from_the_breaks_end() -> None:
    for moment in (at(23, 17, 15), at(23, 17, 20)):  # exactly at the end, and after it
        now = adherence_now(night(), moment)
        assert now.status == "BREAK"
        assert now.scheduled == Scheduled(WORK, at(23, 17, 15), at(23, 19))
        assert (now.state, now.state_since) == (OUT_OF_ADHERENCE, at(23, 17, 15))


def test_not_logged_in_at_the_shifts_start_is_out_of_adherence_with_no_status() -> None:
    now = adherence_now(night(), at(23, 13, 5))
    assert (now.status, now.status_since) == ("OFFLINE", None)
    assert now.scheduled == Scheduled(WORK, at(23, 13), at(23, 17))
    assert (now.state, now.state_since) == (OUT_OF_ADHERENCE, at(23, 13))


def test_across_the_agents_midnight_the_shifts_roster_date_keeps_the_run() -> None:
    # 19:10 UTC is 00:40 IST on the 24th: still the 23rd's shift, at lunch as scheduled.
    now = adherence_now(night(), at(23, 19, 10))
    assert now.scheduled == Scheduled("LUNCH", at(23, 19), at(23, 19, 30))
    assert (now.state, now.state_since) == (IN_ADHERENCE, at(23, 17, 25))


def test_after_the_shift_nothing_is_scheduled() -> None:
    now = adherence_now(night(), at(23, 23))
    assert (now.status, now.status_since, now.scheduled) == ("OFFLINE", at(23, 22), None)
    assert (now.state, now.state_since) == (NOT_SCHEDULED, at(23, 22))


def test_on_approved_leave_the_schedule_is_not_judged() -> None:
    away = replace(night(), changes=(), leave=(Leave("l1", at(23, 0), at(24, 0)),))
    now = adherence_now(away, at(23, 15))
    assert (now.state, now.status) == (ON_LEAVE, "OFFLINE")


def test_an_agent_with_no_inputs_is_offline_and_not_scheduled() -> None:
    now = adherence_now(AgentInputs(zone="Asia/Kolkata"), at(23, 12))
    assert (now.status, now.status_since, now.scheduled, now.state) == (
        "OFFLINE",
        None,
        None,
        NOT_SCHEDULED,
    )
    assert now.state_since <= at(23, 12)


@settings(max_examples=200, deadline=None)
@given(
    drawn=agent_days(steps_from=timedelta(hours=-30)),
    minutes=st.integers(-24 * 60, 5 * 24 * 60),
)
def test_the_state_is_the_status_now_against_the_activity_now(
    drawn: tuple[AgentInputs, object], minutes: int
) -> None:
    """Whatever the zone (DST included), shifts, breaks, leave and status changes."""
    inputs, first = drawn
    moment = datetime.combine(first, datetime.min.time()).replace(  # type: ignore[arg-type]
        tzinfo=at(23, 0).tzinfo
    ) + timedelta(minutes=minutes)
    now = adherence_now(inputs, moment)
    covering = [s for s in inputs.shifts if s.start <= moment < s.end]
    activity = covering[0].activity_at(moment) if covering else None
    if any(leave.start <= moment < leave.end for leave in inputs.leave):
        expected = ON_LEAVE
    elif activity is None:
        expected = NOT_SCHEDULED
    else:
        expected = IN_ADHERENCE if adheres(now.status, activity) else OUT_OF_ADHERENCE
    assert now.state == expected
    assert now.state_since <= moment
    assert (now.scheduled is None) == (activity is None)
    if now.scheduled is not None:
        assert now.scheduled.start <= moment < now.scheduled.end
