"""Typed exceptions for failed calls, with the gRPC status and its decoded google.rpc details.

Every service answers errors the AIP-193 way: a `google.rpc.Status` in the trailing metadata
(`grpc-status-details-bin`) with an `ErrorInfo` and, depending on the code, `BadRequest` field
violations, `PreconditionFailure` rule violations, `ResourceInfo` or `RetryInfo`.
`from_rpc_error` turns that into one exception class per status code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2

_DETAILS_KEY = "grpc-status-details-bin"
_DETAIL_KINDS: tuple[Any, ...] = (
    error_details_pb2.ErrorInfo,
    error_details_pb2.BadRequest,
    error_details_pb2.PreconditionFailure,
    error_details_pb2.ResourceInfo,
    error_details_pb2.RetryInfo,
    error_details_pb2.QuotaFailure,
    error_details_pb2.DebugInfo,
    error_details_pb2.Help,
    error_details_pb2.LocalizedMessage,
)


@dataclass(frozen=True)
class FieldViolation:
    """A request field at fault (google.rpc.BadRequest)."""

    field: str
    description: str


@dataclass(frozen=True)
class RuleViolation:
    """A business rule the change would break (google.rpc.PreconditionFailure)."""

    type: str
    subject: str
    description: str


@dataclass(eq=False)
class WfmError(Exception):
    """A call that failed. `code` is the gRPC status; `details` the decoded detail messages."""

    code: grpc.StatusCode
    message: str
    details: Sequence[Message] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"

    def detail(self, kind: type[Any]) -> Any:
        """The first detail message of `kind`, or None."""
        return next((d for d in self.details if isinstance(d, kind)), None)

    @property
    def reason(self) -> str:
        """ErrorInfo.reason, e.g. `INVALID_ARGUMENT`, `VERSION_CONFLICT` (empty if none)."""
        info = self.detail(error_details_pb2.ErrorInfo)
        return str(info.reason) if info else ""

    @property
    def field_violations(self) -> list[FieldViolation]:
        bad = self.detail(error_details_pb2.BadRequest)
        if bad is None:
            return []
        return [FieldViolation(v.field, v.description) for v in bad.field_violations]

    @property
    def rule_violations(self) -> list[RuleViolation]:
        failure = self.detail(error_details_pb2.PreconditionFailure)
        if failure is None:
            return []
        return [RuleViolation(v.type, v.subject, v.description) for v in failure.violations]

    @property
    def resource(self) -> tuple[str, str] | None:
        """(resource type, resource name) from ResourceInfo, if the server named one."""
        info = self.detail(error_details_pb2.ResourceInfo)
        return (info.resource_type, info.resource_name) if info else None

    @property
    def retry_delay_s(self) -> float | None:
        info = self.detail(error_details_pb2.RetryInfo)
        if info is None:
            return None
        return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)


class InvalidArgument(WfmError):
    """The request is malformed; `field_violations` says which fields and why."""


class NotFound(WfmError):
    pass


class AlreadyExists(WfmError):
    pass


class FailedPrecondition(WfmError):
    """The change would break a rule; `rule_violations` lists every one."""


class Aborted(WfmError):
    """Optimistic concurrency: the entity changed since it was read (stale expected version)."""


class PermissionDenied(WfmError):
    pass


class Unauthenticated(WfmError):
    pass


class ResourceExhausted(WfmError):
    """Rate limited; `retry_delay_s` says when to try again."""


class Unavailable(WfmError):
    """The service (or its data store) cannot be reached; safe to retry."""


class DeadlineExceeded(WfmError):
    pass


class Internal(WfmError):
    pass


_CLASSES: dict[grpc.StatusCode, type[WfmError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ABORTED: Aborted,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}


def error_for(code: grpc.StatusCode, message: str, details: Sequence[Message] = ()) -> WfmError:
    """The typed exception for a status code (Internal for anything unexpected)."""
    return _CLASSES.get(code, Internal)(code, message, list(details))


def from_rpc_error(exc: grpc.RpcError) -> WfmError:
    """Decodes a failed call (grpc.aio.AioRpcError or a sync grpc.RpcError/grpc.Call)."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    message = exc.details() if hasattr(exc, "details") else str(exc)
    trailing = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    return error_for(code, message or code.name, decode_details(trailing))


def decode_details(trailing_metadata: Any) -> list[Message]:
    """The google.rpc detail messages carried in a call's trailing metadata."""
    for key, value in trailing_metadata or ():
        if key != _DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status()
        try:
            status.ParseFromString(value)
        except DecodeError:
            return []
        unpacked = (_unpack(detail) for detail in status.details)
        return [message for message in unpacked if message is not None]
    return []


def _unpack(detail: Any) -> Message | None:
    """The detail as its google.rpc message; None when its type is unknown or its bytes are
    corrupt (one bad detail must not hide the error, nor the other details, from the caller)."""
    kind = next((k for k in _DETAIL_KINDS if detail.Is(k.DESCRIPTOR)), None)
    if kind is None:
        return None
    message: Message = kind()
    try:
        detail.Unpack(message)
    except DecodeError:
        return None
    return message
