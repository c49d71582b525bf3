"""A projector stops promptly, even while the stream it reads does not exist yet."""

from __future__ import annotations

import asyncio

import pytest
from wfm.events.v1.envelope_pb2 import EventEnvelope

from tests.conftest import Nats
from wfm_runtime.messaging import Bus
from wfm_runtime.projector import ProjectorRunner

pytestmark = pytest.mark.integration


class NeverFed:
    name = "never-fed"
    source = "no-such-service"
    subjects = ">"

    def __init__(self) -> None:
        self.applied: list[EventEnvelope] = []

    async def apply(self, envelopes: list[EventEnvelope]) -> None:
        self.applied += envelopes

    async def reset(self) -> None:
        self.applied.clear()


async def test_close_returns_while_the_stream_is_missing(nats: Nats) -> None:
    bus = Bus(nats.url, "closer", ["closer"], "tclose")
    await bus.start(wait=5)
    runner = ProjectorRunner(bus, NeverFed())
    runner.start()
    try:
        await asyncio.sleep(1.0)  # several rounds of "stream not found" and retry
        await asyncio.wait_for(runner.close(), timeout=8)
        task = runner._task
        assert task is not None and task.done()
    finally:
        await bus.close()
