"""Moves committed events from the store to JetStream, at least once, with dedupe ids.

Fast path: right after the commit, the event is published in the background (the RPC does not
wait): events committed together are sent back to back and their acks gathered by one
subscription (`PipelinedPublisher`). If that fails (NATS down, no ack, process killed), the
outbox marker stays, and the sweep
publishes it later: markers this process committed are published at once; markers left by a
process that died are first checked against `events` (a marker whose event was never stored
is an abandoned attempt and is dropped). JetStream drops duplicates by `Nats-Msg-Id` and the
projectors are idempotent, so publishing twice is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from wfm.events.v1.envelope_pb2 import EventEnvelope

from wfm_runtime import logging as wlog
from wfm_runtime.events import subject
from wfm_runtime.eventstore import EventStore, PendingEvent
from wfm_runtime.messaging import Bus, PipelinedPublisher
from wfm_runtime.timefmt import utc_now

log = wlog.get("relay")

# A marker younger than this may still be on its fast path; the sweep leaves it alone.
FAST_PATH_GRACE = timedelta(seconds=2)
# An uncommitted marker older than this belongs to an attempt that can no longer commit.
ABANDONED_AFTER = timedelta(seconds=60)
# How often published markers are deleted (in one batch) and failed publishes retried.
ROUND_INTERVAL_S = 0.2


class Relay:
    def __init__(
        self,
        store: EventStore,
        bus: Bus,
        sweep_interval_s: float = ROUND_INTERVAL_S,
        full_sweep_interval_s: float = 5.0,
    ) -> None:
        self._store = store
        self._bus = bus
        self._interval = sweep_interval_s
        self._full_interval = full_sweep_interval_s
        self._committed: set[str] = set()  # event ids this process stored, not yet published
        self._failed: dict[str, EventEnvelope] = {}  # this process's events to publish again
        self._done: list[str] = []  # published: outbox markers to delete in the next batch
        self._outgoing: list[EventEnvelope] = []  # committed, for the fast path's next send
        self._sending: dict[str, EventEnvelope] = {}  # sent by the fast path, ack awaited
        self._publisher = PipelinedPublisher(bus, self._fast_path_result)
        self._send_wake = asyncio.Event()
        self._fast_path_idle = asyncio.Event()  # nothing waits to be sent or for its ack
        self._fast_path_idle.set()
        self._sender: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._last_full_sweep = float("-inf")

    def start(self) -> None:
        self._sender = asyncio.create_task(self._send_loop(), name="relay-send")
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="relay-sweep")

    def committed(self, envelope: EventEnvelope) -> None:
        """Called right after a commit: publish in the background, never failing the RPC."""
        self._committed.add(envelope.event_id)
        self._outgoing.append(envelope)
        self._fast_path_idle.clear()
        self._send_wake.set()

    async def _send_loop(self) -> None:
        while True:
            await self._send_wake.wait()
            self._send_wake.clear()
            batch, self._outgoing = self._outgoing, []
            for envelope in batch:
                self._sending[envelope.event_id] = envelope
            messages = [
                (
                    subject(e, self._bus.namespace),
                    e.SerializeToString(),
                    e.event_id,
                    e.event_id,
                )
                for e in batch
            ]
            for event_id in await self._publisher.send(messages):
                self._fast_path_result(event_id, False)

    def _fast_path_result(self, event_id: str, stored: bool) -> None:
        envelope = self._sending.pop(event_id, None)
        if not self._sending and not self._outgoing:
            self._fast_path_idle.set()
        if envelope is None:
            return
        if stored:
            self._mark_done(event_id)
        elif event_id in self._committed:
            log.warning("publish_deferred", event_id=event_id)
            self._failed[event_id] = envelope
            self._wake.set()

    def _mark_done(self, event_id: str) -> None:
        self._committed.discard(event_id)
        self._failed.pop(event_id, None)
        self._done.append(event_id)

    async def _publish(self, envelope: EventEnvelope) -> bool:
        try:
            await self._bus.publish(
                subject(envelope, self._bus.namespace),
                envelope.SerializeToString(),
                envelope.event_id,
            )
        except Exception as exc:
            log.warning("publish_deferred", event_id=envelope.event_id, error=str(exc))
            return False
        return True

    async def _sweep_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                await self._round()
            except Exception as exc:
                log.warning("relay_round_failed", error=str(exc))

    async def _round(self) -> None:
        """Deletes published markers in one batch, retries this process's failed publishes,
        and now and then sweeps the whole outbox for markers left by processes that died."""
        self._publisher.expire()
        await self._flush_done()
        if not self._bus.connected:
            return
        await self._retry_failed()
        loop_time = asyncio.get_running_loop().time()
        if loop_time - self._last_full_sweep >= self._full_interval:
            await self.sweep()
            self._last_full_sweep = loop_time

    async def _flush_done(self) -> None:
        done, self._done = self._done, []
        if done:
            try:
                await self._store.published_many(done)
            except Exception:
                self._done = done + self._done
                raise

    async def _retry_failed(self) -> None:
        retry = sorted(
            self._failed.values(),
            key=lambda e: (e.aggregate_type, e.aggregate_id, e.aggregate_version),
        )
        for envelope in retry:
            if not await self._publish(envelope):
                return  # NATS went away again; keep the order, try next round
            self._mark_done(envelope.event_id)
        await self._flush_done()

    async def sweep(self, grace: timedelta = FAST_PATH_GRACE) -> int:
        """Publishes every pending marker old enough; returns how many were published."""
        published = 0
        now = utc_now()
        for pending in await self._store.pending():
            if now - pending.created_at < grace or pending.marker_id in self._done:
                continue
            if not await self._is_committed(pending):
                continue
            if not await self._publish(pending.envelope):
                break  # NATS went away; keep the order, try again next round
            self._mark_done(pending.marker_id)
            published += 1
        await self._flush_done()
        if published:
            log.info("relay_swept", published=published)
        return published

    async def _is_committed(self, pending: PendingEvent) -> bool:
        if pending.marker_id in self._committed:
            return True
        if await self._store.is_committed(pending):
            return True
        if utc_now() - pending.created_at > ABANDONED_AFTER:
            await self._store.published(pending.marker_id)  # abandoned attempt: drop its marker
        return False

    async def close(self) -> None:
        # Let acks of what the fast path sent arrive, so their markers go now, not at a sweep.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._fast_path_idle.wait(), 2.0)
        for task in (self._sender, self._sweeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        with contextlib.suppress(Exception):
            await self._flush_done()
