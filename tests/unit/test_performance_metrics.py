"""Metric rules against hand-computed figures (docs/metrics.md).

The agent works from Pune (Asia/Kolkata, UTC+05:30) on the US night shift of roster date
2026-11-23: 13:00-22:00 UTC, i.e. 18:30 to 03:30 IST the next morning.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.performance.metrics import (
    STATUS_CARRY,
    Activity,
    AgentInputs,
    CaseOutcome,
    Leave,
    Piece,
    Shift,
    StatusChange,
    TrainingCompletion,
    cases_of_day,
    counted,
    day_sums,
    days_touched,
    derive,
    local_midnight,
    pieces,
    pieces_between,
    roster_dates_between,
    status_reach,
    trainings_of_day,
    window,
)

PUNE = "Asia/Kolkata"
D23, D24, D25 = date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25)


def at(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 11, day, hh, mm, tzinfo=UTC)


def night_shift(day: int, roster: date, with_activities: bool = True) -> Shift:
    activities = (
        (
            Activity("WORK", at(day, 13), at(day, 17)),
            Activity("BREAK", at(day, 17), at(day, 17, 15), paid=True, productive=False),
            Activity("WORK", at(day, 17, 15), at(day, 19)),
            Activity("LUNCH", at(day, 19), at(day, 19, 30), paid=False, productive=False),
            Activity("WORK", at(day, 19, 30), at(day, 22)),
        )
        if with_activities
        else ()
    )
    return Shift(f"s-{day}", roster, at(day, 13), at(day, 22), activities)


def changes(*steps: tuple[datetime, str]) -> tuple[StatusChange, ...]:
    return tuple(StatusChange(i + 1, moment, status) for i, (moment, status) in enumerate(steps))


# A late log-in (13:10), a call, a break that overruns by 10 minutes, lunch, log-out at 22:00.
WORKED_NIGHT = changes(
    (at(23, 13, 10), "AVAILABLE"),
    (at(23, 14), "ON_CONTACT"),
    (at(23, 15), "AFTER_CONTACT_WORK"),
    (at(23, 15, 30), "AVAILABLE"),
    (at(23, 17), "BREAK"),
    (at(23, 17, 25), "AVAILABLE"),
    (at(23, 19), "LUNCH"),
    (at(23, 19, 30), "AVAILABLE"),
    (at(23, 22), "OFFLINE"),
)


def night() -> AgentInputs:
    return AgentInputs(zone=PUNE, changes=WORKED_NIGHT, shifts=(night_shift(23, D23),))


def test_a_worked_night_shift_with_a_late_login_and_an_overrunning_break() -> None:
    figures = derive(day_sums(night(), D23))
    assert figures["scheduled_hours"] == 8.5  # 9 h shift minus the unpaid 30 min lunch
    assert figures["logged_in_hours"] == round(530 / 60, 6)  # 13:10 to 22:00
    assert figures["late_logins"] == 1
    assert figures["no_shows"] == 0
    # Offline for the first 10 of 495 scheduled productive minutes.
    assert figures["absenteeism_percent"] == round(10 / 495 * 100, 4)
    # In the scheduled activity: 230 + 15 (break) + 95 + 30 (lunch) + 150 of 540 minutes.
    assert figures["adherence_percent"] == round(520 / 540 * 100, 4)
    # Productive statuses: 385 available + 60 on contact + 30 wrap-up, of 495 scheduled.
    assert figures["conformance_percent"] == round(475 / 495 * 100, 4)
    assert figures["occupancy_percent"] == round(90 / 475 * 100, 4)


def test_minutes_after_midnight_belong_to_the_roster_date_the_shift_started() -> None:
    inputs = night()
    # 22:00 UTC is 03:30 IST on the 24th, yet all of the shift counts for the 23rd.
    assert all(p.end <= at(23, 22) for p in pieces(inputs, D23) if p.activity is not None)
    assert day_sums(inputs, D24)["logged_in_ms"] == 0
    assert day_sums(inputs, D24)["scheduled_ms"] == 0
    assert derive(day_sums(inputs, D24))["adherence_percent"] is None


def test_a_no_show_is_absent_for_the_whole_productive_schedule() -> None:
    inputs = AgentInputs(
        zone=PUNE, changes=WORKED_NIGHT, shifts=(night_shift(23, D23), night_shift(24, D24))
    )
    figures = derive(day_sums(inputs, D24))
    assert figures["no_shows"] == 1
    assert figures["late_logins"] == 0
    assert figures["absenteeism_percent"] == 100.0
    # Offline is no scheduled activity, not even the break or lunch.
    assert figures["adherence_percent"] == 0.0


def test_approved_leave_is_not_absence() -> None:
    leave = Leave("l-1", at(24, 12), at(24, 23))
    inputs = AgentInputs(
        zone=PUNE,
        changes=WORKED_NIGHT,
        shifts=(night_shift(23, D23), night_shift(24, D24)),
        leave=(leave,),
    )
    sums = day_sums(inputs, D24)
    assert sums["no_shows"] == 0
    assert sums["absence_ms"] == 0
    assert sums["scheduled_ms"] == 510 * 60_000  # still scheduled, paid leave
    assert derive(sums)["absenteeism_percent"] is None  # nothing left to be absent from


def test_a_shift_without_activities_is_all_productive_work() -> None:
    inputs = AgentInputs(zone=PUNE, shifts=(night_shift(25, D25, with_activities=False),))
    sums = day_sums(inputs, D25)
    assert sums["scheduled_ms"] == sums["scheduled_productive_ms"] == 9 * 3_600_000
    assert sums["no_shows"] == 1


def test_training_hours_and_technical_trainings() -> None:
    inputs = AgentInputs(
        zone=PUNE,
        trainings=(
            TrainingCompletion("t-1", at(23, 4), PUNE, 120, technical=True),
            TrainingCompletion("t-2", at(23, 10), PUNE, 60, technical=False),
            TrainingCompletion("t-3", at(24, 4), PUNE, 30, technical=True),
        ),
    )
    figures = derive(day_sums(inputs, D23))
    assert figures["training_hours"] == 3.0
    assert figures["technical_training_hours"] == 2.0
    assert figures["technical_trainings_completed"] == 1.0


def test_a_class_during_the_night_shift_counts_for_the_shifts_roster_date() -> None:
    """A class at 01:00 IST on the 24th (19:30 UTC on the 23rd), inside the 23rd's night
    shift: its hours count on the 23rd with the shift's other figures, not on the 24th."""
    class_at_one = TrainingCompletion("t-1", at(23, 19, 30), PUNE, 90, technical=True)
    inputs = AgentInputs(zone=PUNE, shifts=(night_shift(23, D23),), trainings=(class_at_one,))
    assert trainings_of_day(inputs, D23) == [class_at_one]
    assert derive(day_sums(inputs, D23))["training_hours"] == 1.5
    assert derive(day_sums(inputs, D24))["training_hours"] == 0
    # Without the shift, the local date: the 24th in Pune.
    unscheduled = replace(inputs, shifts=())
    assert derive(day_sums(unscheduled, D23))["training_hours"] == 0
    assert derive(day_sums(unscheduled, D24))["training_hours"] == 1.5
    # After the shift ends (03:30 IST), the local date again.
    after = replace(class_at_one, at=at(23, 22, 30))  # 04:00 IST on the 24th
    assert trainings_of_day(replace(inputs, trainings=(after,)), D24) == [after]


def test_a_class_after_midnight_on_a_month_end_night_shift_stays_in_that_month() -> None:
    """The night shift of 30 November runs to 03:30 IST on 1 December: a class at 01:00 IST
    then, and a self-paced course completed at 02:00 IST, count in November."""
    nov30 = date(2026, 11, 30)
    shift = Shift("s-30", nov30, at(30, 13), at(30, 22))
    session = TrainingCompletion("t-1", at(30, 19, 30), PUNE, 60, technical=False)
    self_paced = TrainingCompletion("t-2", at(30, 20, 30), PUNE, 30, technical=True)
    inputs = AgentInputs(zone=PUNE, shifts=(shift,), trainings=(session, self_paced))
    assert trainings_of_day(inputs, nov30) == [session, self_paced]
    assert day_sums(inputs, nov30)["training_minutes"] == 90
    assert day_sums(inputs, nov30)["technical_trainings"] == 1
    assert day_sums(inputs, date(2026, 12, 1))["training_minutes"] == 0


def test_without_a_shift_a_completion_counts_on_the_agents_local_date_like_a_case() -> None:
    """Recorded while the agent lived in New York (22:00 on the 23rd there), read for an
    agent now in Pune (08:30 on the 24th): it counts on the 24th, with a case resolved at the
    same instant, not on the 23rd of the zone it was recorded in. One stored before the
    instant was kept counts on the date it was filed on."""
    in_new_york = TrainingCompletion("t-1", at(24, 3), "America/New_York", 60, technical=False)
    filed = TrainingCompletion("t-2", None, "", 30, technical=False, filed_on=D25)
    same_instant = case("c-1", at(24, 3), handle_s=300)
    inputs = AgentInputs(zone=PUNE, trainings=(in_new_york, filed), cases=(same_instant,))
    assert trainings_of_day(inputs, D23) == []
    assert trainings_of_day(inputs, D24) == [in_new_york]
    assert cases_of_day(inputs, D24) == [same_instant]
    assert day_sums(inputs, D24)["training_minutes"] == 60
    assert day_sums(inputs, D23)["training_minutes"] == 0
    assert trainings_of_day(inputs, D25) == [filed]
    # The agent's zone decides it, whatever the completion's: back in New York, the 23rd.
    assert trainings_of_day(replace(inputs, zone="America/New_York"), D23) == [in_new_york]


def test_two_completions_of_one_course_on_different_sessions_both_count() -> None:
    """A fail and the pass on a later session of the same course, the same day: each is its
    own entry (course and session), so both attended times count."""
    failed = TrainingCompletion("courses/c|sessions/s1", at(24, 4), PUNE, 60, technical=True)
    passed = TrainingCompletion("courses/c|sessions/s2", at(24, 6), PUNE, 45, technical=True)
    inputs = AgentInputs(zone=PUNE, trainings=(failed, passed))
    assert trainings_of_day(inputs, D24) == [failed, passed]
    assert day_sums(inputs, D24)["training_minutes"] == 105
    assert day_sums(inputs, D24)["technical_trainings"] == 2


def case(
    case_id: str,
    resolved: datetime,
    *,
    handle_s: int,
    fcr: bool = True,
    sla: bool | None = True,
    csat: int | None = None,
    pulse: int | None = None,
    open_minutes: int = 30,
) -> CaseOutcome:
    return CaseOutcome(
        case_id,
        "a-1",
        "PHONE",
        resolved - timedelta(minutes=open_minutes),
        resolved,
        handle_s * 1000,
        fcr,
        sla is not None,
        bool(sla),
        csat,
        pulse,
    )


def test_process_metrics_of_a_day() -> None:
    cases = (
        case("c-1", at(23, 14), handle_s=300, csat=5, pulse=9),
        case("c-2", at(23, 20), handle_s=600, fcr=False, sla=False, csat=3),  # 01:30 IST
        case("c-3", at(23, 21), handle_s=420, sla=None, open_minutes=90),
        case("c-4", at(23, 23), handle_s=100),  # after the shift: 04:30 IST on the 24th
    )
    inputs = AgentInputs(
        zone=PUNE, changes=WORKED_NIGHT, shifts=(night_shift(23, D23),), cases=cases
    )
    assert [c.case_id for c in cases_of_day(inputs, D23)] == ["c-1", "c-2", "c-3"]
    figures = derive(day_sums(inputs, D23))
    assert figures["cases_resolved"] == 3
    assert figures["cases_resolved_per_day"] == 3
    assert figures["sla_compliance_percent"] == 50.0  # c-3 has no SLA
    assert figures["average_handle_time_seconds"] == round((300 + 600 + 420) / 3, 4)
    assert figures["first_contact_resolution_percent"] == round(2 / 3 * 100, 4)
    assert figures["csat_average"] == 4.0
    assert figures["pulse_average"] == 9.0
    assert figures["average_time_to_resolution_seconds"] == (30 + 30 + 90) * 60 / 3
    assert derive(day_sums(inputs, D24))["cases_resolved"] == 1


def test_a_forgotten_logout_stops_counting_after_the_carry() -> None:
    inputs = AgentInputs(zone="UTC", changes=changes((at(23, 8), "AVAILABLE")))
    total = sum(day_sums(inputs, d)["logged_in_ms"] for d in (D23, D24, D25))
    assert total == STATUS_CARRY / timedelta(milliseconds=1)


def test_counted_marks_the_numerator_pieces() -> None:
    absent = [p for p in pieces(night(), D23) if counted("absenteeism_percent", p)]
    assert [(p.start, p.end) for p in absent] == [(at(23, 13), at(23, 13, 10))]


def test_days_touched_cover_the_night_shift_and_the_carry() -> None:
    touched = days_touched(at(23, 20), at(23, 20), PUNE)
    assert D23 in touched and D24 in touched
    assert date(2026, 11, 21) not in touched


def test_an_empty_day_is_inactive() -> None:
    assert day_sums(AgentInputs(zone=PUNE), D23)["active_days"] == 0


@settings(max_examples=40, deadline=None)
@given(
    zone=st.sampled_from(["America/New_York", "Asia/Kolkata", "Australia/Sydney", "UTC"]),
    start=st.datetimes(
        min_value=datetime(2026, 3, 6),
        max_value=datetime(2026, 3, 10),  # a US DST change
    ),
    steps=st.lists(
        st.tuples(
            st.integers(1, 600), st.sampled_from(["AVAILABLE", "ON_CONTACT", "BREAK", "OFFLINE"])
        ),
        min_size=1,
        max_size=12,
    ),
)
def test_every_logged_in_minute_belongs_to_exactly_one_day(
    zone: str, start: datetime, steps: list[tuple[int, str]]
) -> None:
    moment = start.replace(tzinfo=UTC, microsecond=0)
    timeline = []
    for minutes, status in steps:
        moment += timedelta(minutes=minutes)
        timeline.append((moment, status))
    inputs = AgentInputs(zone=zone, changes=changes(*timeline))
    expected = 0
    for (t, status), nxt in zip(timeline, [*timeline[1:], (None, "")], strict=True):
        end = t + STATUS_CARRY if nxt[0] is None else min(nxt[0], t + STATUS_CARRY)
        if status != "OFFLINE":
            expected += int((end - t) / timedelta(milliseconds=1))
    days = [date(2026, 3, 1) + timedelta(days=i) for i in range(15)]
    assert sum(day_sums(inputs, d)["logged_in_ms"] for d in days) == expected


@pytest.mark.parametrize("metric", ["csat_average", "sla_compliance_percent"])
def test_no_denominator_means_no_figure(metric: str) -> None:
    assert derive(day_sums(AgentInputs(), D23))[metric] is None


def test_a_late_status_change_reaches_only_the_days_it_decides() -> None:
    inputs = night()
    # Late news: a break at 20:00 UTC (01:30 IST); the next known change is 22:00's log-out.
    late = StatusChange(99, at(23, 20), "BREAK")
    start, end = status_reach(replace(inputs, changes=(*inputs.changes, late)), late)
    assert (start, end) == (at(23, 20), at(23, 22))
    # Within the night shift: only its roster date, though it is the 24th in Pune.
    assert roster_dates_between(inputs, start, end) == {D23}
    # Without the shift, the same stretch is on the Pune calendar's 24th.
    assert roster_dates_between(replace(inputs, shifts=()), start, end) == {D24}


def whole_window_pieces(inputs: AgentInputs, day: date) -> list[Piece]:
    """The day rule's reference: every cut of the whole window walked (what `pieces` did
    before it walked only the day's span)."""
    return pieces_between(inputs, day, *window(day, inputs.zone))


def _shift_on(roster: date, start: datetime, hours: int, breaks: list[int]) -> Shift:
    end = start + timedelta(hours=hours)
    activities = tuple(
        Activity(
            "BREAK", start + timedelta(minutes=m), start + timedelta(minutes=m + 15), True, False
        )
        for m in sorted(set(breaks))
        if start + timedelta(minutes=m + 15) <= end
    )
    return Shift(f"s-{roster}-{start:%H%M}", roster, start, end, activities)


@st.composite
def agent_days(
    draw: st.DrawFn, *, steps_from: timedelta, shift_days: int = 4, max_steps: int = 20
) -> tuple[AgentInputs, date]:
    """An agent's inputs around a drawn first date (either side of US DST, 2026-03-08):
    shifts (day offset, minutes from that local midnight, hours) with 15-minute breaks,
    status changes (minutes after the last, from the first local midnight + `steps_from`)
    and leave (hours from that midnight, hours)."""
    zone = draw(st.sampled_from(["America/New_York", "Asia/Kolkata", "Australia/Sydney", "UTC"]))
    first = draw(st.dates(min_value=date(2026, 3, 5), max_value=date(2026, 3, 9)))
    shift_starts = draw(
        st.lists(
            st.tuples(
                st.integers(0, shift_days), st.integers(-11 * 60, 23 * 60), st.integers(1, 12)
            ),
            max_size=4,
        )
    )
    breaks = draw(st.lists(st.integers(0, 600), max_size=3))
    statuses = st.sampled_from(["AVAILABLE", "ON_CONTACT", "BREAK", "OFFLINE"])
    steps = draw(st.lists(st.tuples(st.integers(1, 900), statuses), max_size=max_steps))
    leave = draw(st.one_of(st.none(), st.tuples(st.integers(0, 96), st.integers(1, 48))))
    base = local_midnight(first, zone)
    shifts = tuple(
        sorted(
            (
                _shift_on(
                    first + timedelta(days=d),
                    local_midnight(first + timedelta(days=d), zone) + timedelta(minutes=m),
                    hours,
                    breaks,
                )
                for d, m, hours in shift_starts
            ),
            key=lambda s: s.start,
        )
    )
    moment, timeline = base + steps_from, []
    for minutes, status in steps:
        moment += timedelta(minutes=minutes)
        timeline.append((moment, status))
    leaves = (
        (Leave("l", base + timedelta(hours=leave[0]), base + timedelta(hours=sum(leave))),)
        if leave
        else ()
    )
    inputs = AgentInputs(zone=zone, changes=changes(*timeline), shifts=shifts, leave=leaves)
    return inputs, first


@settings(max_examples=150, deadline=None)
@given(drawn=agent_days(steps_from=timedelta(hours=-30)))
def test_pieces_equal_the_whole_window_cut(drawn: tuple[AgentInputs, date]) -> None:
    inputs, first = drawn
    for offset in range(-1, 6):
        day = first + timedelta(days=offset)
        assert pieces(inputs, day) == whole_window_pieces(inputs, day)
