"""Availability persistence: event codec and the write model's state hint (motor only here)."""

from __future__ import annotations

import json
import zlib
from typing import Any

from bson.binary import Binary
from wfm.availability.v1 import availability_service_pb2 as pb
from wfm.availability.v1 import events_pb2
from wfm.events.v1.envelope_pb2 import EventEnvelope

from services.availability import domain
from wfm_runtime import mongo
from wfm_runtime.commands import Behaviour
from wfm_runtime.events import unpack
from wfm_runtime.timefmt import epoch_ms, from_epoch_ms, from_timestamp, to_timestamp

AGGREGATE = "agent_availability"


def status_changed_subjects(namespace: str) -> str:
    return f"{namespace}.availability.{AGGREGATE}.StatusChanged.*"


def status_to_proto(status: domain.Status) -> int:
    return _NUMBER_BY_STATUS[status]


# Proto enum number -> status (UNSPECIFIED and unknown numbers are absent): a table, since
# every event decoded on a projector's or the performance service's path asks twice.
_STATUS_BY_NUMBER: dict[int, domain.Status] = {
    int(number): domain.Status(name.removeprefix("AGENT_STATUS_"))
    for name, number in pb.AgentStatus.items()
    if name != "AGENT_STATUS_UNSPECIFIED"
}


_NUMBER_BY_STATUS = {status: number for number, status in _STATUS_BY_NUMBER.items()}


def status_from_proto(value: int) -> domain.Status | None:
    return _STATUS_BY_NUMBER.get(value)


def encode(event: domain.StatusChanged) -> events_pb2.StatusChanged:
    message = events_pb2.StatusChanged(
        agent_id=event.agent_id,
        team=event.team,
        status=status_to_proto(event.status),  # type: ignore[arg-type]
        reason_code=event.reason_code,
        since=to_timestamp(event.since),
        previous_status=status_to_proto(event.previous_status),  # type: ignore[arg-type]
        previous_reason_code=event.previous_reason_code,
    )
    if event.previous_since is not None:
        message.previous_since.CopyFrom(to_timestamp(event.previous_since))
    return message


def decode(envelope: EventEnvelope) -> domain.StatusChanged:
    message = unpack(envelope, events_pb2.StatusChanged)
    return domain.StatusChanged(
        agent_id=message.agent_id,
        team=message.team,
        status=status_from_proto(message.status) or domain.Status.OFFLINE,
        reason_code=message.reason_code,
        since=from_timestamp(message.since),
        previous_status=status_from_proto(message.previous_status) or domain.Status.OFFLINE,
        previous_since=(
            from_timestamp(message.previous_since) if message.HasField("previous_since") else None
        ),
        previous_reason_code=message.previous_reason_code,
    )


def evolve(state: domain.AgentAvailability, envelope: EventEnvelope) -> domain.AgentAvailability:
    return domain.evolve(state, decode(envelope), envelope.aggregate_version)


class AvailabilityStore:
    """Reads the last projected state as a hint; the event insert is the real check."""

    def __init__(self, board: mongo.Collection) -> None:
        self._board = board

    async def load(self, agent_id: str) -> tuple[domain.AgentAvailability, int]:
        doc = await mongo.get(self._board, board_bucket(agent_id))
        row = bucket_rows(doc).get(agent_id)
        if row is None:
            return domain.AgentAvailability(agent_id), 0
        state = board_row_to_state(agent_id, row)
        return state, state.version

    def behaviour(self) -> Behaviour[domain.AgentAvailability]:
        return Behaviour(
            aggregate_type=AGGREGATE,
            initial=domain.AgentAvailability,
            load=self.load,
            evolve=evolve,
        )


# The board keeps agents in a fixed number of bucket documents, so a projector batch writes at
# most BOARD_BUCKETS documents however many agents it touches (on FerretDB every update scans its
# collection; on MongoDB fewer, larger writes are cheaper too).
BOARD_BUCKETS = 2

# A bucket's agents are one JSON value (as bytes), not nested fields: FerretDB converts every
# field of a document it scans or writes, and with 100 agents as 400 fields the board's updates
# took half of FerretDB's CPU under SetStatus load (docs/benchmarks.md). A row is
# [status, reason code, since as Unix milliseconds or null, version].
BucketRow = list[Any]
ROW_VERSION = 3


def board_bucket(agent_id: str) -> str:
    return f"bucket-{zlib.crc32(agent_id.encode()) % BOARD_BUCKETS:02d}"


def encode_bucket(rows: dict[str, BucketRow]) -> dict[str, Any]:
    """The fields of a bucket document holding these agents' rows."""
    return {"rows": Binary(json.dumps(rows, separators=(",", ":")).encode())}


def bucket_rows(doc: dict[str, Any] | None) -> dict[str, BucketRow]:
    if not doc or "rows" not in doc:
        return {}
    rows: dict[str, BucketRow] = json.loads(bytes(doc["rows"]))
    return rows


def board_row(event: domain.StatusChanged, version: int) -> BucketRow:
    since = epoch_ms(event.since) if event.since is not None else None
    return [event.status.value, event.reason_code, since, version]


def board_row_to_state(agent_id: str, row: BucketRow) -> domain.AgentAvailability:
    status, reason_code, since_ms, version = row
    return domain.AgentAvailability(
        agent_id=agent_id,
        status=domain.Status(str(status)),
        reason_code=str(reason_code),
        since=from_epoch_ms(since_ms) if since_ms is not None else None,
        version=int(version),
    )
