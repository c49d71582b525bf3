"""Domain errors: pure Python, raised by domain code, mapped to gRPC status in one place.

The mapping (see `grpcserver.status_for`) follows AIP-193: every error carries a
`google.rpc.ErrorInfo` with a reason; bad input adds `BadRequest` field violations,
broken rules add `PreconditionFailure` violations.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


@dataclass(frozen=True)
class RuleViolation:
    """A business rule that a change would break (AIP-193 PreconditionFailure)."""

    type: str  # e.g. "MIN_REST", "OVERLAP"
    subject: str  # what it is about, e.g. "agents/a-1"
    description: str


class DomainError(Exception):
    """Base of every error a client is meant to see."""

    reason: str = "ERROR"

    def __init__(self, message: str, *, reason: str | None = None, **metadata: str) -> None:
        super().__init__(message)
        self.message = message
        if reason:
            self.reason = reason
        self.metadata = metadata


class InvalidArgument(DomainError):
    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: Iterable[FieldViolation]) -> None:
        self.violations = list(violations)
        summary = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(f"invalid request: {summary}")


class NotFound(DomainError):
    reason = "NOT_FOUND"

    def __init__(self, resource_type: str, resource_name: str, message: str = "") -> None:
        self.resource_type = resource_type
        self.resource_name = resource_name
        super().__init__(message or f"{resource_type} {resource_name!r} not found")


class AlreadyExists(DomainError):
    reason = "ALREADY_EXISTS"

    def __init__(self, resource_type: str, resource_name: str) -> None:
        self.resource_type = resource_type
        self.resource_name = resource_name
        super().__init__(f"{resource_type} {resource_name!r} already exists")


class FailedPrecondition(DomainError):
    reason = "FAILED_PRECONDITION"

    def __init__(self, violations: Iterable[RuleViolation], message: str = "") -> None:
        self.violations = list(violations)
        summary = "; ".join(v.description for v in self.violations)
        super().__init__(message or f"rule broken: {summary}")


class Aborted(DomainError):
    """Optimistic concurrency: the entity changed since the caller read it."""

    reason = "VERSION_CONFLICT"


class Unavailable(DomainError):
    """A dependency (MongoDB, NATS) cannot be reached; safe to retry."""

    reason = "DEPENDENCY_UNAVAILABLE"


@dataclass
class Violations:
    """Collects every field violation of a request, then raises them together."""

    items: list[FieldViolation] = field(default_factory=list)

    def add(self, field_path: str, description: str) -> None:
        self.items.append(FieldViolation(field_path, description))

    def check(self, ok: bool, field_path: str, description: str) -> bool:
        if not ok:
            self.add(field_path, description)
        return ok

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)
