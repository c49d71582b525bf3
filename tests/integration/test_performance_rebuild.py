"""Late, repeated and out-of-order input recompute the affected days; a rebuild gives the same."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from wfm.events.v1.envelope_pb2 import EventEnvelope
from wfm.scheduling.v1 import directory_service_pb2
from wfm.scheduling.v1 import events_pb2 as scheduling_events

from services.availability import domain as availability
from services.availability import store as availability_store
from services.performance import domain, metrics, store, views
from tests.conftest import System
from tests.integration.test_performance_api import _case, _limits, _record, _team, _today_period
from wfm_runtime import mongo
from wfm_runtime.events import new_envelope
from wfm_runtime.testing import eventually
from wfm_runtime.timefmt import utc_now

pytestmark = pytest.mark.integration

PUNE = "Asia/Kolkata"
ROSTER = date(2026, 11, 23)


def at(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 11, day, hh, mm, tzinfo=UTC)


def _status_events(agent_id: str) -> list[EventEnvelope]:
    """A night of status changes (Pune agent, US night shift of 2026-11-23)."""
    steps = [
        (at(23, 13, 10), "AVAILABLE"),
        (at(23, 14), "ON_CONTACT"),
        (at(23, 15), "AVAILABLE"),
        (at(23, 17), "BREAK"),
        (at(23, 17, 25), "AVAILABLE"),
        (at(23, 20), "ON_CONTACT"),  # 01:30 IST: after local midnight, still the 23rd
        (at(23, 20, 30), "AVAILABLE"),
        (at(23, 22), "OFFLINE"),
    ]
    events = []
    previous = availability.Status.OFFLINE
    for version, (moment, status) in enumerate(steps, start=1):
        change = availability.StatusChanged(
            agent_id, "teams/night", availability.Status(status), "", moment, previous, None, ""
        )
        previous = change.status
        events.append(
            new_envelope(
                producer="availability",
                aggregate_type=availability_store.AGGREGATE,
                aggregate_id=agent_id,
                version=version,
                payload=availability_store.encode(change),
                occurred_at=moment,
            )
        )
    return events


def _case_events(agent_id: str) -> list[EventEnvelope]:
    events = []
    for i, resolved in enumerate([at(23, 14, 30), at(23, 20, 15), at(23, 23)]):
        record = domain.CaseRecord(
            f"{agent_id}-c{i}", agent_id, "CHAT", resolved - timedelta(minutes=10), resolved,
            200_000, 0, 60_000, i != 1, 3_600_000, i != 2, 4, None, 1,
        )  # fmt: skip
        events.append(_case_event(record, None))
    # A correction of case 0, resolved a day later (moves it to another roster date).
    first = domain.CaseRecord(
        f"{agent_id}-c0", agent_id, "CHAT", at(24, 14), at(24, 14, 30),
        100_000, 0, 0, True, None, False, 2, None, 2,
    )  # fmt: skip
    events.append(_case_event(first, at(23, 14, 30)))
    return events


def _case_event(record: domain.CaseRecord, previous: datetime | None) -> EventEnvelope:
    event = domain.CaseRecorded(record, record.agent_id if previous else "", previous)
    return new_envelope(
        producer="performance",
        aggregate_type=store.CASE,
        aggregate_id=record.case_id,
        version=record.version,
        payload=store.encode_case(event, record.version),
        occurred_at=record.resolved,
    )


async def _book(mongo_url: str) -> tuple[views.DayBook, store.Repository]:
    client = mongo.connect(mongo_url, "test-performance")
    repo = store.Repository(client[f"t{uuid.uuid4().hex[:10]}_performance_views"])
    directory = views.Directory(repo)
    for agent_id in ("p1", "p2"):
        directory.agents[agent_id] = views.AgentEntry(agent_id, "night", PUNE, 1)
    return views.DayBook(repo, directory), repo


async def _figures(repo: store.Repository) -> dict[str, Any]:
    docs = map(store.unpack_doc, await mongo.find_all(repo.team_days, {}))
    # Day documents only (`date`); the month roll-ups (`month`) are derived from them.
    return {d["_id"]: dict(d["agents"]) for d in docs if d.get("agents") and "date" in d}


async def _tails(repo: store.Repository) -> dict[str, Any]:
    """Each day document's tails (what of a day lies after its last status change)."""
    docs = map(store.unpack_doc, await mongo.find_all(repo.team_days, {}))
    return {d["_id"]: d["tails"] for d in docs if d.get("tails")}


async def _feed(book: views.DayBook, batches: list[list[EventEnvelope]]) -> None:
    status, cases = views.StatusProjection(book), views.CaseProjection(book)
    for batch in batches:  # small batches: each leaves the consumer caught up
        await status.apply([e for e in batch if e.producer == "availability"])
        await status.caught_up()
        await cases.apply([e for e in batch if e.producer == "performance"])
        await cases.caught_up()


async def test_shuffled_repeated_input_gives_the_figures_of_the_ordered_input(
    mongo_url: str,
) -> None:
    events = [e for a in ("p1", "p2") for e in (*_status_events(a), *_case_events(a))]
    ordered, ordered_repo = await _book(mongo_url)
    await _feed(ordered, [events])

    shuffled, shuffled_repo = await _book(mongo_url)
    rng = random.Random(7)
    noisy = events + rng.sample(events, 6)  # redeliveries
    rng.shuffle(noisy)
    await _feed(shuffled, [noisy[i : i + 3] for i in range(0, len(noisy), 3)])

    expected = await _figures(ordered_repo)
    assert expected == await _figures(shuffled_repo)
    assert await _tails(ordered_repo) == await _tails(shuffled_repo)
    # And the stored figures are the pure rule over every input stored for the day.
    inputs = await ordered.inputs_for("p1", [ROSTER])
    assert expected[f"night|{ROSTER}"]["p1"] == store.pack_sums(metrics.day_sums(inputs, ROSTER))
    day = store.unpack_sums(expected[f"night|{ROSTER}"]["p1"])
    # No shift is stored, so days are the Pune calendar: the 23rd ends at 18:30 UTC, and
    # every case (c1 and c2 after local midnight, c0 after its correction) is on the 24th.
    assert day["logged_in_ms"] == (18 * 60 + 30 - (13 * 60 + 10)) * 60_000
    assert day["cases"] == 0
    next_day = store.unpack_sums(expected[f"night|{ROSTER + timedelta(days=1)}"]["p1"])
    assert next_day["cases"] == 3
    assert next_day["csat_sum"] == 2 + 4 + 4  # the corrected c0 scores 2


async def test_a_shift_stored_after_the_day_was_computed_recomputes_it(mongo_url: str) -> None:
    book, repo = await _book(mongo_url)
    await _feed(book, [_status_events("p1")])
    before = store.unpack_sums((await _figures(repo))[f"night|{ROSTER}"]["p1"])
    assert before["scheduled_ms"] == 0 and before["late_logins"] == 0

    shift = metrics.Shift("s1", ROSTER, at(23, 13), at(23, 22))
    async with book.lock:
        touched = await book.record_schedule_for_day("p1", ROSTER, [shift])
        touched |= await book.record_training_completion(
            "p1", metrics.TrainingCompletion("t1", at(23, 14), PUNE, 90, technical=True)
        )
        await book.recompute(touched)
        await book.flush()
    after = store.unpack_sums((await _figures(repo))[f"night|{ROSTER}"]["p1"])
    assert after["scheduled_ms"] == 9 * 3_600_000
    assert after["late_logins"] == 1
    assert after["absence_ms"] == 10 * 60_000
    assert after["technical_trainings"] == 1

    # The roster changes again: the shift moves an hour later, so the log-in is early.
    later = metrics.Shift("s1", ROSTER, at(23, 14), at(23, 22))
    async with book.lock:
        await book.recompute(await book.record_schedule_for_day("p1", ROSTER, [later]))
        await book.flush()
    moved = store.unpack_sums((await _figures(repo))[f"night|{ROSTER}"]["p1"])
    assert (moved["scheduled_ms"], moved["late_logins"], moved["absence_ms"]) == (
        8 * 3_600_000,
        0,
        0,
    )


async def _training_minutes(repo: store.Repository) -> tuple[int, int]:
    """p1's training minutes filed on the 23rd and on the 24th."""
    figures = await _figures(repo)
    days = [figures.get(f"night|{d}", {}) for d in (ROSTER, ROSTER + timedelta(days=1))]
    first, second = (store.unpack_sums(d.get("p1", ""))["training_minutes"] for d in days)
    return first, second


async def test_a_class_follows_the_shift_that_covers_it_when_the_roster_changes(
    mongo_url: str,
) -> None:
    """A class at 01:00 IST on the 24th counts on the 24th until the 23rd's night shift is
    published around it, then on the 23rd; back on the 24th when the shift is removed."""
    book, repo = await _book(mongo_url)

    async def settle(touched: set[views.AgentDay]) -> None:
        async with book.lock:
            await book.recompute(touched)
            await book.flush()

    class_at_one = metrics.TrainingCompletion("t1", at(23, 19, 30), PUNE, 90, technical=True)
    async with book.lock:
        touched = await book.record_training_completion("p1", class_at_one)
    await settle(touched)
    assert await _training_minutes(repo) == (0, 90)

    shift = metrics.Shift("s1", ROSTER, at(23, 13), at(23, 22))
    async with book.lock:
        touched = await book.record_schedule_for_day("p1", ROSTER, [shift])
    await settle(touched)
    assert await _training_minutes(repo) == (90, 0)

    async with book.lock:
        touched = await book.record_schedule_for_day("p1", ROSTER, [])
    await settle(touched)
    assert await _training_minutes(repo) == (0, 90)


async def test_a_completion_stored_with_its_date_is_refiled_when_recorded_again(
    mongo_url: str,
) -> None:
    """Stored before the instant was kept, the 01:00 IST class counts on the date it was
    filed on (the 24th), even inside the 23rd's night shift; its event delivered again
    files it by its instant: on the 23rd, and no longer on the 24th."""
    book, repo = await _book(mongo_url)
    next_day = ROSTER + timedelta(days=1)
    shift = metrics.Shift("s1", ROSTER, at(23, 13), at(23, 22))
    noon = metrics.local_midnight(next_day, PUNE) + timedelta(hours=12)  # where it was filed
    async with book.lock:
        touched = await book.record_schedule_for_day("p1", ROSTER, [shift])
        doc = await book._doc(views.TRAINING, store.bucket_id("p1", noon))
        doc["trainings"] = {
            "t1": {"roster_date": next_day.isoformat(), "minutes": 90, "technical": True}
        }
        await book.recompute(touched | {("p1", next_day)})
        await book.flush()

    assert await _training_minutes(repo) == (0, 90)
    again = metrics.TrainingCompletion("t1", at(23, 19, 30), PUNE, 90, technical=True)
    async with book.lock:
        await book.recompute(await book.record_training_completion("p1", again))
        await book.flush()
    assert await _training_minutes(repo) == (90, 0)


async def test_a_full_rebuild_from_the_streams_gives_the_same_figures(
    perf_system: System,
) -> None:
    system, perf = perf_system, perf_system.perf
    assert perf is not None and system.performance is not None
    await _team(system, "night", ["a1", "a2"])
    _, resolved = _today_period()
    for i in range(6):
        agent = "a1" if i % 2 else "a2"
        await perf.RecordCase(_record(f"r{i}", _case(agent, resolved, sla_met=i != 3)))
    repo = system.performance.repo

    incremental = await eventually(
        lambda: _figures(repo),
        lambda f: sum(store.unpack_sums(p)["cases"] for d in f.values() for p in d.values()) == 6,
    )
    incremental_tails = await _tails(repo)
    await system.performance.runtime.rebuild_views()
    rebuilt = await eventually(lambda: _figures(repo), lambda f: f == incremental)
    assert rebuilt == incremental
    assert await _tails(repo) == incremental_tails
    # The status stream is empty here: no batch says it caught up, the rebuild's end does.
    assert system.performance.watch.held == frozenset()


async def test_the_month_roll_up_equals_the_sum_of_its_days(mongo_url: str) -> None:
    book, repo = await _book(mongo_url)
    events = [e for a in ("p1", "p2") for e in (*_status_events(a), *_case_events(a))]
    await _feed(book, [events[:7], events[7:]])
    # A whole-month period reads the roll-up; 1-29 November reads day documents.
    month = domain.Period(date(2026, 11, 1), date(2026, 11, 30))
    days = domain.Period(date(2026, 11, 1), date(2026, 11, 29))
    from_roll_up = await views.team_period_sums(repo, "night", month, utc_now())
    from_days = await views.team_period_sums(repo, "night", days, utc_now())
    assert set(from_roll_up) == {"p1", "p2"}
    assert from_roll_up == from_days
    assert from_roll_up["p1"]["cases"] == 3
    assert await views.agent_period_sums(repo, "night", "p1", month, utc_now()) == from_days["p1"]


async def test_reused_day_parts_equal_the_full_rule_after_interleaved_batches(
    mongo_url: str,
) -> None:
    """A batch of one input kind keeps the other part of a day from the last recompute: every
    stored agent-day must still be the full rule over every input stored for it."""
    book, repo = await _book(mongo_url)
    events = [e for a in ("p1", "p2") for e in (*_status_events(a), *_case_events(a))]
    events.sort(key=lambda e: e.occurred_at.ToDatetime())
    await _feed(book, [events[i : i + 2] for i in range(0, len(events), 2)])

    stored = await _figures(repo)
    checked = 0
    for doc_id, rows in stored.items():
        day = date.fromisoformat(doc_id.split("|")[1])
        for agent_id, packed in rows.items():
            inputs = await book.inputs_for(agent_id, [day])
            assert packed == store.pack_sums(metrics.day_sums(inputs, day)), (agent_id, day)
            checked += 1
    assert checked >= 4  # both agents, the 23rd and the 24th


async def test_days_left_pending_by_a_stopped_process_are_recomputed_at_start(
    mongo_url: str,
) -> None:
    """A consumer catching up stores inputs and marks the days pending (figures come later);
    the process stops before computing them: a new process computes them at start, and they
    equal the figures of a consumer that computed them at once."""
    events = [e for a in ("p1", "p2") for e in (*_status_events(a), *_case_events(a))]
    at_once, at_once_repo = await _book(mongo_url)
    await _feed(at_once, [events])

    stopped, repo = await _book(mongo_url)
    status, cases = views.StatusProjection(stopped), views.CaseProjection(stopped)
    await status.apply([e for e in events if e.producer == "availability"])
    await cases.apply([e for e in events if e.producer == "performance"])  # no caught_up
    assert await _figures(repo) == {}
    marks, days = await repo.pending()
    assert len(marks) == 2 and ("p1", ROSTER) in days

    restarted = views.DayBook(repo, stopped._directory)
    await restarted.recover()
    assert await _figures(repo) == await _figures(at_once_repo) != {}
    assert await repo.pending() == ([], set())


def _moved(agent_id: str, team: str, version: int) -> EventEnvelope:
    agent = directory_service_pb2.Agent(
        name=f"agents/{agent_id}", team=f"teams/{team}", time_zone=PUNE
    )
    return new_envelope(
        producer="scheduling",
        aggregate_type="agent",
        aggregate_id=agent_id,
        version=version,
        payload=scheduling_events.AgentUpdated(agent=agent, changed_fields=["team"]),
        occurred_at=at(25, 9),
    )


async def test_an_agent_who_changes_team_takes_its_days_along(mongo_url: str) -> None:
    """Figures follow the agent's current team: its days leave the old team's day and month
    documents for the new team's, and a rebuild that knows only the new team agrees."""
    events = [e for a in ("p1", "p2") for e in (*_status_events(a), *_case_events(a))]
    book, repo = await _book(mongo_url)
    await _feed(book, [events])
    before = await _figures(repo)
    p1_days = {k.rsplit("|", 1)[1]: v["p1"] for k, v in before.items() if "p1" in v}
    assert len(p1_days) >= 2  # the 23rd and the 24th
    month = domain.Period(date(2026, 11, 1), date(2026, 11, 30))
    p1_month = (await views.team_period_sums(repo, "night", month, utc_now()))["p1"]

    directory = views.DirectoryProjection(repo, book._directory, book)
    await directory.apply([_moved("p1", "day", 2)])
    await directory.apply([_moved("p1", "day", 2)])  # a redelivery changes nothing

    after = await _figures(repo)
    assert all("p1" not in rows for k, rows in after.items() if k.startswith("night|"))
    assert {k.rsplit("|", 1)[1]: v["p1"] for k, v in after.items() if "p1" in v} == p1_days
    assert all(after[k]["p2"] == v["p2"] for k, v in before.items() if "p2" in v)
    assert (await views.team_period_sums(repo, "day", month, utc_now()))["p1"] == p1_month
    assert "p1" not in await views.team_period_sums(repo, "night", month, utc_now())
    assert await repo.pending() == ([], set())

    rebuilt, rebuilt_repo = await _book(mongo_url)
    rebuilt._directory.agents["p1"] = views.AgentEntry("p1", "day", PUNE, 2)
    await _feed(rebuilt, [events])
    assert await _figures(rebuilt_repo) == after


async def test_no_red_flag_from_inputs_replayed_in_part(perf_system: System) -> None:
    """A rebuild replays each input kind on its own: the night's shift can be back before its
    statuses, and then p1 reads as absent. No flag may come of that; once the statuses are
    back, the check runs on the whole night, and only p2, who never logged in, is flagged."""
    system, perf = perf_system, perf_system.perf
    assert perf is not None and system.performance is not None
    await _team(system, "night", ["p1", "p2"])
    await _limits(perf, "night", max_absenteeism_percent=5)
    book, events = system.performance.book, system.performance.runtime.store
    status, schedule = views.StatusProjection(book), views.ScheduleProjection(book)
    await status.reset()  # as a rebuild does: the statuses are gone until replayed

    night = metrics.Shift("s1", ROSTER, at(23, 13), at(23, 22))
    async with book.batch():
        touched = set()
        for agent_id in ("p1", "p2"):
            touched |= await book.record_schedule_for_day(agent_id, ROSTER, [night])
        await book.settle(touched)
    await schedule.caught_up()  # the schedule is back; p1 is absent in the figures
    flag = "{}--2026-11--absenteeism_percent"
    assert await events.get("red_flag", flag.format("p1"), 1) is None
    assert await events.get("red_flag", flag.format("p2"), 1) is None

    await status.apply(_status_events("p1"))
    await status.caught_up()  # every kind is back: the waiting check runs
    assert await events.get("red_flag", flag.format("p1"), 1) is None  # 10 of 540 min late
    raised = await events.get("red_flag", flag.format("p2"), 1)
    assert raised is not None and raised.event_type == "wfm.performance.v1.RedFlagRaised"
