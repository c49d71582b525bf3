"""The event store: the commit point of every change, written to the MongoDB/FerretDB subset.

Collections in the service's own database:
- `events`: append-only, `_id` = `<aggregate type>/<aggregate id>/<version>`. The insert is the
  commit point: the unique `_id` makes two writers of the same version fail atomically on
  MongoDB 7 and on FerretDB v1 alike (conditional updates are not atomic on FerretDB). Each
  event also holds its request's idempotency key (`idempotency`, unique index), so the same
  insert spends the key: a retried request cannot commit twice. A request that changed nothing
  spends its key with a `noop/<key>` document in the same collection, under the same index.
- `relays`: one document per running relay, its publish horizon (see `wfm_runtime.relay`), and
  `relay_recoveries`: one unique insert per dead relay's horizon that was republished.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson.binary import Binary
from wfm.events.v1.envelope_pb2 import EventEnvelope

from wfm_runtime import mongo
from wfm_runtime.timefmt import as_utc, from_timestamp, utc_now

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
    # A request made of many commands (CommandRunner.spend_key): the aggregates it set out to
    # change, as its first attempt found them.
    reach: tuple[str, ...] = ()


class EventStore:
    def __init__(self, db: mongo.Database) -> None:
        self._events = db["events"]
        self._relays = db["relays"]
        self._recoveries = db["relay_recoveries"]
        # Concurrent commands share round trips (group commit); each insert keeps its own key.
        self._insert_event = mongo.InsertBatcher(self._events).insert

    async def setup(self) -> None:
        # Every document sets `idempotency` (rule 5 of docs/ferretdb.md): the index is unique.
        await mongo.ensure_indexes(self._events, (["idempotency"], True))
        # Serve per-aggregate reads and a dead relay's recovery on MongoDB; FerretDB's SQLite
        # backend only uses `_id`.
        await mongo.ensure_indexes(self._events, (["aggregate_id", "version"], False))
        await mongo.ensure_indexes(self._events, (["occurred_at"], False))

    # --- idempotency -------------------------------------------------------------------
    async def claim_of(self, aggregate_type: str, idempotency_key: str) -> Claim | None:
        """What the key was spent on, if it was (an event or a no-change record)."""
        key = claim_key(aggregate_type, idempotency_key)
        doc = await mongo.find_first(self._events, {"idempotency": key})
        if doc is None:
            return None
        if doc.get("noop"):
            aggregate_id, version = doc["noop_aggregate_id"], int(doc["noop_version"])
            reach = tuple(str(a) for a in doc.get("reach") or ())
            return Claim(doc["fingerprint"], aggregate_id, version, None, reach)
        return Claim(doc["fingerprint"], doc["aggregate_id"], int(doc["version"]), _envelope(doc))

    async def record_noop(
        self,
        aggregate_type: str,
        idempotency_key: str,
        fingerprint: str,
        aggregate_id: str,
        version: int,
        *,
        reach: tuple[str, ...] = (),
    ) -> bool:
        """Spends the key of a request that changed nothing; False if it was spent before.
        `reach`: see Claim."""
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
                "reach": list(reach),
                "recorded_at": utc_now(),
            }
        )

    # --- events ------------------------------------------------------------------------
    async def append(self, envelope: EventEnvelope, fingerprint: str = "") -> bool:
        """Commits one event and spends its idempotency key; False if its version was taken
        (a concurrent writer won) or its key was spent before (see `claim_of`)."""
        key = event_key(envelope.aggregate_type, envelope.aggregate_id, envelope.aggregate_version)
        event = {
            "_id": key,
            "aggregate_type": envelope.aggregate_type,
            "aggregate_id": envelope.aggregate_id,
            "version": envelope.aggregate_version,
            "event_type": envelope.event_type,
            "occurred_at": from_timestamp(envelope.occurred_at),
            # A request without a key (none today) spends a key of its own: the event id.
            "idempotency": claim_key(
                envelope.aggregate_type, envelope.idempotency_key or f"event/{envelope.event_id}"
            ),
            "fingerprint": fingerprint,
            "envelope": Binary(envelope.SerializeToString()),
        }
        return await self._insert_event(event)

    async def get(
        self, aggregate_type: str, aggregate_id: str, version: int
    ) -> EventEnvelope | None:
        doc = await mongo.get(self._events, event_key(aggregate_type, aggregate_id, version))
        return _envelope(doc) if doc else None

    async def is_stored(self, envelope: EventEnvelope) -> bool:
        """True if this very event (not another attempt at its version) is committed."""
        stored = await self.get(
            envelope.aggregate_type, envelope.aggregate_id, envelope.aggregate_version
        )
        return stored is not None and stored.event_id == envelope.event_id

    async def events_since(self, since: datetime) -> list[EventEnvelope]:
        """Every event that occurred at or after `since`, in version order per aggregate."""
        docs = await mongo.find_all(self._events, {"occurred_at": {"$gte": since}})
        docs.sort(key=lambda d: (d["aggregate_type"], d["aggregate_id"], d["version"]))
        return [_envelope(d) for d in docs]

    # --- relays ------------------------------------------------------------------------
    async def save_relay(self, relay_id: str, horizon: datetime, heartbeat: datetime) -> None:
        await mongo.set_fields(self._relays, relay_id, {"horizon": horizon, "heartbeat": heartbeat})

    async def relays(self) -> list[RelayRecord]:
        docs = await mongo.find_all(self._relays, {})
        return [
            RelayRecord(str(d["_id"]), as_utc(d["horizon"]), as_utc(d["heartbeat"])) for d in docs
        ]

    async def forget_relay(self, relay_id: str) -> None:
        await mongo.delete(self._relays, relay_id)

    async def is_recovered(self, record: RelayRecord) -> bool:
        return await mongo.get(self._recoveries, record.recovery_key) is not None

    async def mark_recovered(self, record: RelayRecord, by: str) -> None:
        await mongo.insert_new(
            self._recoveries, [{"_id": record.recovery_key, "by": by, "at": utc_now()}]
        )


@dataclass(frozen=True)
class RelayRecord:
    """A relay's promise: every event its process committed before `horizon` is published."""

    relay_id: str
    horizon: datetime
    heartbeat: datetime

    @property
    def recovery_key(self) -> str:
        # The heartbeat is part of it: a relay that was only paused and wrote again is a new
        # record, recovered again if it then dies.
        return f"{self.relay_id}/{self.heartbeat.isoformat()}"


def _envelope(doc: dict[str, Any]) -> EventEnvelope:
    envelope = EventEnvelope()
    envelope.ParseFromString(bytes(doc["envelope"]))
    return envelope
