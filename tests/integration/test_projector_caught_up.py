"""A projection that defers work while catching up is told, before the ack, when a batch
emptied the backlog; never after a full batch (more may be waiting)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from google.protobuf.wrappers_pb2 import StringValue
from wfm.events.v1.envelope_pb2 import EventEnvelope

from tests.conftest import Nats
from wfm_runtime.events import new_envelope, subject
from wfm_runtime.messaging import Bus
from wfm_runtime.projector import ProjectorRunner
from wfm_runtime.testing import eventually

pytestmark = pytest.mark.integration
NAMESPACE = "tcaught"


class Deferring:
    name = "deferring"
    source = "feeder"
    subjects = ">"

    def __init__(self) -> None:
        self.calls: list[object] = []  # batch sizes, and "caught up" marks

    async def apply(self, envelopes: list[EventEnvelope]) -> None:
        self.calls.append(len(envelopes))

    async def caught_up(self) -> None:
        self.calls.append("caught up")

    async def reset(self) -> None:
        self.calls.clear()


def _event(n: int) -> EventEnvelope:
    return new_envelope(
        producer="feeder",
        aggregate_type="thing",
        aggregate_id=f"t{n}",
        version=1,
        payload=StringValue(value=str(n)),
        occurred_at=datetime(2026, 11, 23, tzinfo=UTC),
    )


async def test_caught_up_follows_each_batch_that_emptied_the_backlog(nats: Nats) -> None:
    bus = Bus(nats.url, "feeder", ["feeder"], NAMESPACE)
    await bus.start(wait=5)
    projection = Deferring()
    runner = ProjectorRunner(bus, projection, batch=4)
    try:
        for n in range(10):  # a backlog before the consumer starts: full batches first
            event = _event(n)
            await bus.publish(subject(event, NAMESPACE), event.SerializeToString(), event.event_id)
        runner.start()
        await runner.wait_caught_up(timeout=10)
        sizes = [c for c in projection.calls if isinstance(c, int)]
        assert sum(sizes) == 10
        for size, after in zip(projection.calls, [*projection.calls[1:], None], strict=True):
            if isinstance(size, int):
                assert (after == "caught up") == (size < 4), projection.calls
        assert projection.calls[-1] == "caught up"
        # Caught up already: the next lone event is applied and marked caught up at once.
        event = _event(10)
        await bus.publish(subject(event, NAMESPACE), event.SerializeToString(), event.event_id)
        await runner.wait_caught_up(timeout=10)
        await asyncio.sleep(0.1)
        assert projection.calls[-2:] == [1, "caught up"]
    finally:
        await runner.close()
        await bus.close()


async def test_large_batches_are_gathered_whole_and_acked(nats: Nats) -> None:
    """A backlog is taken in whole batches (the puller's requests), each message acked once."""
    bus = Bus(nats.url, "feeder", ["feeder"], f"{NAMESPACE}all")
    await bus.start(wait=5)
    projection = Deferring()
    projection.name = "acked-all"
    runner = ProjectorRunner(bus, projection, batch=1_000)
    try:
        for n in range(2_500):
            event = _event(n)
            await bus.nc.publish(subject(event, f"{NAMESPACE}all"), event.SerializeToString())
        await bus.nc.flush()
        stream = runner.stream
        await eventually(
            lambda: bus.js.stream_info(stream), lambda info: info.state.messages == 2_500
        )
        runner.start()
        await runner.wait_caught_up(timeout=20)  # nothing pending, nothing awaiting an ack
        sizes = [c for c in projection.calls if isinstance(c, int)]
        assert sum(sizes) == 2_500 and max(sizes) == 1_000
        info = await bus.js.consumer_info(runner.stream, runner.durable)
        assert info.num_redelivered == 0 and info.num_ack_pending == 0
    finally:
        await runner.close()
        await bus.close()
