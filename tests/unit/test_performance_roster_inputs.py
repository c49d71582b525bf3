"""How scheduling's shifts and leave, and training's completions, become performance inputs
(pure parts of the projector)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from wfm.training.v1 import events_pb2 as training_events

from services.performance import store, views
from services.performance.metrics import SUM_FIELDS, AgentInputs, trainings_of_day
from services.scheduling import roster
from services.training import domain as training
from services.training import store as training_store
from wfm_runtime.timefmt import to_timestamp


def at(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 11, day, hh, mm, tzinfo=UTC)


def _shift(shift_id: str, day: int, **kw: object) -> roster.Shift:
    """A US night shift worked from Pune: 13:00-22:00 UTC on the roster date."""
    return roster.Shift(
        shift_id, "night", date(2026, 11, day), at(day, 13), at(day, 22), "America/New_York",
        time(8), 540, status=roster.ShiftStatus.PUBLISHED, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_activities_sit_at_their_offsets_and_are_not_productive() -> None:
    lunch = roster.Activity(roster.ActivityKind.LUNCH, 240, 30, paid=False)
    shift = views.scheduled_shift(_shift("s1", 12, activities=(lunch,)))
    assert shift.roster_date == date(2026, 11, 12)
    (activity,) = shift.activities
    assert (activity.kind, activity.start, activity.end) == ("LUNCH", at(12, 17), at(12, 17, 30))
    assert (activity.paid, activity.productive) == (False, False)


def test_whole_day_leave_is_cut_back_from_the_night_shift_before_it() -> None:
    # Sick on 13 November (IST): 12th 18:30 UTC - 13th 18:30 UTC. Thursday's shift (roster
    # date 12th) runs until 22:00 UTC on the 12th and is worked; Friday's is on the leave date.
    sick = roster.Leave(
        "flu", roster.LeaveKind.SICK, at(12, 18, 30), at(13, 18, 30),
        date(2026, 11, 13), date(2026, 11, 13), full_days=True,
    )  # fmt: skip
    leave = views.leave_interval(sick, [_shift("thu", 12), _shift("fri", 13)])
    assert (leave.start, leave.end) == (at(12, 22), at(13, 18, 30))
    # Hourly leave is taken as it is.
    hours = roster.Leave(
        "dentist", roster.LeaveKind.OTHER, at(12, 15), at(12, 17),
        date(2026, 11, 12), date(2026, 11, 12), full_days=False,
    )  # fmt: skip
    leave = views.leave_interval(hours, [_shift("thu", 12)])
    assert (leave.start, leave.end) == (at(12, 15), at(12, 17))


def test_dates_before_what_the_event_keeps_are_not_cleared() -> None:
    schedule = roster.Schedule("asha", (_shift("a", 10), _shift("b", 20)), (), 3)
    assert views.kept_from(schedule, {"b"}) == date(2026, 11, 20) - timedelta(days=roster.KEEP_DAYS)
    assert views.kept_from(schedule, set()) == date(2026, 11, 10)
    assert views.kept_from(roster.Schedule("asha"), set()) == date.max


def test_a_period_is_whole_months_and_single_days() -> None:
    assert store.period_parts(date(2026, 11, 1), date(2026, 11, 30)) == (["2026-11"], [])
    months, days = store.period_parts(date(2026, 10, 31), date(2026, 11, 30))
    assert (months, days) == (["2026-11"], [date(2026, 10, 31)])
    months, days = store.period_parts(date(2026, 2, 2), date(2026, 3, 1))
    assert months == [] and len(days) == 28


def test_month_rows_sum_the_day_rows_and_leave_out_zero_totals() -> None:
    zeros = ",0" * (len(SUM_FIELDS) - 3)
    rows = store.sum_rows([{"a": "1,2,0", "b": "0,0"}, {"a": "3,0,0"}])
    assert store.pack_rows(rows) == {"a": "4,2,0" + zeros}
    assert store.move_row(rows["a"], "3,0,0", "5,1") == store.row_of("6,3,0")
    assert store.move_row(rows["a"], "4,2", None) is None


def test_many_packed_rows_parse_like_one_each_shorter_ones_padded() -> None:
    packed = ["1,2,3", ",".join(["7"] * len(SUM_FIELDS)), "0"]
    assert store.rows_of(packed) == [store.row_of(p) for p in packed]
    assert store.rows_of([]) == []


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 4), st.sampled_from(["a", "b"]), st.lists(st.integers(0, 9), max_size=4)
        ),
        max_size=30,
    )
)
def test_moving_month_rows_equals_summing_the_days_again(
    changes: list[tuple[int, str, list[int]]],
) -> None:
    """Day rows changed one at a time: the moved totals always equal a fresh sum."""
    days: list[dict[str, str]] = [{} for _ in range(5)]
    totals: dict[str, list[int]] = {}
    for day, agent, values in changes:
        new = ",".join(map(str, values)) if any(values) else None
        old = days[day].get(agent)
        if new is None:
            days[day].pop(agent, None)
        else:
            days[day][agent] = new
        moved = store.move_row(totals.get(agent), old, new)
        if moved is None:
            totals.pop(agent, None)
        else:
            totals[agent] = moved
        assert totals == store.sum_rows(days)


def test_a_completion_is_kept_at_its_session_start_else_its_completion_and_zone() -> None:
    session = training_events.TrainingCompletion(
        course="courses/fibre",
        session="sessions/jan",
        session_start_time=to_timestamp(at(23, 19, 30)),
        completion_time=to_timestamp(at(23, 21, 30)),
        attended_minutes=90,
        technical=True,
    )
    kept = views.training_completion(session, "Asia/Kolkata")
    assert (kept.at, kept.zone, kept.minutes, kept.technical) == (
        at(23, 19, 30),
        "Asia/Kolkata",
        90,
        True,
    )
    self_paced = training_events.TrainingCompletion(
        course="courses/gdpr",
        completion_time=to_timestamp(at(24, 2)),
        time_zone="Europe/London",
        attended_minutes=30,
    )
    done = views.training_completion(self_paced, "Asia/Kolkata")
    assert (done.at, done.zone) == (at(24, 2), "Europe/London")
    # Stored and read back: the instant and zone, not a date decided now.
    entry = store.training_entry(kept)
    assert "roster_date" not in entry
    parsed = store.parse_slice("a-1", {"trainings": {kept.completion_id: entry}})
    assert parsed.trainings == {kept.completion_id: kept}


def test_a_completion_stored_with_only_its_date_still_counts_on_it() -> None:
    """Stored before the instant was kept; a copy recorded again since wins over it."""
    old = {"roster_date": "2026-11-24", "minutes": 90, "technical": True}
    legacy = store.parse_slice("a-1", {"trainings": {"c|s": old}})
    inputs = store.inputs_from_parsed("Asia/Kolkata", [legacy])
    assert [t.minutes for t in trainings_of_day(inputs, date(2026, 11, 24))] == [90]

    again = views.training_completion(
        training_events.TrainingCompletion(
            course="c", session="s", session_start_time=to_timestamp(at(23, 4)), attended_minutes=90
        ),
        "Asia/Kolkata",
    )
    fresh = store.parse_slice("a-1", {"trainings": {"c|s": store.training_entry(again)}})
    for parts in ([legacy, fresh], [fresh, legacy]):
        merged: AgentInputs = store.inputs_from_parsed("Asia/Kolkata", parts)
        assert merged.trainings == (again,)


def test_every_completion_has_its_own_session_so_retakes_of_a_course_keep_both_entries() -> None:
    """Training records a completion only on a session (a self-paced one too: its window
    starts it), at most once per agent and session. A fail and the pass on a later
    self-paced session of the same course, as training encodes them, are two entries, each on
    the day it was completed (not its window's start); a redelivered event replaces its own."""
    course = training.Course("gdpr", title="GDPR", credit_minutes=60, technical=True)
    events = []
    for session_id, day, passed in (("w1", 23, False), ("w2", 24, True)):
        session = training.Session(
            session_id,
            course_id="gdpr",
            start=at(day, 4),
            end=at(day, 4) + timedelta(days=7),
            time_zone="Asia/Kolkata",
            delivery=training.Delivery.SELF_PACED,
        )
        record = training.completion_record(
            course=course,
            session=session,
            completion=training.Completion(at(day + 3, 9), 60, 50, passed),
            agent_zone="Asia/Kolkata",
        )
        learner = training.decide_complete(training.Learner("a-1"), record)
        assert learner is not None and training.decide_complete(learner, record) is None
        events.append(training_store.completion_to_proto("a-1", record))
    assert [(e.session, e.HasField("session_start_time"), e.self_paced) for e in events] == [
        ("sessions/w1", True, True),
        ("sessions/w2", True, True),
    ]
    kept = [views.training_completion(e, "Asia/Kolkata") for e in events]
    assert [k.completion_id for k in kept] == [
        "courses/gdpr|sessions/w1",
        "courses/gdpr|sessions/w2",
    ]
    stored: dict[str, object] = {}
    for k in [*kept, kept[0]]:  # the first event delivered again
        stored[k.completion_id] = store.training_entry(k)
    inputs = store.inputs_from_parsed(
        "Asia/Kolkata", [store.parse_slice("a-1", {"trainings": stored})]
    )
    assert inputs.trainings == tuple(kept)
    assert trainings_of_day(inputs, date(2026, 11, 23)) == []  # the first window's start
    assert [t.minutes for t in trainings_of_day(inputs, date(2026, 11, 26))] == [60]
    assert [t.minutes for t in trainings_of_day(inputs, date(2026, 11, 27))] == [60]


def test_a_class_counts_at_its_session_start_a_self_paced_session_at_completion() -> None:
    def event(self_paced: bool) -> training_events.TrainingCompletion:
        return training_events.TrainingCompletion(
            course="courses/c",
            session="sessions/s",
            session_start_time=to_timestamp(at(2, 4)),
            completion_time=to_timestamp(at(20, 11)),
            time_zone="UTC",
            attended_minutes=90,
            self_paced=self_paced,
        )

    assert views.training_completion(event(False), "UTC").at == at(2, 4)
    assert views.training_completion(event(True), "UTC").at == at(20, 11)
