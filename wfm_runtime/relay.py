"""Moves committed events from the store to JetStream, at least once, with dedupe ids.

Fast path: right after the commit, the event is published in the background (the RPC does not
wait): events committed together are sent back to back and their acks gathered by one
subscription (`PipelinedPublisher`). What fails (NATS down, no ack) is kept and published
again every round (0.2 s), in version order per aggregate.

Nothing but the event is written per change. A crash is covered by the relay's horizon instead:
each relay keeps one document in `relays` saying "every event this process committed that
occurred before `horizon` has been acknowledged by JetStream", with a heartbeat, both written
every round. Before a command commits, its event is registered here (`open`), so the horizon
stays at or before it until JetStream has it. When a relay's heartbeat stops (its process was
killed), any other relay (another replica, or the restarted service) republishes every event
stored since that horizon, in version order per aggregate, then records the recovery with a
unique insert. JetStream drops duplicates by `Nats-Msg-Id` and the projectors ignore versions
they have, so publishing more than was lost is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import timedelta

from wfm.events.v1.envelope_pb2 import EventEnvelope

from wfm_runtime import logging as wlog
from wfm_runtime.events import subject
from wfm_runtime.eventstore import EventStore, RelayRecord
from wfm_runtime.messaging import Bus, PipelinedPublisher
from wfm_runtime.timefmt import from_timestamp, utc_now

log = wlog.get("relay")

# How often failed publishes are retried and the horizon and heartbeat are written.
ROUND_INTERVAL_S = 0.2
# The horizon is written this much earlier than the oldest open event: it covers a wall clock
# that steps back, and an event whose time was taken just before it was registered.
CLOCK_MARGIN = timedelta(seconds=30)
# A relay whose heartbeat is older than this is dead: its horizon is recovered by the others.
DEAD_AFTER = timedelta(seconds=10)
# An event whose insert raised is checked in the store after this long (the insert may still
# land late): published if it is there, dropped if not.
UNCERTAIN_GRACE = timedelta(seconds=60)
# Publishes retried per round at most (one by one, in order), so the round comes back soon.
MAX_RETRIES_PER_ROUND = 2000
# How long close() waits for each of its tasks to stop once cancelled.
CLOSE_WAIT_S = 5.0


class Relay:
    def __init__(
        self,
        store: EventStore,
        bus: Bus,
        sweep_interval_s: float = ROUND_INTERVAL_S,
        recovery_interval_s: float = 5.0,
        dead_after: timedelta = DEAD_AFTER,
    ) -> None:
        self._store = store
        self._bus = bus
        self.relay_id = uuid.uuid4().hex
        self._interval = sweep_interval_s
        self._recovery_interval = recovery_interval_s
        self._dead_after = dead_after
        # Registered, not yet acknowledged by JetStream: these hold the horizon back.
        self._open: dict[str, EventEnvelope] = {}
        self._uncertain: dict[str, EventEnvelope] = {}  # the insert raised: committed or not?
        self._failed: dict[str, EventEnvelope] = {}  # committed, to publish again
        self._outgoing: list[EventEnvelope] = []  # committed, for the fast path's next send
        self._sending: dict[str, EventEnvelope] = {}  # sent by the fast path, ack awaited
        self._publisher = PipelinedPublisher(bus, self._fast_path_result)
        self._send_wake = asyncio.Event()
        self._settled = asyncio.Event()  # nothing open
        self._settled.set()
        self._wake = asyncio.Event()
        self._saved_at = float("-inf")  # loop time of the last horizon write that succeeded
        self._saving = asyncio.Lock()
        self._last_recovery = float("-inf")
        self._sender: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        # Set by close(): the loops also stop on it, in case a library they await swallows
        # or converts the cancellation (a store error is logged and the loop goes on).
        self._closing = False

    async def register(self) -> None:
        """Writes this relay's first horizon; commands may commit only after it."""
        await self._save_horizon()

    def start(self) -> None:
        self._sender = asyncio.create_task(self._send_loop(), name="relay-send")
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="relay-sweep")

    # --- the command runner's side ------------------------------------------------------
    async def open(self, envelope: EventEnvelope) -> None:
        """Called before the event's insert: from here the horizon cannot pass it."""
        self._open[envelope.event_id] = envelope
        self._settled.clear()
        if not self._stale():
            return
        # Our heartbeat may look dead to the others (a long pause, a store outage): write it
        # before committing, so a crash right after the commit is still recovered.
        try:
            if self._saving.locked():  # another command is writing it: that write will do
                async with self._saving:
                    pass
            if self._stale():
                await self._save_horizon()
        except BaseException:
            self._close(envelope.event_id)
            raise

    def _stale(self) -> bool:
        return self._loop_time() - self._saved_at > self._dead_after.total_seconds() / 2

    def committed(self, envelope: EventEnvelope) -> None:
        """Called right after a commit: publish in the background, never failing the RPC."""
        self._outgoing.append(envelope)
        self._send_wake.set()

    def not_committed(self, envelope: EventEnvelope) -> None:
        """The insert lost (version or key taken): nothing to publish."""
        self._close(envelope.event_id)

    def maybe_committed(self, envelope: EventEnvelope) -> None:
        """The insert raised: it may have landed. Checked in the store after a grace period."""
        self._uncertain[envelope.event_id] = envelope

    @property
    def settled(self) -> bool:
        """Everything this process committed is in JetStream."""
        return not self._open

    async def wait_settled(self, timeout: float) -> None:
        await asyncio.wait_for(self._settled.wait(), timeout)

    # --- fast path ----------------------------------------------------------------------
    async def _send_loop(self) -> None:
        while not self._closing:
            await self._send_wake.wait()
            self._send_wake.clear()
            batch, self._outgoing = self._outgoing, []
            for envelope in batch:
                self._sending[envelope.event_id] = envelope
            messages = [
                (subject(e, self._bus.namespace), e.SerializeToString(), e.event_id, e.event_id)
                for e in batch
            ]
            for event_id in await self._publisher.send(messages):
                self._fast_path_result(event_id, False)

    def _fast_path_result(self, event_id: str, stored: bool) -> None:
        envelope = self._sending.pop(event_id, None)
        if envelope is None:
            return
        if stored:
            self._close(event_id)
        elif event_id in self._open:
            log.warning("publish_deferred", event_id=event_id)
            self._failed[event_id] = envelope
            self._wake.set()

    def _close(self, event_id: str) -> None:
        self._open.pop(event_id, None)
        self._failed.pop(event_id, None)
        if not self._open:
            self._settled.set()

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

    # --- every round --------------------------------------------------------------------
    async def _sweep_loop(self) -> None:
        while not self._closing:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation
            # that comes just after the wake-up, and the loop would outlive close().
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._round()
            except Exception as exc:
                log.warning("relay_round_failed", error=str(exc))

    async def _round(self) -> None:
        """Writes the horizon and heartbeat, retries failed publishes, settles uncertain
        inserts, and now and then recovers the horizons of relays that died."""
        self._publisher.expire()
        try:
            # First, so that a long retry below never lets the heartbeat look dead.
            await self._save_horizon()
        except Exception as exc:
            log.warning("relay_horizon_not_saved", error=str(exc))
        if self._bus.connected:
            await self._retry_failed()
        await self._settle_uncertain()
        if self._bus.connected and (
            self._loop_time() - self._last_recovery >= self._recovery_interval
        ):
            await self.recover_dead_relays()
            self._last_recovery = self._loop_time()

    async def _retry_failed(self) -> None:
        retry = sorted(
            self._failed.values(),
            key=lambda e: (e.aggregate_type, e.aggregate_id, e.aggregate_version),
        )
        for envelope in retry[:MAX_RETRIES_PER_ROUND]:
            if not await self._publish(envelope):
                return  # NATS went away again; keep the order, try next round
            self._close(envelope.event_id)

    async def _settle_uncertain(self) -> None:
        now = utc_now()
        for event_id, envelope in list(self._uncertain.items()):
            if await self._store.is_stored(envelope):
                del self._uncertain[event_id]
                self._failed[event_id] = envelope  # committed after all: publish it
            elif now - from_timestamp(envelope.occurred_at) > UNCERTAIN_GRACE:
                del self._uncertain[event_id]
                self._close(event_id)  # it never landed

    async def _save_horizon(self) -> None:
        async with self._saving:
            now = utc_now()
            oldest = min(
                (from_timestamp(e.occurred_at) for e in self._open.values()),
                default=now,
            )
            began = self._loop_time()
            await self._store.save_relay(self.relay_id, min(oldest, now) - CLOCK_MARGIN, now)
            self._saved_at = began

    async def recover_dead_relays(self) -> int:
        """Republishes what relays whose heartbeat stopped may not have published; returns
        how many events were published."""
        published = 0
        now = utc_now()
        for record in await self._store.relays():
            if record.relay_id == self.relay_id or now - record.heartbeat < self._dead_after:
                continue
            if await self._store.is_recovered(record):
                continue
            published += await self._recover(record)
        return published

    async def _recover(self, record: RelayRecord) -> int:
        events = await self._store.events_since(record.horizon)
        for envelope in events:
            if not await self._publish(envelope):
                return 0  # NATS went away: the recovery is not recorded, the next round redoes it
        await self._store.mark_recovered(record, by=self.relay_id)
        log.info("relay_recovered", dead_relay=record.relay_id, republished=len(events))
        return len(events)

    def _loop_time(self) -> float:
        return asyncio.get_running_loop().time()

    async def close(self) -> None:
        # Let the fast path's acks arrive, so a clean stop leaves nothing to recover.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settled.wait(), 2.0)
        self._closing = True
        for task in (self._sender, self._sweeper):
            if task is not None:
                task.cancel()
                # Waited for, not awaited: `await` would cancel it again if close() itself were
                # cancelled, and suppressing CancelledError would swallow that cancellation.
                _, running = await asyncio.wait({task}, timeout=CLOSE_WAIT_S)
                if running:
                    log.warning("relay_task_not_stopped", task=task.get_name())
        if self._open:
            return  # unpublished events: the horizon stays, another relay will recover it
        with contextlib.suppress(Exception):
            await self._store.forget_relay(self.relay_id)
