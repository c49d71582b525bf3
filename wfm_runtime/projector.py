"""Projector runner: a durable JetStream pull consumer feeding one projection.

A projection turns events into MongoDB read views. It must be idempotent (an event may come
twice: redelivery after a crash, the relay's sweep) and must never let an older version of an
entity overwrite a newer one. The runner acks a batch only after the projection has written it,
so a projector killed mid-batch gets the whole batch again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from wfm.events.v1.envelope_pb2 import EventEnvelope

from wfm_runtime import logging as wlog
from wfm_runtime.events import DEFAULT_NAMESPACE, parse, stream_name
from wfm_runtime.messaging import Bus, NotConnected

log = wlog.get("projector")

# After the first message of a batch, how long to wait for more (bounds the added lag).
DRAIN_WAIT_S = 0.02
CLOSE_WAIT_S = 5.0
# Up to this many events per apply: enough to share a batch's writes; a projection whose
# apply costs little per event once its writes are shared asks for more (see `batch`).
DEFAULT_BATCH = 500


class Projection(Protocol):
    name: str  # durable consumer name, unique per view set
    source: str  # producing service whose stream is read, e.g. "availability"
    subjects: str  # within that stream, e.g. "agent_availability.>" or ">"

    async def apply(self, envelopes: list[EventEnvelope]) -> None: ...

    async def reset(self) -> None:
        """Drops the projection's views and caches, before a rebuild from the stream."""

    # Optional: `async def caught_up(self) -> None`, called after a batch that emptied the
    # backlog, before it is acked (a projection may defer work while it catches up).


Listener = Callable[[list[EventEnvelope]], Awaitable[None]]


class ProjectorRunner:
    def __init__(self, bus: Bus, projection: Projection, batch: int = DEFAULT_BATCH) -> None:
        self._bus = bus
        self.projection = projection
        self._batch = batch
        self._sub: object | None = None
        self._task: asyncio.Task[None] | None = None
        self._paused = asyncio.Lock()
        self.listeners: list[Listener] = []
        self.applied = 0
        self._closing = False

    @property
    def stream(self) -> str:
        return stream_name(self.projection.source, self._bus.namespace)

    @property
    def filter_subject(self) -> str:
        return f"{self._bus.namespace}.{self.projection.source}.{self.projection.subjects}"

    @property
    def durable(self) -> str:
        namespace = self._bus.namespace
        name = self.projection.name
        return name if namespace == DEFAULT_NAMESPACE else f"{namespace}-{name}"

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"projector-{self.projection.name}")

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            # Not a plain `await`: a client call that swallows the cancellation (seen while
            # the stream did not exist yet) would hang it; the loop also stops on `_closing`.
            await asyncio.wait({self._task}, timeout=CLOSE_WAIT_S)
        if self._sub is not None:  # otherwise the connection's drain waits for it
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()  # type: ignore[attr-defined]
            self._sub = None

    async def _subscribe(self) -> object:
        config = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            max_ack_pending=50_000,
            # A batch is acked when applied: give a large one time (20 s for 10,000).
            ack_wait=max(10, self._batch // 500),
            filter_subject=self.filter_subject,
        )
        return await self._bus.js.pull_subscribe(
            self.filter_subject,
            durable=self.durable,
            stream=self.stream,
            config=config,
        )

    async def _loop(self) -> None:
        while not self._closing:
            try:
                async with self._paused:
                    await self._step()
            except asyncio.CancelledError:
                raise
            except (NotConnected, NotFoundError, nats.errors.Error) as exc:
                self._sub = None
                log.info("projector_waiting", projection=self.projection.name, error=repr(exc))
                await asyncio.sleep(0.3)
            except Exception as exc:
                self._sub = None
                log.warning("projector_failed", projection=self.projection.name, error=repr(exc))
                await asyncio.sleep(1.0)

    async def _step(self) -> None:
        if self._sub is None:
            self._sub = await self._subscribe()
        msgs = await self._next_batch()
        if not msgs:
            return
        envelopes: list[EventEnvelope] = []
        for msg in msgs:
            envelope = parse(msg.data)
            if envelope is None:
                log.error("projector_bad_message", subject=msg.subject)
                await msg.term()
                continue
            envelopes.append(envelope)
        if envelopes:
            try:
                await self.projection.apply(envelopes)
                if len(msgs) < self._batch:
                    await self._caught_up()
            except BaseException:
                # Hand the batch back at once (not after ack_wait); the views are idempotent.
                for msg in msgs:
                    with contextlib.suppress(Exception):
                        await msg.nak(delay=0.5)
                raise
            self.applied += len(envelopes)
        for msg in msgs:
            await msg.ack()
        for listener in self.listeners:
            await listener(envelopes)

    async def _caught_up(self) -> None:
        """Tells a projection that defers work while it catches up (an optional `caught_up`
        method) that this batch emptied the backlog: before the batch is acked."""
        hook = getattr(self.projection, "caught_up", None)
        if hook is not None:
            await hook()

    async def _next_batch(self) -> list[Any]:
        """Waits for the first message, then takes what else is there within a few ms.

        A single fetch of a whole batch would wait for the batch to fill or for its timeout (a
        pull request with an expiry lingers on the server), which at a low rate is pure lag.
        """
        sub: Any = self._sub
        try:
            msgs: list[Any] = await sub.fetch(1, timeout=1.0)
        except (TimeoutError, nats.errors.TimeoutError):
            return []
        with contextlib.suppress(TimeoutError, nats.errors.TimeoutError):
            msgs += await sub.fetch(self._batch - 1, timeout=DRAIN_WAIT_S)
        return msgs

    async def pending(self) -> int:
        """Messages not yet processed (0 when caught up)."""
        info = await self._bus.js.consumer_info(self.stream, self.durable)
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    async def wait_caught_up(self, timeout: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                if await self.pending() == 0:
                    return
            except (NotConnected, NotFoundError, nats.errors.Error):
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"projection {self.projection.name} did not catch up")
            await asyncio.sleep(0.05)

    async def rebuild(self) -> None:
        """Drops the views and replays the whole stream into them through the same code."""
        async with self._paused:
            if self._sub is not None:
                with contextlib.suppress(Exception):
                    await self._sub.unsubscribe()  # type: ignore[attr-defined]
            with contextlib.suppress(NotFoundError):
                await self._bus.js.delete_consumer(self.stream, self.durable)
            self._sub = None
            await self.projection.reset()
        log.info("projection_rebuilding", projection=self.projection.name)
