"""The event store: the commit point of every change, written to the MongoDB/FerretDB subset.

Three collections in the service's own database:
- `events`: append-only, `_id` = `<aggregate type>/<aggregate id>/<version>`. The insert is the
  commit point: the unique `_id` makes two writers of the same version fail atomically on
  MongoDB 7 and on FerretDB v1 alike (conditional updates are not atomic on FerretDB).
- `idempotency`: one claim per idempotency key, inserted before the event (unique `_id`).
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
    """An idempotency record: which request fingerprint owns a key and where its event goes."""

    key: str
    fingerprint: str
    aggregate_id: str
    target_version: int
    claimed_at: datetime
    # The request changed nothing: target_version is the version it saw, with no event of its own.
    noop: bool = False


@dataclass(frozen=True)
class PendingEvent:
    marker_id: str
    event_key: str
    envelope: EventEnvelope
    created_at: datetime


class EventStore:
    def __init__(self, db: mongo.Database) -> None:
        self._events = db["events"]
        self._claims = db["idempotency"]
        self._outbox = db["outbox"]
        # Concurrent commands share round trips (group commit); each insert keeps its own key.
        self._insert_event = mongo.InsertBatcher(self._events).insert
        self._insert_claim = mongo.InsertBatcher(self._claims).insert
        self._insert_marker = mongo.InsertBatcher(self._outbox).insert

    async def setup(self) -> None:
        # Serves per-aggregate reads on MongoDB; FerretDB's SQLite backend only uses `_id`.
        await mongo.ensure_indexes(self._events, (["aggregate_id", "version"], False))

    # --- idempotency -------------------------------------------------------------------
    async def claim(self, aggregate_type: str, claim: Claim) -> Claim | None:
        """Inserts the claim; returns the existing one if the key was used before."""
        doc = {
            "_id": claim_key(aggregate_type, claim.key),
            "fingerprint": claim.fingerprint,
            "aggregate_id": claim.aggregate_id,
            "target_version": claim.target_version,
            "claimed_at": claim.claimed_at,
        }
        if await self._insert_claim(doc):
            return None
        existing = await mongo.get(self._claims, claim_key(aggregate_type, claim.key))
        if existing is None:  # released between our insert and read: treat as taken, retry later
            return claim
        return Claim(
            key=claim.key,
            fingerprint=existing["fingerprint"],
            aggregate_id=existing["aggregate_id"],
            target_version=int(existing["target_version"]),
            claimed_at=as_utc(existing["claimed_at"]),
            noop=bool(existing.get("noop", False)),
        )

    async def repoint_claim(self, aggregate_type: str, key: str, target_version: int) -> None:
        await mongo.set_fields(
            self._claims,
            claim_key(aggregate_type, key),
            {"target_version": target_version, "claimed_at": utc_now()},
            upsert=False,
        )

    async def settle_noop_claim(self, aggregate_type: str, key: str, version: int) -> None:
        """Keeps the key of a request that changed nothing, so a late retry cannot apply it."""
        await mongo.set_fields(
            self._claims,
            claim_key(aggregate_type, key),
            {"target_version": version, "noop": True, "claimed_at": utc_now()},
            upsert=False,
        )

    async def release_claim(self, aggregate_type: str, key: str) -> None:
        await mongo.delete(self._claims, claim_key(aggregate_type, key))

    # --- events ------------------------------------------------------------------------
    async def append(self, envelope: EventEnvelope) -> bool:
        """Commits one event; False if its version is taken (a concurrent writer won)."""
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
