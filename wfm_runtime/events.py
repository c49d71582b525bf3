"""The event envelope (`wfm.events.v1.EventEnvelope`): building, naming, unpacking."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TypeVar

from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.message import DecodeError, Message
from wfm.events.v1.envelope_pb2 import EventEnvelope

from wfm_runtime.timefmt import to_timestamp

M = TypeVar("M", bound=Message)


def new_envelope(
    *,
    producer: str,
    aggregate_type: str,
    aggregate_id: str,
    version: int,
    payload: Message,
    occurred_at: datetime,
    idempotency_key: str = "",
    request_id: str = "",
) -> EventEnvelope:
    packed = AnyProto()
    packed.Pack(payload, type_url_prefix="type.wfm/")
    return EventEnvelope(
        event_id=str(uuid.uuid4()),
        event_type=payload.DESCRIPTOR.full_name,
        occurred_at=to_timestamp(occurred_at),
        producer=producer,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        aggregate_version=version,
        payload=packed,
        idempotency_key=idempotency_key,
        request_id=request_id,
    )


def short_type(event_type: str) -> str:
    return event_type.rsplit(".", 1)[-1]


# Subjects and stream names start with a namespace ("wfm"); a system that shares a NATS
# server with another (a test run on an external server, say) uses a namespace of its own.
DEFAULT_NAMESPACE = "wfm"


def subject(envelope: EventEnvelope, namespace: str = DEFAULT_NAMESPACE) -> str:
    """`<namespace>.<producer>.<aggregate type>.<EventName>.<aggregate id>`."""
    return (
        f"{namespace}.{envelope.producer}.{envelope.aggregate_type}."
        f"{short_type(envelope.event_type)}.{envelope.aggregate_id}"
    )


def stream_name(producer: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    return f"{namespace.upper()}_{producer.upper()}"


def stream_subjects(producer: str, namespace: str = DEFAULT_NAMESPACE) -> list[str]:
    return [f"{namespace}.{producer}.>"]


def unpack(envelope: EventEnvelope, cls: type[M]) -> M:
    message = cls()
    if not envelope.payload.Unpack(message):
        raise TypeError(f"{envelope.event_type} is not {cls.DESCRIPTOR.full_name}")
    return message


def parse(data: bytes) -> EventEnvelope | None:
    """Parses an envelope; None for bytes that are not one (they are logged and skipped)."""
    envelope = EventEnvelope()
    try:
        envelope.ParseFromString(data)
    except DecodeError:
        return None
    if not envelope.event_id or not envelope.aggregate_id or envelope.aggregate_version < 1:
        return None
    return envelope
