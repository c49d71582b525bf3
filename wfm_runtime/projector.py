"""Projector runner: a durable JetStream pull consumer feeding one projection.

A projection turns events into MongoDB read views. It must be idempotent (an event may come
twice: redelivery after a crash, the relay's sweep) and must never let an older version of an
entity overwrite a newer one. The runner acks a batch only after the projection has written it,
so a projector killed mid-batch gets the whole batch again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
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

# After the first message of a batch, how long to wait for the others the server said wait.
FILL_WAIT_S = 2.0
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
        self._sub: Puller | None = None
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
        await self._drop_subscription()  # otherwise the connection's drain waits for it

    async def _subscribe(self) -> Puller:
        config = ConsumerConfig(
            durable_name=self.durable,
            # Not AckAll, though one ack a batch would be cheaper: it would also ack messages
            # delivered before a restart and not yet redelivered, which were never applied.
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            max_ack_pending=50_000,
            # A batch is acked when applied: give a large one time (50 s for 10,000, which
            # may wait for the other projections of its book and compute deferred figures).
            ack_wait=max(10, self._batch // 200),
            filter_subject=self.filter_subject,
        )
        js = self._bus.js
        try:
            await js.consumer_info(self.stream, self.durable)
        except NotFoundError:
            await js.add_consumer(self.stream, config)
        puller = Puller(self._bus.nc, self.stream, self.durable)
        await puller.start()
        return puller

    async def _loop(self) -> None:
        while not self._closing:
            try:
                async with self._paused:
                    await self._step()
            except asyncio.CancelledError:
                raise
            except (NotConnected, NotFoundError, nats.errors.Error) as exc:
                await self._drop_subscription()
                log.info("projector_waiting", projection=self.projection.name, error=repr(exc))
                await asyncio.sleep(0.3)
            except Exception as exc:
                await self._drop_subscription()
                log.warning("projector_failed", projection=self.projection.name, error=repr(exc))
                await asyncio.sleep(1.0)

    async def _drop_subscription(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.stop()
            self._sub = None

    async def _step(self) -> None:
        if self._sub is None:
            self._sub = await self._subscribe()
        msgs = await self._next_batch()
        if not msgs:
            return
        envelopes: list[EventEnvelope] = []
        kept: list[Any] = []  # the messages parsed (the others are terminated)
        for msg in msgs:
            envelope = parse(msg.data)
            if envelope is None:
                log.error("projector_bad_message", subject=msg.subject)
                await msg.term()
                continue
            envelopes.append(envelope)
            kept.append(msg)
        if envelopes:
            try:
                await self.projection.apply(envelopes)
                if self._emptied_backlog(msgs):
                    await self._caught_up()
            except BaseException:
                # Hand the batch back at once (not after ack_wait); the views are idempotent.
                for msg in kept:
                    with contextlib.suppress(Exception):
                        await msg.nak(delay=0.5)
                raise
            self.applied += len(envelopes)
        for msg in kept:
            await msg.ack()
        for listener in self.listeners:
            await listener(envelopes)

    def _emptied_backlog(self, msgs: list[Any]) -> bool:
        return _waiting_after(msgs[-1]) == 0

    async def _caught_up(self) -> None:
        """Tells a projection that defers work while it catches up (an optional `caught_up`
        method) that this batch emptied the backlog: before the batch is acked."""
        hook = getattr(self.projection, "caught_up", None)
        if hook is not None:
            await hook()

    async def _next_batch(self) -> list[Any]:
        """Waits for the first message, then takes at once the others known to be waiting.

        Each JetStream message says how many more the consumer holds for us (`num_pending`),
        so a caught-up consumer asks for nothing more (no added lag), and one with a backlog
        gets a whole batch without waiting for a timeout. A single request for a whole batch
        would wait for it to fill or for its expiry, which at a low rate is pure lag.
        """
        assert self._sub is not None
        msgs = await self._sub.fetch(1, wait=1.0)
        if not msgs:
            return []
        wanted = min(self._batch - 1, _waiting_after(msgs[-1]))
        if wanted > 0:
            msgs += await self._sub.fetch(wanted, wait=FILL_WAIT_S)
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
            await self._drop_subscription()
            with contextlib.suppress(NotFoundError):
                await self._bus.js.delete_consumer(self.stream, self.durable)
            await self.projection.reset()
        log.info("projection_rebuilding", projection=self.projection.name)


def _waiting_after(msg: Any) -> int:
    """How many more messages the consumer held when this one was delivered (every delivery
    of a pull consumer says so in its ack subject; 0 if one ever did not)."""
    try:
        return int(msg.metadata.num_pending)
    except Exception:
        return 0


class Puller:
    """Pull requests to a durable consumer over one plain subscription (JetStream's
    `CONSUMER.MSG.NEXT` API), the messages of a request gathered by a callback.

    nats-py's `fetch` awaits each message through `next_msg`, which makes two tasks per
    message: at 10,000 messages a batch that alone capped a runner near 12,000 messages/s.
    Each request gets its own reply subject, so a late status of an expired request (a 408)
    never ends a later one; late messages of an expired request are valid deliveries and join
    the current batch.
    """

    def __init__(self, nc: Any, stream: str, durable: str) -> None:
        self._nc = nc
        self._subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = nc.new_inbox()
        self._sub: Any = None
        self._request = 0
        self._msgs: list[Any] = []
        self._wanted = 0
        self._done: asyncio.Future[None] | None = None

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_message)

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    async def fetch(self, count: int, wait: float) -> list[Any]:
        """Up to `count` messages (a few more when late ones of an expired request came in
        meanwhile): those there at once and those that come within `wait`."""
        self._request += 1
        self._wanted = count
        missing = count - len(self._msgs)
        if missing > 0:
            self._done = asyncio.get_running_loop().create_future()
            request = {"batch": missing, "expires": int(wait * 1e9)}
            reply = f"{self._inbox}.{self._request}"
            await self._nc.publish(self._subject, json.dumps(request).encode(), reply=reply)
            # The server ends an unfilled request at its expiry (a 408); the margin covers a
            # lost request (a reconnect).
            # asyncio.timeout, not wait_for, which on Python 3.11 can drop a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait + 1.0):
                    await asyncio.shield(self._done)
        # Everything delivered so far, in order: a message delivered and left out here would
        # only come again after ack_wait.
        msgs, self._msgs = self._msgs, []
        return msgs

    async def _on_message(self, msg: Any) -> None:
        status = msg.headers.get("Status") if msg.headers else None
        if status is None:
            self._msgs.append(msg)
            if len(self._msgs) >= self._wanted:
                self._finish()
        elif msg.subject == f"{self._inbox}.{self._request}":
            self._finish()  # 404 nothing (more) to deliver, 408 expired, 409 and the like

    def _finish(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(None)
