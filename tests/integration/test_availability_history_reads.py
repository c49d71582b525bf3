"""GetStatusHistory's read of the transitions view, against the real store under test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from motor.motor_asyncio import AsyncIOMotorClient

from services.availability import domain
from services.availability.views import AvailabilityViews
from wfm_runtime import mongo
from wfm_runtime.timefmt import as_utc

pytestmark = pytest.mark.integration

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
END = START + timedelta(hours=8)


@pytest.fixture
async def views(mongo_url: str) -> AsyncIterator[AvailabilityViews]:
    client: mongo.Client = AsyncIOMotorClient(mongo_url, tz_aware=True)
    name = f"history_{uuid.uuid4().hex[:12]}"
    try:
        found = AvailabilityViews(client[name])
        await found.setup()
        yield found
    finally:
        await client.drop_database(name)
        client.close()


def _doc(
    agent_id: str, version: int, status: domain.Status, reason: str, at: datetime
) -> dict[str, Any]:
    return {
        "_id": f"{agent_id}/{version:012d}",
        "agent_id": agent_id,
        "version": version,
        "status": status.value,
        "reason_code": reason,
        "at": at,
    }


def _a_long_past(agent_id: str) -> list[dict[str, Any]]:
    """Weeks of changes before the range, some inside it (two at exactly START, two in one
    millisecond) and some after it; `at` never goes back, as decide_set_status guarantees."""
    statuses = [domain.Status.AVAILABLE, domain.Status.ON_CONTACT, domain.Status.BREAK]
    moments = [START - timedelta(days=20) + timedelta(minutes=37 * i) for i in range(760)]
    moments = [m for m in moments if m < START - timedelta(minutes=5)]
    moments += [START - timedelta(minutes=5)] * 2  # the last two before START share an instant
    moments += [START, START, START + timedelta(hours=1), START + timedelta(hours=1, seconds=1)]
    moments += [START + timedelta(hours=2)] * 2 + [END - timedelta(milliseconds=1), END]
    moments += [END + timedelta(hours=h) for h in range(1, 30)]
    return [
        _doc(agent_id, v, statuses[v % 3], "VIP" if v % 7 == 0 else "", at)
        for v, at in enumerate(moments, start=1)
    ]


async def _whole_past_before(
    views: AvailabilityViews, agent_id: str, end: datetime
) -> list[domain.Transition]:
    """The read GetStatusHistory used to make: every transition of the agent before `end`."""
    docs = await mongo.find_all(
        views.transitions, {"agent_id": agent_id, "at": {"$lt": end}}, sort=[("version", 1)]
    )
    return [
        domain.Transition(int(d["version"]), domain.Status(d["status"]), d["reason_code"], d["at"])
        for d in docs
    ]


async def test_history_reads_only_the_opening_transition_and_the_range(
    views: AvailabilityViews,
) -> None:
    past = _a_long_past("a1")
    other = [_doc("a2", d["version"], domain.Status.LUNCH, "", d["at"]) for d in past]
    await mongo.insert_new(views.transitions, past + other)

    read = await views.transitions_of("a1", START, END)

    opening = max((d for d in past if d["at"] < START), key=lambda d: d["version"])
    inside = [d for d in past if START <= d["at"] < END]
    assert [t.version for t in read] == [opening["version"]] + [d["version"] for d in inside]
    assert len(read) == 8 < len(past) // 50
    assert all(t.at == as_utc(d["at"]) for t, d in zip(read, [opening, *inside], strict=True))


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (START, END),
        (START - timedelta(minutes=5), END),  # starts at the two changes of one instant
        (START + timedelta(minutes=30), START + timedelta(hours=2)),  # ends at exactly a change
        (START - timedelta(days=30), START - timedelta(days=21)),  # before the first change
        (END + timedelta(days=5), END + timedelta(days=6)),  # after the last one
    ],
)
async def test_history_is_what_the_whole_past_gave(
    views: AvailabilityViews, start: datetime, end: datetime
) -> None:
    await mongo.insert_new(views.transitions, _a_long_past("a1"))
    for now in (end + timedelta(days=1), start + (end - start) / 2):
        assert domain.build_history(
            await views.transitions_of("a1", start, end), start, end, now
        ) == domain.build_history(await _whole_past_before(views, "a1", end), start, end, now)


async def test_transitions_are_indexed_by_agent_and_instant(views: AvailabilityViews) -> None:
    indexes = await views.transitions.index_information()
    assert indexes["agent_id_at_version"]["key"] == [("agent_id", 1), ("at", 1), ("version", 1)]


async def test_setup_drops_the_index_history_no_longer_uses(views: AvailabilityViews) -> None:
    # A view created by an earlier release has the old (agent_id, version) index.
    await mongo.ensure_indexes(views.transitions, (["agent_id", "version"], False))
    assert "agent_id_version" in await views.transitions.index_information()

    await views.setup()
    await views.setup()  # idempotent: a second start, with it gone, is fine

    indexes = await views.transitions.index_information()
    assert "agent_id_version" not in indexes
    assert "agent_id_at_version" in indexes
