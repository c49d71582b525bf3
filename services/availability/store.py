"""Availability persistence: event codec and the write model's state hint (motor only here)."""

from __future__ import annotations

import zlib
from datetime import datetime
from typing import Any

from wfm.availability.v1 import availability_service_pb2 as pb
from wfm.availability.v1 import events_pb2
from wfm.events.v1.envelope_pb2 import EventEnvelope

from services.availability import domain
from wfm_runtime import mongo
from wfm_runtime.commands import Behaviour
from wfm_runtime.events import unpack
from wfm_runtime.timefmt import as_utc, from_timestamp, to_timestamp

AGGREGATE = "agent_availability"


def status_changed_subjects(namespace: str) -> str:
    return f"{namespace}.availability.{AGGREGATE}.StatusChanged.*"


def status_to_proto(status: domain.Status) -> int:
    return int(pb.AgentStatus.Value(f"AGENT_STATUS_{status.value}"))


# Proto enum number -> status (UNSPECIFIED and unknown numbers are absent): a table, since
# every event decoded on a projector's or the performance service's path asks twice.
_STATUS_BY_NUMBER: dict[int, domain.Status] = {
    int(number): domain.Status(name.removeprefix("AGENT_STATUS_"))
    for name, number in pb.AgentStatus.items()
    if name != "AGENT_STATUS_UNSPECIFIED"
}


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
        entry = (doc or {}).get("agents", {}).get(agent_id)
        if entry is None:
            return domain.AgentAvailability(agent_id), 0
        state = board_entry_to_state(agent_id, entry)
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


def board_bucket(agent_id: str) -> str:
    return f"bucket-{zlib.crc32(agent_id.encode()) % BOARD_BUCKETS:02d}"


def board_entry_to_state(agent_id: str, entry: dict[str, Any]) -> domain.AgentAvailability:
    since = entry.get("since")
    return domain.AgentAvailability(
        agent_id=agent_id,
        status=domain.Status(str(entry["status"])),
        reason_code=str(entry.get("reason_code", "")),
        since=as_utc(since) if isinstance(since, datetime) else None,
        version=int(entry.get("version", 0)),
    )


def board_entry(event: domain.StatusChanged, version: int) -> dict[str, Any]:
    return {
        "status": event.status.value,
        "reason_code": event.reason_code,
        "since": event.since,
        "version": version,
    }
