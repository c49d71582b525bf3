"""The event store: the commit point of every change, written to the MongoDB/FerretDB subset.

Two collections in the service's own database:
- `events`: append-only, `_id` = `<aggregate type>/<aggregate id>/<version>`. The insert is the
  commit point: the unique `_id` makes two writers of the same version fail atomically on
  MongoDB 7 and on FerretDB v1 alike (conditional updates are not atomic on FerretDB). Each
  event also holds its request's idempotency key (`idempotency`, unique index), so the same
  insert spends the key: a retried request cannot commit twice. A request that changed nothing
  spends its key with a `noop/<key>` document in the same collection, under the same index.
- `outbox`: a marker per event, inserted before the event and deleted once JetStream has it,
  so the relay can always find what still needs publishing without scanning `events`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson.binary import Binary
from wfm.events.v1.envelope_pb2 import EventEnvelope

from wfm_runtime import mongo
from wfm_runtime.timefmt import as_utc, utc_now

VERSION_DIGITS = 12


def event_key(aggregate_type: str, aggregate_id: str, version: int) -> str:
    return f"{aggregate_type}/{aggregate_id}/{version:0{VERSION_DIGITS}d}"


def claim_key(aggregate_type: str, idempotency_key: str) -> str:
    return f"{aggregate_type}/{idempotency_key}"


@dataclass(frozen=True)
class Claim:
    """What an idempotency key was first spent on: an event, or a request that changed nothing."""

    fingerprint: str
    aggregate_id: str
    version: int
    envelope: EventEnvelope | None  # None: the request changed nothing; it saw `version`


@dataclass(frozen=True)
class PendingEvent:
    marker_id: str
    event_key: str
    envelope: EventEnvelope
    created_at: datetime


class EventStore:
    def __init__(self, db: mongo.Database) -> None:
        self._events = db["events"]
        self._outbox = db["outbox"]
        # Concurrent commands share round trips (group commit); each insert keeps its own key.
        self._insert_event = mongo.InsertBatcher(self._events).insert
        self._insert_marker = mongo.InsertBatcher(self._outbox).insert

    async def setup(self) -> None:
        # Every document sets `idempotency` (rule 5 of docs/ferretdb.md): the index is unique.
        await mongo.ensure_indexes(self._events, (["idempotency"], True))
        # Serves per-aggregate reads on MongoDB; FerretDB's SQLite backend only uses `_id`.
        await mongo.ensure_indexes(self._events, (["aggregate_id", "version"], False))

    # --- idempotency -------------------------------------------------------------------
    async def claim_of(self, aggregate_type: str, idempotency_key: str) -> Claim | None:
        """What the key was spent on, if it was (an event or a no-change record)."""
        key = claim_key(aggregate_type, idempotency_key)
        doc = await mongo.find_first(self._events, {"idempotency": key})
        if doc is None:
            return None
        if doc.get("noop"):
            aggregate_id, version = doc["noop_aggregate_id"], int(doc["noop_version"])
            return Claim(doc["fingerprint"], aggregate_id, version, None)
        return Claim(doc["fingerprint"], doc["aggregate_id"], int(doc["version"]), _envelope(doc))

    async def record_noop(
        self,
        aggregate_type: str,
        idempotency_key: str,
        fingerprint: str,
        aggregate_id: str,
        version: int,
    ) -> bool:
        """Spends the key of a request that changed nothing; False if it was spent before."""
        key = claim_key(aggregate_type, idempotency_key)
        # No `aggregate_id`/`version` fields: per-aggregate reads of events never see it.
        return await self._insert_event(
            {
                "_id": f"noop/{key}",
                "idempotency": key,
                "fingerprint": fingerprint,
                "noop": True,
                "noop_aggregate_id": aggregate_id,
                "noop_version": version,
                "recorded_at": utc_now(),
            }
        )

    # --- events ------------------------------------------------------------------------
    async def append(self, envelope: EventEnvelope, fingerprint: str = "") -> bool:
        """Commits one event and spends its idempotency key; False if its version was taken
        (a concurrent writer won) or its key was spent before (see `claim_of`)."""
        key = event_key(envelope.aggregate_type, envelope.aggregate_id, envelope.aggregate_version)
        data = Binary(envelope.SerializeToString())
        occurred_at = envelope.occurred_at.ToDatetime()
        # The marker's id is the event id (unique per attempt), so attempts never collide.
        marker = {
            "_id": envelope.event_id,
            "event_key": key,
            "envelope": data,
            "created_at": utc_now(),
        }
        if not await self._insert_marker(marker):
            raise RuntimeError(f"event id {envelope.event_id} used twice")
        event = {
            "_id": key,
            "aggregate_type": envelope.aggregate_type,
            "aggregate_id": envelope.aggregate_id,
            "version": envelope.aggregate_version,
            "event_type": envelope.event_type,
            "occurred_at": occurred_at,
            # A request without a key (none today) spends a key of its own: the event id.
            "idempotency": claim_key(
                envelope.aggregate_type, envelope.idempotency_key or f"event/{envelope.event_id}"
            ),
            "fingerprint": fingerprint,
            "envelope": data,
        }
        if await self._insert_event(event):
            return True
        await mongo.delete(self._outbox, envelope.event_id)
        return False

    async def get(
        self, aggregate_type: str, aggregate_id: str, version: int
    ) -> EventEnvelope | None:
        doc = await mongo.get(self._events, event_key(aggregate_type, aggregate_id, version))
        return _envelope(doc) if doc else None

    async def is_committed(self, pending: PendingEvent) -> bool:
        """True if the marker's event is the one stored at its version (not a lost attempt)."""
        doc = await mongo.get(self._events, pending.event_key)
        return doc is not None and _envelope(doc).event_id == pending.envelope.event_id

    # --- outbox ------------------------------------------------------------------------
    async def pending(self, limit: int = 1000) -> list[PendingEvent]:
        docs = await mongo.find_all(self._outbox, {}, sort=[("_id", 1)], limit=limit)
        return [
            PendingEvent(d["_id"], d["event_key"], _envelope(d), as_utc(d["created_at"]))
            for d in docs
        ]

    async def published(self, marker_id: str) -> None:
        await mongo.delete(self._outbox, marker_id)

    async def published_many(self, marker_ids: list[str]) -> None:
        await mongo.delete_ids(self._outbox, marker_ids)


def _envelope(doc: dict[str, Any]) -> EventEnvelope:
    envelope = EventEnvelope()
    envelope.ParseFromString(bytes(doc["envelope"]))
    return envelope
