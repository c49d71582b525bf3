"""A second process of one service on a running test system: its own port, caches and locks,
the same database and bus. In-process locks and caches do not help across the two, so only
what the store decides (unique event inserts) keeps them apart: what the concurrency and
chaos tests need."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from wfm.training.v1 import training_service_pb2_grpc as training_grpc

from services.training import main as training_main
from tests.conftest import System
from wfm_runtime.testing import channel


@dataclass
class Replica:
    """The second process and a channel to it as `subject` (role `role`)."""

    service: Any
    channel: grpc.aio.Channel
    stopped: bool = False

    async def stop(self) -> None:
        """Idempotent: a test may stop it early (to compare views with one writer left)."""
        if not self.stopped:
            self.stopped = True
            await self.channel.close()
            await self.service.stop()


async def start_replica(
    system: System, main: Any, service: str, subject: str, role: str
) -> Replica:
    """Starts `main` (a service's main module) as another process of `service` on `system`."""
    started = await main.start(system.settings_for(service), port=0)
    ch = channel(f"127.0.0.1:{started.port}", system.minter.token(subject, role))
    return Replica(started, ch)


class TrainingReplicas(list[training_grpc.TrainingServiceStub]):
    """The system's training replica's stub, then a second replica's (as `hr-2`, role hr);
    `stop_second` stops the second and leaves the system's own alone."""

    stop_second: Callable[[], Awaitable[None]]


async def training_replicas(system: System, agents: Iterable[str] = ()) -> TrainingReplicas:
    """Both training replicas, once `agents` (if any: on a new team "night") are known to
    training."""
    staff = list(agents)
    if staff:
        await system.add_team("night")
    for agent in staff:
        await system.add_agent(agent, "night")
    for agent in staff:
        await system.known_to_training(agent)
    second = await start_replica(system, training_main, "training", "hr-2", "hr")
    stubs = TrainingReplicas([system.train, training_grpc.TrainingServiceStub(second.channel)])
    stubs.stop_second = second.stop
    return stubs


def hold_projections(
    runtimes: Iterable[Any], monkeypatch: pytest.MonkeyPatch, name: str | None = None
) -> asyncio.Event:
    """Holds the batches of each runtime's projections (only the one called `name`, if given)
    until the returned event is set: the views then lag the events as long as the test needs.
    Replicas share a durable consumer, so a view is held only if every replica's is."""
    release = asyncio.Event()
    for runtime in runtimes:
        for runner in runtime.projectors:
            if name is not None and runner.projection.name != name:
                continue
            apply = runner.projection.apply

            async def apply_when_released(envelopes: Any, apply: Any = apply) -> None:
                await release.wait()
                await apply(envelopes)

            monkeypatch.setattr(runner.projection, "apply", apply_when_released)
    return release
