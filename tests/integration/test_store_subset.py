"""The store guarantees the design relies on, checked against the real server under test.

Runs against FerretDB v1.24 (the default `mongo_url` fixture) or MongoDB 7 (`MONGO_URL`). Each
test asserts only what is guaranteed for the detected server, so it is never timing dependent;
measured FerretDB behaviour that varies from run to run (double wins of a conditional update,
lost `$inc`s) is printed and recorded as a test property. docs/ferretdb.md explains the results.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson.decimal128 import Decimal128
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
)
from wfm.availability.v1 import events_pb2 as availability_events
from wfm.events.v1.envelope_pb2 import EventEnvelope

from wfm_runtime import mongo
from wfm_runtime.events import new_envelope
from wfm_runtime.eventstore import Claim, EventStore
from wfm_runtime.timefmt import utc_now

pytestmark = pytest.mark.integration

CONTENDERS = 20
RACE_ROUNDS = 200
INCREMENTS = 50
NOT_IMPLEMENTED = 238  # FerretDB's error code for a command, stage or option it lacks
FAILED_TO_PARSE = 9


@pytest.fixture
async def client(mongo_url: str) -> AsyncIterator[mongo.Client]:
    motor_client: mongo.Client = AsyncIOMotorClient(
        mongo_url, tz_aware=True, serverSelectionTimeoutMS=5000
    )
    try:
        yield motor_client
    finally:
        motor_client.close()


@pytest.fixture
async def db(client: mongo.Client) -> AsyncIterator[mongo.Database]:
    name = f"subset_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)


@pytest.fixture
async def ferretdb(client: mongo.Client) -> bool:
    return await mongo.is_ferretdb(client)


def _skip_on_mongodb(ferretdb: bool) -> None:
    if not ferretdb:
        pytest.skip("supported by MongoDB 7: this test records a FerretDB v1 limitation")


async def _outcomes(*coros: Any) -> list[BaseException | Any]:
    return list(await asyncio.gather(*coros, return_exceptions=True))


# --- the commit point: unique inserts are atomic -----------------------------------------


async def test_concurrent_inserts_of_one_id_have_exactly_one_winner(db: mongo.Database) -> None:
    coll = db["items"]
    results = await _outcomes(
        *(coll.insert_one({"_id": "same", "writer": i}) for i in range(CONTENDERS))
    )
    winners = [i for i, r in enumerate(results) if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1
    assert len(losers) == CONTENDERS - 1
    assert all(isinstance(e, DuplicateKeyError) for e in losers), losers
    assert all(e.code == mongo.DUPLICATE_KEY for e in losers if isinstance(e, DuplicateKeyError))
    assert await coll.count_documents({}) == 1
    stored = await coll.find_one({"_id": "same"})
    assert stored is not None
    assert stored["writer"] == winners[0]  # the stored document is the winner's


async def test_concurrent_inserts_on_a_compound_unique_index_have_one_winner(
    db: mongo.Database,
) -> None:
    coll = db["shifts"]
    await mongo.ensure_indexes(coll, (["agent_id", "day"], True))
    results = await _outcomes(
        *(
            coll.insert_one({"_id": uuid.uuid4().hex, "agent_id": "a1", "day": "2025-03-01"})
            for _ in range(CONTENDERS)
        )
    )
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(results) - len(losers) == 1
    assert all(isinstance(e, DuplicateKeyError) for e in losers), losers
    # Another value of the key is free; the index holds both fields, not just one of them.
    await coll.insert_one({"_id": uuid.uuid4().hex, "agent_id": "a1", "day": "2025-03-02"})
    await coll.insert_one({"_id": uuid.uuid4().hex, "agent_id": "a2", "day": "2025-03-01"})
    assert await coll.count_documents({}) == 3


def _status_envelope(aggregate_id: str, version: int, reason: str) -> EventEnvelope:
    return new_envelope(
        producer="availability",
        aggregate_type="agent-availability",
        aggregate_id=aggregate_id,
        version=version,
        payload=availability_events.StatusChanged(reason_code=reason),
        occurred_at=utc_now(),
        idempotency_key=f"key-{reason}",
    )


async def test_event_store_append_has_one_winner_per_version(db: mongo.Database) -> None:
    store = EventStore(db)
    await store.setup()
    for version in range(1, 6):
        contenders = [_status_envelope("agent-1", version, f"r{version}-{i}") for i in range(3)]
        results = await asyncio.gather(*(store.append(e) for e in contenders))
        assert sorted(results) == [False, False, True]
        winner = contenders[results.index(True)]
        stored = await store.get("agent-availability", "agent-1", version)
        assert stored is not None
        assert stored.event_id == winner.event_id
        assert await store.is_stored(winner)
        assert not any([await store.is_stored(e) for e in contenders if e is not winner])
    assert await db["events"].count_documents({}) == 5


async def test_events_since_gives_every_later_event_in_version_order_per_aggregate(
    db: mongo.Database,
) -> None:
    store = EventStore(db)
    await store.setup()
    start = datetime(2026, 11, 23, 12, tzinfo=UTC)
    for n in range(6):  # b's versions are stored newest first, at the same instants as a's
        for agent, version in (("agent-a", n + 1), ("agent-b", 6 - n)):
            envelope = _status_envelope(agent, version, f"{agent}-{version}")
            envelope.occurred_at.FromDatetime(start + timedelta(minutes=n))
            assert await store.append(envelope)
    since = await store.events_since(start + timedelta(minutes=2))
    assert [(e.aggregate_id, e.aggregate_version) for e in since] == [
        *(("agent-a", v) for v in range(3, 7)),
        *(("agent-b", v) for v in range(1, 5)),
    ]


def _keyed_envelope(aggregate_id: str, version: int, key: str) -> EventEnvelope:
    envelope = _status_envelope(aggregate_id, version, f"{aggregate_id}-{version}")
    envelope.idempotency_key = key
    return envelope


async def test_an_idempotency_key_is_spent_once_and_its_claim_is_the_first_use(
    db: mongo.Database,
) -> None:
    store = EventStore(db)
    await store.setup()
    first = _keyed_envelope("agent-1", 1, "k1")
    assert await store.append(first, "fingerprint-a")
    # The same key for a later version, or for a no-change record, is refused.
    assert not await store.append(_keyed_envelope("agent-1", 2, "k1"), "fingerprint-b")
    assert not await store.record_noop("agent-availability", "k1", "fingerprint-b", "agent-1", 1)
    assert await store.get("agent-availability", "agent-1", 2) is None
    claim = await store.claim_of("agent-availability", "k1")
    assert claim is not None and claim.envelope is not None
    assert (claim.fingerprint, claim.aggregate_id, claim.version) == ("fingerprint-a", "agent-1", 1)
    assert claim.envelope.event_id == first.event_id
    # Keys belong to an aggregate type: another type may use the same one.
    other = _keyed_envelope("agent-1", 1, "k1")
    other.aggregate_type = "agent-schedule"
    assert await store.append(other, "fingerprint-c")
    # Concurrent first uses of a fresh key, on different aggregates: exactly one wins.
    contenders = [_keyed_envelope(f"agent-{i}", 1, "k2") for i in range(2, 12)]
    results = await asyncio.gather(*(store.append(e, f"fp-{i}") for i, e in enumerate(contenders)))
    assert results.count(True) == 1
    winner = results.index(True)
    claim = await store.claim_of("agent-availability", "k2")
    assert claim is not None and claim.envelope is not None
    assert claim.envelope.event_id == contenders[winner].event_id
    assert claim.fingerprint == f"fp-{winner}"
    assert await store.claim_of("agent-availability", "never-used") is None


async def test_a_no_change_record_spends_the_key_without_an_event(db: mongo.Database) -> None:
    store = EventStore(db)
    await store.setup()
    assert await store.record_noop("agent-availability", "k3", "fp", "agent-1", 4)
    assert not await store.record_noop("agent-availability", "k3", "fp", "agent-1", 4)
    assert not await store.append(_keyed_envelope("agent-1", 5, "k3"), "fp")
    assert await store.get("agent-availability", "agent-1", 5) is None
    claim = await store.claim_of("agent-availability", "k3")
    assert claim == Claim("fp", "agent-1", 4, None)
    # It is no event: a per-aggregate read of events does not see it.
    assert await db["events"].count_documents({"aggregate_id": "agent-1"}) == 0


# --- what is NOT atomic on FerretDB ----------------------------------------------------------


async def test_conditional_update_race(
    db: mongo.Database, ferretdb: bool, record_property: Any
) -> None:
    """Two `update_one({_id, version: 5}, {$set: {version: 6}})` at once.

    MongoDB 7 matches and modifies atomically: at most one reports a modification. FerretDB v1
    reads, filters in Go and writes back with no lock, so both may report modified_count == 1.
    """
    coll = db["race"]
    double_wins = 0
    for _ in range(RACE_ROUNDS):
        await coll.replace_one({"_id": "x"}, {"_id": "x", "version": 5}, upsert=True)
        first, second = await asyncio.gather(
            *(
                coll.update_one({"_id": "x", "version": 5}, {"$set": {"version": 6, "by": name}})
                for name in ("a", "b")
            )
        )
        if first.modified_count == 1 and second.modified_count == 1:
            double_wins += 1
        assert first.modified_count + second.modified_count >= 1
        final = await coll.find_one({"_id": "x"})
        assert final is not None
        assert final["version"] == 6
        assert final["by"] in ("a", "b")
    record_property("conditional_update_double_wins", double_wins)
    server = "FerretDB" if ferretdb else "MongoDB"
    print(f"\n{server}: both conditional updates won in {double_wins}/{RACE_ROUNDS} rounds")
    if not ferretdb:
        assert double_wins == 0


async def test_concurrent_inc(db: mongo.Database, ferretdb: bool, record_property: Any) -> None:
    coll = db["counters"]
    await coll.insert_one({"_id": "n", "n": 0})
    await asyncio.gather(
        *(coll.update_one({"_id": "n"}, {"$inc": {"n": 1}}) for _ in range(INCREMENTS))
    )
    doc = await coll.find_one({"_id": "n"})
    assert doc is not None
    lost = INCREMENTS - int(doc["n"])
    record_property("concurrent_inc_lost", lost)
    print(f"\n{'FerretDB' if ferretdb else 'MongoDB'}: {lost}/{INCREMENTS} concurrent $inc lost")
    if ferretdb:
        assert 1 <= doc["n"] <= INCREMENTS
    else:
        assert lost == 0


# --- what FerretDB v1 does not support, so our code never uses it ---------------------------


async def test_transactions_are_rejected(
    client: mongo.Client, db: mongo.Database, ferretdb: bool
) -> None:
    _skip_on_mongodb(ferretdb)  # and MongoDB needs a replica set for them anyway
    coll = db["txn"]
    async with await client.start_session() as session:
        session.start_transaction()
        # A read inside the "transaction" is accepted and runs outside any transaction...
        assert await coll.find_one({"_id": 1}, session=session) is None
        # ...but the first write is refused (FailedToParse: unknown field autocommit).
        with pytest.raises(OperationFailure) as failure:
            await coll.insert_one({"_id": 1}, session=session)
        assert failure.value.code == FAILED_TO_PARSE
        await session.abort_transaction()
    async with await client.start_session() as session:
        session.start_transaction()
        with pytest.raises(OperationFailure):  # also when the write comes first
            await coll.insert_one({"_id": 2}, session=session)
    assert await coll.count_documents({}) == 0


async def test_change_streams_are_not_implemented(db: mongo.Database, ferretdb: bool) -> None:
    _skip_on_mongodb(ferretdb)
    with pytest.raises(OperationFailure) as failure:
        async with db["events"].watch() as stream:
            await stream.try_next()
    assert failure.value.code == NOT_IMPLEMENTED


@pytest.mark.parametrize("accumulator", ["$avg", "$min", "$max", "$push", "$first"])
async def test_group_accumulators_other_than_sum_and_count_fail(
    db: mongo.Database, ferretdb: bool, accumulator: str
) -> None:
    _skip_on_mongodb(ferretdb)
    coll = db["minutes"]
    await coll.insert_many([{"_id": i, "team": "t", "minutes": i * 10} for i in range(1, 4)])
    # The supported ones work (one per $group: see the next test): the positive control.
    total = await coll.aggregate(
        [{"$group": {"_id": "$team", "total": {"$sum": "$minutes"}}}]
    ).to_list(None)
    assert total == [{"_id": "t", "total": 60}]
    count = await coll.aggregate([{"$group": {"_id": "$team", "n": {"$count": {}}}}]).to_list(None)
    assert count == [{"_id": "t", "n": 3}]
    with pytest.raises(OperationFailure) as failure:
        await coll.aggregate(
            [{"$group": {"_id": "$team", "x": {accumulator: "$minutes"}}}]
        ).to_list(None)
    assert failure.value.code == NOT_IMPLEMENTED


async def test_lookup_stage_is_not_implemented(db: mongo.Database, ferretdb: bool) -> None:
    _skip_on_mongodb(ferretdb)
    await db["a"].insert_one({"_id": 1, "k": 1})
    lookup = {"$lookup": {"from": "b", "localField": "k", "foreignField": "k", "as": "j"}}
    with pytest.raises(OperationFailure) as failure:
        await db["a"].aggregate([lookup]).to_list(None)
    assert failure.value.code == NOT_IMPLEMENTED


@pytest.mark.parametrize(
    "options",
    [{"expireAfterSeconds": 3600}, {"partialFilterExpression": {"at": {"$exists": True}}}],
    ids=["ttl", "partial"],
)
async def test_ttl_and_partial_indexes_are_rejected(
    db: mongo.Database, ferretdb: bool, options: dict[str, Any]
) -> None:
    _skip_on_mongodb(ferretdb)
    coll = db["expiring"]
    await coll.insert_one({"_id": 1, "at": utc_now()})
    with pytest.raises(OperationFailure) as failure:
        await coll.create_index("at", **options)
    assert failure.value.code == NOT_IMPLEMENTED
    assert set(await coll.index_information()) == {"_id_"}


async def test_unique_index_and_missing_fields(db: mongo.Database, ferretdb: bool) -> None:
    """MongoDB indexes a missing field as null; FerretDB's SQLite index skips it (SQL NULL)."""
    coll = db["unique_missing"]
    await mongo.ensure_indexes(coll, (["u"], True), (["a", "b"], True))
    await coll.insert_one({"_id": 1, "a": 1})
    second = {"_id": 2, "a": 1}  # misses `u`, and `b` of (a, b), like the first
    if ferretdb:
        await coll.insert_one(second)
        assert await coll.count_documents({}) == 2
    else:
        with pytest.raises(DuplicateKeyError):
            await coll.insert_one(second)
    # Explicit nulls, and equal numbers of different types, collide on both.
    other = db["unique_null"]
    await mongo.ensure_indexes(other, (["u"], True))
    await other.insert_one({"_id": 1, "u": None})
    with pytest.raises(DuplicateKeyError):
        await other.insert_one({"_id": 2, "u": None})
    await other.insert_one({"_id": 3, "u": 1})
    with pytest.raises(DuplicateKeyError):
        await other.insert_one({"_id": 4, "u": 1.0})


async def test_sparse_is_silently_ignored(db: mongo.Database, ferretdb: bool) -> None:
    _skip_on_mongodb(ferretdb)
    coll = db["sparse"]
    await coll.create_index("s", sparse=True)
    info = await coll.index_information()
    assert "sparse" not in info["s_1"]


async def test_ne_on_an_indexed_field_also_matches_documents_missing_it(
    db: mongo.Database,
) -> None:
    """`{f: {$ne: false}}` finds `true` and documents without `f` (written before the field was
    kept), not `false`: the training reconciler reads learners this way (views.BOOKED)."""
    coll = db["flagged"]
    await mongo.ensure_indexes(coll, (["f"], False))
    await coll.insert_many([{"_id": "yes", "f": True}, {"_id": "no", "f": False}, {"_id": "old"}])
    got = await mongo.find_all(coll, {"f": {"$ne": False}}, sort=[("_id", 1)])
    assert [doc["_id"] for doc in got] == ["old", "yes"]


async def test_group_with_several_accumulators_fills_only_the_first(
    db: mongo.Database, ferretdb: bool
) -> None:
    """FerretDB v1.24.2 bug: every accumulator after the first in one $group sees no documents.

    (stages/group.go shares one iterator between the accumulators.) Use one accumulator per
    $group, or compute the rest in Python.
    """
    coll = db["grouped"]
    await coll.insert_many([{"_id": i, "team": f"t{i % 2}", "m": i} for i in range(6)])
    pipeline: list[dict[str, Any]] = [
        {"$group": {"_id": "$team", "total": {"$sum": "$m"}, "n": {"$sum": 1}}},
        {"$sort": {"_id": 1}},
    ]
    got = await coll.aggregate(pipeline).to_list(None)
    if ferretdb:
        assert got == [{"_id": "t0", "total": 6, "n": 0}, {"_id": "t1", "total": 9, "n": 0}]
    else:
        assert got == [{"_id": "t0", "total": 6, "n": 3}, {"_id": "t1", "total": 9, "n": 3}]


async def test_duplicate_from_an_update_is_not_a_duplicate_key_error(
    db: mongo.Database, ferretdb: bool
) -> None:
    """Only inserts and upserts give 11000; catch DuplicateKeyError around those only."""
    coll = db["unique_names"]
    await mongo.ensure_indexes(coll, (["name"], True))
    await coll.insert_many([{"_id": 1, "name": "a"}, {"_id": 2, "name": "b"}])
    with pytest.raises(DuplicateKeyError):
        await coll.insert_one({"_id": 3, "name": "a"})
    with pytest.raises(DuplicateKeyError):
        await coll.update_one({"_id": 4}, {"$set": {"name": "a"}}, upsert=True)
    with pytest.raises(OperationFailure) as failure:
        await coll.update_one({"_id": 2}, {"$set": {"name": "a"}})
    if ferretdb:
        assert not isinstance(failure.value, DuplicateKeyError)
        assert failure.value.code == 1
    else:
        assert isinstance(failure.value, DuplicateKeyError)


async def test_projection_in_find_one_and_update_is_not_implemented(
    db: mongo.Database, ferretdb: bool
) -> None:
    _skip_on_mongodb(ferretdb)
    coll = db["fam"]
    await coll.insert_one({"_id": 1, "a": 1, "b": 2})
    with pytest.raises(OperationFailure) as failure:
        await coll.find_one_and_update({"_id": 1}, {"$set": {"a": 3}}, projection={"a": 1})
    assert failure.value.code == NOT_IMPLEMENTED
    # Without a projection it works (and projection in find() is fine).
    before = await coll.find_one_and_update({"_id": 1}, {"$set": {"a": 3}})
    assert before == {"_id": 1, "a": 1, "b": 2}
    assert await coll.find_one({"_id": 1}, {"a": 1}) == {"_id": 1, "a": 3}


async def test_decimal128_and_nan_drop_the_connection(mongo_url: str, ferretdb: bool) -> None:
    _skip_on_mongodb(ferretdb)
    # A client of its own: the server closes the connection instead of returning an error.
    own: mongo.Client = AsyncIOMotorClient(mongo_url, tz_aware=True, serverSelectionTimeoutMS=5000)
    name = f"subset_{uuid.uuid4().hex[:12]}"
    try:
        coll = own[name]["money"]
        for value in (Decimal128("12.50"), float("nan")):
            with pytest.raises(AutoReconnect):
                await coll.insert_one({"_id": str(value), "amount": value})
        with pytest.raises(PyMongoError):  # infinity is refused with a proper error
            await coll.insert_one({"_id": "inf", "amount": float("inf")})
        assert await coll.count_documents({}) == 0  # and the client reconnects
    finally:
        await own.drop_database(name)
        own.close()


# --- what works the same on both ---------------------------------------------------------------


async def test_datetimes_round_trip_as_utc_milliseconds(db: mongo.Database) -> None:
    coll = db["times"]
    sent = datetime(2025, 3, 30, 1, 59, 59, 123456, tzinfo=UTC)
    await coll.insert_one({"_id": 1, "at": sent})
    got = await coll.find_one({"_id": 1})
    assert got is not None
    back = got["at"]
    assert back.tzinfo is not None
    assert back.utcoffset() == timedelta(0)
    assert back == sent.replace(microsecond=123000)
    # utc_now() already drops the microseconds, so what we write is what we read.
    now = utc_now()
    await coll.insert_one({"_id": 2, "at": now})
    again = await coll.find_one({"_id": 2})
    assert again is not None
    assert again["at"] == now
    assert await coll.count_documents({"at": {"$gte": sent.replace(microsecond=123000)}}) == 2


async def test_single_document_update_operators(db: mongo.Database) -> None:
    coll = db["ops"]
    # Upsert: filter equality fields + $set + $setOnInsert make the new document.
    await coll.update_one(
        {"_id": "a1", "team_id": "night"},
        {"$set": {"status": "AVAILABLE"}, "$setOnInsert": {"created": 1}, "$inc": {"n": 1}},
        upsert=True,
    )
    assert await coll.find_one({"_id": "a1"}) == {
        "_id": "a1",
        "team_id": "night",
        "status": "AVAILABLE",
        "created": 1,
        "n": 1,
    }
    # Existing document: $setOnInsert is not applied; $inc adds; $addToSet keeps a set.
    result = await coll.update_one(
        {"_id": "a1"},
        {
            "$set": {"status": "BREAK"},
            "$setOnInsert": {"created": 2},
            "$inc": {"n": 2},
            "$addToSet": {"skills": {"$each": ["fr", "de", "fr"]}},
        },
        upsert=True,
    )
    assert (result.matched_count, result.modified_count, result.upserted_id) == (1, 1, None)
    await coll.update_one({"_id": "a1"}, {"$addToSet": {"skills": "de"}})
    await coll.update_one({"_id": "a1"}, {"$addToSet": {"skills": "es"}})
    doc = await coll.find_one({"_id": "a1"})
    assert doc == {
        "_id": "a1",
        "team_id": "night",
        "status": "BREAK",
        "created": 1,
        "n": 3,
        "skills": ["fr", "de", "es"],
    }


async def test_unordered_insert_many_with_a_duplicate_inserts_the_rest(
    db: mongo.Database,
) -> None:
    coll = db["transitions"]
    await coll.insert_one({"_id": "e2", "v": "first"})
    with pytest.raises(BulkWriteError) as failure:
        await coll.insert_many(
            [{"_id": "e1"}, {"_id": "e2", "v": "second"}, {"_id": "e3"}], ordered=False
        )
    details = failure.value.details
    assert [e["code"] for e in details["writeErrors"]] == [mongo.DUPLICATE_KEY]
    assert details["writeErrors"][0]["index"] == 1
    assert details["nInserted"] == 2
    assert sorted(await coll.distinct("_id")) == ["e1", "e2", "e3"]
    assert (await coll.find_one({"_id": "e2"}) or {}).get("v") == "first"
    # wfm_runtime.mongo.insert_new builds on exactly this: idempotent batch inserts.
    assert await mongo.insert_new(coll, [{"_id": "e3"}, {"_id": "e4"}, {"_id": "e5"}]) == 2
    assert await mongo.insert_new(coll, [{"_id": "e6"}, {"_id": "e7"}]) == 2
    assert await mongo.insert_new(coll, [{"_id": "e1"}, {"_id": "e2"}]) == 0
    assert await mongo.insert_new(coll, []) == 0
    assert await coll.count_documents({}) == 7


async def test_ordered_insert_many_stops_at_the_duplicate(db: mongo.Database) -> None:
    coll = db["ordered"]
    await coll.insert_one({"_id": 2})
    with pytest.raises(BulkWriteError) as failure:
        await coll.insert_many([{"_id": 1}, {"_id": 2}, {"_id": 3}], ordered=True)
    assert failure.value.details["nInserted"] == 1
    assert sorted(await coll.distinct("_id")) == [1, 2]


async def test_set_fields_many_upserts_and_updates_in_one_call(db: mongo.Database) -> None:
    coll = db["buckets"]
    await mongo.set_fields_many(coll, {"b0": {"rows": b"one", "n": 1}, "b1": {"rows": b"two"}})
    await mongo.set_fields_many(coll, {"b1": {"rows": b"three"}, "b2": {"n": 2}})
    docs = {d["_id"]: d for d in await coll.find({}).to_list(None)}
    assert sorted(docs) == ["b0", "b1", "b2"]
    assert (docs["b0"]["rows"], docs["b0"]["n"]) == (b"one", 1)
    assert docs["b1"]["rows"] == b"three"  # updated in place, nothing else touched
    assert docs["b2"] == {"_id": "b2", "n": 2}
    await mongo.set_fields_many(coll, {})  # nothing to write: no call
