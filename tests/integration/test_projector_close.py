"""A projector stops promptly, even while the stream it reads does not exist yet; so do the
runtime's background loops."""

from __future__ import annotations

import asyncio

import pytest
from wfm.events.v1.envelope_pb2 import EventEnvelope

from tests.conftest import Nats
from wfm_runtime.messaging import Bus
from wfm_runtime.projector import ProjectorRunner
from wfm_runtime.service import ServiceRuntime
from wfm_runtime.testing import eventually, isolated_settings

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


async def test_a_background_loop_runs_from_open_until_close(mongo_url: str, nats: Nats) -> None:
    """`ServiceRuntime.add_background`: the primary runs the loop after `open`; `close` stops
    it before the connections go."""
    runtime = ServiceRuntime(isolated_settings("performance", mongo_url, nats.url, prefix="tbg"))
    ticks: list[float] = []

    async def loop() -> None:
        while True:
            ticks.append(asyncio.get_running_loop().time())
            await asyncio.sleep(0.05)

    runtime.add_background("ticker", loop)
    await runtime.open()
    try:
        await eventually(lambda: len(ticks), lambda n: n >= 3)
    finally:
        await asyncio.wait_for(runtime.close(), timeout=10)
    stopped_at = len(ticks)
    await asyncio.sleep(0.2)
    assert len(ticks) == stopped_at  # not ticking after close
