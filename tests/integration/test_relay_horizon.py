"""The relay's horizon: what a killed process committed but never published is recovered."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from google.protobuf.wrappers_pb2 import StringValue
from wfm.events.v1.envelope_pb2 import EventEnvelope

from tests.conftest import Nats
from wfm_runtime import mongo
from wfm_runtime.events import new_envelope
from wfm_runtime.eventstore import EventStore
from wfm_runtime.messaging import Bus
from wfm_runtime.relay import CLOCK_MARGIN, Relay
from wfm_runtime.timefmt import utc_now

pytestmark = pytest.mark.integration
NAMESPACE = "thorizon"
STREAM = "THORIZON_RELAYTEST"


@pytest.fixture
async def db(mongo_url: str) -> AsyncIterator[mongo.Database]:
    client = mongo.connect(mongo_url, "relay-test")
    name = f"relay_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        client.close()


@pytest.fixture
async def bus(nats: Nats) -> AsyncIterator[Bus]:
    bus = Bus(nats.url, "relaytest", ["relaytest"], NAMESPACE)
    await bus.start(wait=5)
    yield bus
    await bus.close()


def _event(thing: str, version: int) -> EventEnvelope:
    return new_envelope(
        producer="relaytest",
        aggregate_type="thing",
        aggregate_id=thing,
        version=version,
        payload=StringValue(value=f"{thing}-{version}"),
        occurred_at=utc_now(),
        idempotency_key=f"{thing}-{version}",
    )


@pytest.fixture
async def store(db: mongo.Database) -> EventStore:
    store = EventStore(db)
    await store.setup()
    return store


async def _registered(store: EventStore, bus: Bus) -> Relay:
    """A relay that counts as dead one second after its last heartbeat."""
    relay = Relay(store, bus, dead_after=timedelta(seconds=1))
    await relay.register()
    return relay


async def _stream_count(bus: Bus) -> int:
    return int((await bus.js.stream_info(STREAM)).state.messages)


async def test_the_horizon_stays_before_every_open_event_and_moves_on_once_published(
    store: EventStore, bus: Bus
) -> None:
    relay = Relay(store, bus, sweep_interval_s=0.05)
    await relay.register()
    event = _event("t1", 1)
    await relay.open(event)
    assert await store.append(event)
    await relay._save_horizon()  # as a round would
    (record,) = await store.relays()
    occurred = event.occurred_at.ToDatetime().replace(tzinfo=record.horizon.tzinfo)
    assert record.horizon <= occurred - CLOCK_MARGIN
    assert not relay.settled
    relay.start()
    relay.committed(event)
    await relay.wait_settled(timeout=10)
    await relay._save_horizon()
    (record,) = await store.relays()
    assert record.horizon > occurred - CLOCK_MARGIN  # nothing holds it back any more
    assert await _stream_count(bus) == 1
    await relay.close()
    assert await store.relays() == []  # a clean stop with nothing open leaves no record


async def test_a_dead_relays_events_are_republished_once_in_version_order(
    store: EventStore, bus: Bus
) -> None:
    dead = await _registered(store, bus)
    # The dead process committed three events and was killed before publishing any of them.
    events = [_event("t1", 2), _event("t1", 1), _event("t2", 1)]
    for event in events:
        await dead.open(event)
        assert await store.append(event)
    live = await _registered(store, bus)
    assert await live.recover_dead_relays() == 0  # its heartbeat is fresh: not dead yet
    assert await _stream_count(bus) == 0
    await asyncio.sleep(1.2)
    await live._save_horizon()  # the live relay's own heartbeat
    assert await live.recover_dead_relays() == 3
    published = []
    for seq in (1, 2, 3):
        envelope = EventEnvelope()
        envelope.ParseFromString((await bus.js.get_msg(STREAM, seq)).data or b"")
        published.append((envelope.aggregate_id, envelope.aggregate_version))
    assert published == [("t1", 1), ("t1", 2), ("t2", 1)]
    # Recorded: another round, or another relay, does not publish it again.
    assert await live.recover_dead_relays() == 0
    again = await _registered(store, bus)
    assert await again.recover_dead_relays() == 0
    assert await _stream_count(bus) == 3


async def test_a_paused_relay_that_writes_again_is_recovered_again_if_it_then_dies(
    store: EventStore, bus: Bus
) -> None:
    paused = await _registered(store, bus)
    live = await _registered(store, bus)
    await asyncio.sleep(1.2)
    await live._save_horizon()
    assert await live.recover_dead_relays() == 0  # nothing stored since its horizon
    # It wakes up: its heartbeat is stale, so it writes one before committing anything.
    event = _event("t9", 1)
    await paused.open(event)
    (record,) = [r for r in await store.relays() if r.relay_id == paused.relay_id]
    assert utc_now() - record.heartbeat < timedelta(seconds=1)
    assert await store.append(event)
    await asyncio.sleep(1.2)  # and dies before publishing
    await live._save_horizon()
    assert await live.recover_dead_relays() == 1
    assert await _stream_count(bus) == 1


async def test_close_ends_when_the_sweep_is_cancelled_just_as_it_wakes(
    store: EventStore, bus: Bus
) -> None:
    """On Python 3.11, `asyncio.wait_for` drops a cancellation that arrives after the inner
    wait is done but before the caller resumes: the sweep ran on and `close()` awaited it
    forever (a test teardown stalled that way). The wake-up comes at each step of a close in
    turn, so one of them lands just before close cancels the sweep; every close must end."""
    for steps in range(10):
        relay = Relay(store, bus, sweep_interval_s=60.0)
        await relay.register()
        relay.start()
        await asyncio.sleep(0.05)  # the sweep is waiting for a wake-up or its interval
        closing = asyncio.create_task(relay.close())
        for _ in range(steps):
            await asyncio.sleep(0)
        relay._wake.set()  # what a deferred publish does; no public way to time it this finely
        # Less than close()'s own bound on each task: the sweep has to end, not be given up on.
        done, _ = await asyncio.wait({closing}, timeout=3)
        assert done, f"close() still waits for the sweep, woken {steps} steps into it"


async def test_close_ends_when_a_store_call_turns_the_cancellation_into_an_error(
    store: EventStore, bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A driver cancelled in the middle of a call may raise its own error instead of
    CancelledError (seen with PyMongo's async client). The round logs the error and goes on,
    so the sweep must also stop on close()'s flag, not only on the cancellation."""
    relay = Relay(store, bus, sweep_interval_s=0.01)
    await relay.register()
    in_call = asyncio.Event()
    save = store.save_relay

    async def save_that_fails_when_cancelled(*args: Any) -> None:
        in_call.set()
        try:
            await asyncio.sleep(0.5)  # a slow write
        except asyncio.CancelledError:
            raise RuntimeError("connection closed while the call was cancelled") from None
        await save(*args)

    monkeypatch.setattr(store, "save_relay", save_that_fails_when_cancelled)
    relay.start()
    await in_call.wait()  # the sweep's round is inside the store call
    closing = asyncio.create_task(relay.close())
    done, _ = await asyncio.wait({closing}, timeout=3)
    assert done, "close() still waits for the sweep"
