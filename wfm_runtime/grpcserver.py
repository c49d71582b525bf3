"""gRPC server bootstrap: interceptors, error mapping, health, reflection, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextvars
import signal
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status

from wfm_runtime import errors
from wfm_runtime import logging as wlog
from wfm_runtime.audit import AuditLog, new_record
from wfm_runtime.auth import PermissionDenied, Principal, RateLimited, Unauthenticated
from wfm_runtime.authz import Guard, Target, batch_audit_names
from wfm_runtime.config import Settings
from wfm_runtime.messaging import NotConnected
from wfm_runtime.mongo import UNREACHABLE

log = wlog.get("grpc")

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
PRINCIPAL: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "principal", default=None
)


def request_id() -> str:
    return REQUEST_ID.get()


def bind(**fields: Any) -> None:
    """Adds fields (e.g. agent_id) to every log line of the current request."""
    wlog.bind(**fields)


# --- error mapping (AIP-193) ---------------------------------------------------------------
_CODES: list[tuple[type[errors.DomainError], int]] = [
    (errors.InvalidArgument, code_pb2.INVALID_ARGUMENT),
    (errors.NotFound, code_pb2.NOT_FOUND),
    (errors.AlreadyExists, code_pb2.ALREADY_EXISTS),
    (errors.FailedPrecondition, code_pb2.FAILED_PRECONDITION),
    (errors.Aborted, code_pb2.ABORTED),
    (errors.Unavailable, code_pb2.UNAVAILABLE),
    (Unauthenticated, code_pb2.UNAUTHENTICATED),
    (PermissionDenied, code_pb2.PERMISSION_DENIED),
    (RateLimited, code_pb2.RESOURCE_EXHAUSTED),
]


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


# Errors quote request values; bounded so a huge value cannot push the status trailers past
# gRPC's metadata limit (the client would get RESOURCE_EXHAUSTED instead of the refusal). The
# limits are in UTF-8 bytes, not characters: grpc-message is percent-encoded (three characters
# per byte outside printable ASCII) and the details go base64, so 2,000 emoji in a message made
# 24 KB of trailers against gRPC's 16 KiB hard limit (8 KiB soft). At most about 3 KB of message
# and 3.5 KB of details go on the wire.
V = TypeVar("V", bound=Message)
MAX_ECHO = 300  # bytes of one quoted value
MAX_MESSAGE = 1000  # bytes of the status message
MAX_VIOLATIONS = 20
MAX_VIOLATION_BYTES = 2400  # of the violations in the details; the message names them all
_ELLIPSIS = "…"


def _clip(text: str, limit: int = MAX_ECHO) -> str:
    """`text` within `limit` bytes of UTF-8, cut on a whole character and marked with …."""
    encoded = text.encode(errors="replace")
    if len(encoded) <= limit:
        return text
    room = limit - len(_ELLIPSIS.encode())
    return encoded[:room].decode(errors="ignore") + _ELLIPSIS


def _fitting(violations: list[V]) -> list[V]:
    """The first violations that fit the details' budget (at least one)."""
    kept: list[V] = []
    size = 0
    for violation in violations:
        size += violation.ByteSize()
        if kept and size > MAX_VIOLATION_BYTES:
            break
        kept.append(violation)
    return kept


def status_for(err: errors.DomainError, domain: str) -> status_pb2.Status:
    code = next((c for cls, c in _CODES if isinstance(err, cls)), code_pb2.UNKNOWN)
    metadata = {_clip(k, 64): _clip(v) for k, v in err.metadata.items()}
    details = [
        _pack(error_details_pb2.ErrorInfo(reason=err.reason, domain=domain, metadata=metadata))
    ]
    if isinstance(err, errors.InvalidArgument):
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=_fitting(
                        [
                            error_details_pb2.BadRequest.FieldViolation(
                                field=_clip(v.field), description=_clip(v.description)
                            )
                            for v in err.violations[:MAX_VIOLATIONS]
                        ]
                    )
                )
            )
        )
    elif isinstance(err, errors.FailedPrecondition):
        details.append(
            _pack(
                error_details_pb2.PreconditionFailure(
                    violations=_fitting(
                        [
                            error_details_pb2.PreconditionFailure.Violation(
                                type=v.type,
                                subject=_clip(v.subject),
                                description=_clip(v.description),
                            )
                            for v in err.violations[:MAX_VIOLATIONS]
                        ]
                    )
                )
            )
        )
    elif isinstance(err, errors.NotFound | errors.AlreadyExists):
        details.append(
            _pack(
                error_details_pb2.ResourceInfo(
                    resource_type=err.resource_type, resource_name=_clip(err.resource_name)
                )
            )
        )
    elif isinstance(err, errors.Unavailable | errors.Aborted | RateLimited):
        delay = float(err.metadata.get("retry_after_s", "0.2"))
        seconds = int(delay)
        details.append(
            _pack(
                error_details_pb2.RetryInfo(
                    retry_delay={"seconds": seconds, "nanos": int((delay - seconds) * 1e9)}
                )
            )
        )
    return status_pb2.Status(code=code, message=_clip(err.message, MAX_MESSAGE), details=details)


def _as_domain_error(exc: BaseException) -> errors.DomainError | None:
    if isinstance(exc, errors.DomainError):
        return exc
    if isinstance(exc, UNREACHABLE):
        return errors.Unavailable("the data store is unreachable; retry shortly")
    if isinstance(exc, NotConnected):
        return errors.Unavailable("the message bus is unreachable; retry shortly")
    if isinstance(exc, TimeoutError):
        return errors.Unavailable("a dependency did not answer in time; retry shortly")
    return None


class ErrorAndContextInterceptor(grpc.aio.ServerInterceptor):
    """Binds request context for logs and maps every exception to a well-formed status."""

    def __init__(
        self,
        domain: str,
        max_call_s: float = 30.0,
        guard: Guard | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self._domain = domain
        self._max_s = max_call_s
        self._guard = guard
        self._audit = audit

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method = details.method
        if handler is None or method.startswith(("/grpc.health", "/grpc.reflection")):
            return handler
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_client_stream(method, handler.stream_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _begin(self, method: str, context: grpc.aio.ServicerContext) -> dict[str, Any]:
        """Binds the request's id and log context; returns its metadata."""
        metadata = dict(context.invocation_metadata() or ())
        rid = str(metadata.get("x-request-id") or uuid.uuid4())
        REQUEST_ID.set(rid)
        PRINCIPAL.set(None)
        wlog.start_request(service=self._domain, request_id=rid, method=method, peer=context.peer())
        return metadata

    async def _admit(self, method: str, metadata: dict[str, Any], request: Any) -> None:
        """Authentication, authorization and rate limits: the one place they are enforced."""
        if self._guard is None:
            return
        principal = self._guard.authenticate(metadata)
        PRINCIPAL.set(principal)  # known from here on, so a refusal is audited with its caller
        wlog.bind(subject=principal.subject)
        await self._guard.authorize(principal, method, request)

    def _audit_call(self, method: str, request: Any, outcome: str) -> None:
        if self._audit is None or self._guard is None:
            return
        rule = self._guard.rule(method)
        if rule is None or not rule.mutating:
            return
        principal = PRINCIPAL.get()
        target = _safe_target(rule.target, request)
        self._audit.record(
            new_record(
                subject=principal.subject if principal else "",
                roles=tuple(sorted(r.value for r in principal.roles)) if principal else (),
                method=method,
                targets=_target_names(target, request),
                outcome=outcome,
                request_id=request_id(),
                service=self._domain,
            )
        )

    def _wrap_unary(self, method: str, behaviour: Any) -> Any:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
            return await self._answer_once(
                method, context, request, lambda: behaviour(request, context), capped=True
            )

        return wrapper

    async def _answer_once(
        self,
        method: str,
        context: grpc.aio.ServicerContext,
        request: Any,
        call: Callable[[], Awaitable[Any]],
        *,
        capped: bool,
    ) -> Any:
        """One answer to one call (unary or client-streaming): admit, run, map errors, audit."""
        start = time.perf_counter()
        metadata = self._begin(method, context)
        outcome = "OK"
        try:
            await self._admit(method, metadata, request)
            if capped:
                # Honour the client's deadline, and cap calls that came without one. (A timeout
                # scope, not wait_for: that would run the call in a task of its own.)
                remaining = context.time_remaining()
                budget = self._max_s if remaining is None else min(remaining, self._max_s)
                async with asyncio.timeout(budget):
                    response = await call()
            else:
                response = await call()
        except (grpc.aio.AbortError, asyncio.CancelledError):
            outcome = "CANCELLED"
            raise
        except Exception as exc:
            status = self._status(exc)
            outcome = code_pb2.Code.Name(status.code)
            await context.abort_with_status(rpc_status.to_status(status))
            raise  # not reached: abort raises
        finally:
            self._audit_call(method, request, outcome)
        log.debug("rpc_ok", ms=round((time.perf_counter() - start) * 1000, 2))
        return response

    def _wrap_stream(self, method: str, behaviour: Any) -> Any:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            metadata = self._begin(method, context)
            try:
                await self._admit(method, metadata, request)
                async for item in behaviour(request, context):
                    yield item
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except Exception as exc:
                await context.abort_with_status(rpc_status.to_status(self._status(exc)))

        return wrapper

    def _wrap_client_stream(self, method: str, behaviour: Any) -> Any:
        """Client streaming: admitted once, on the call (its policy names no per-message target)."""

        async def wrapper(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
            return await self._answer_once(
                method, context, None, lambda: behaviour(_decoded(requests), context), capped=False
            )

        return wrapper

    def _status(self, exc: BaseException) -> status_pb2.Status:
        domain_error = _as_domain_error(exc)
        if domain_error is None:
            log.exception("rpc_internal_error", error=repr(exc))
            return status_pb2.Status(
                code=code_pb2.INTERNAL, message=f"internal error (request id {request_id()})"
            )
        status = status_for(domain_error, f"{self._domain}.wfm")
        log.info(
            "rpc_rejected",
            code=code_pb2.Code.Name(status.code),
            reason=domain_error.reason,
            message=domain_error.message,
        )
        return status


async def _decoded(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """The client's stream, with a message that does not decode refused as INVALID_ARGUMENT.

    grpc decodes each streamed message only when the handler asks for it, so its DecodeError
    surfaces inside the handler (a unary request's never gets that far: grpc answers for it).
    """
    count = 0
    try:
        async for request in requests:
            count += 1
            yield request
    except DecodeError as exc:
        violation = errors.FieldViolation(
            "requests", f"message {count + 1} of the stream is not a valid encoding"
        )
        raise errors.InvalidArgument([violation]) from exc


def _safe_target(extract: Any, request: Any) -> Target:
    try:
        target: Target = extract(request)
    except Exception:
        return Target(unreadable=True)
    return target


def _target_names(target: Target, request: Any) -> tuple[str, ...]:
    names = []  # bounded: refused requests may name anything
    if target.agent_id:
        names.append(_clip(f"agents/{target.agent_id}", 100))
    names += batch_audit_names(target)
    if target.team_id:
        names.append(_clip(f"teams/{target.team_id}", 100))
    resource = _resource_name(request)
    # An agent's or a team's own resources are found by the agent or team already named.
    if resource and not resource.startswith(("agents/", "teams/")):
        names.append(_clip(resource, 100))
    return tuple(names)


_NAME_FIELDS = ("name", "session", "site", "course")


def _resource_name(request: Any) -> str:
    """What a change is about beyond an agent or team (a session, a course, a site...), so the
    audit trail can be searched by it: the request's resource name, the id of what it creates,
    or the name inside the resource it carries (AIP-134 updates)."""
    descriptor = getattr(request, "DESCRIPTOR", None)
    if descriptor is None:
        return ""
    fields = descriptor.fields_by_name
    for field in _NAME_FIELDS:
        if field in fields and isinstance(getattr(request, field), str) and getattr(request, field):
            return str(getattr(request, field))
    created = _created_name(request, fields)
    if created:
        return created
    for field in fields.values():
        inner = getattr(request, field.name) if field.message_type is not None else None
        name = getattr(inner, "name", "") if isinstance(inner, Message) else ""
        if isinstance(name, str) and name:
            return name
    return ""


def _created_name(request: Any, fields: Any) -> str:
    """The name a create request (AIP-133) gives the new resource: its `{resource}_id` field
    next to the `{resource}` message, in the collection named by the resource in lowerCamelCase
    plural (`shift_pattern_id` -> `shiftPatterns/{id}`), under the parent the request names
    (`agent`: `agents/{a}/leaveRequests/{id}`)."""
    for field in fields.values():
        resource = field.name.removesuffix("_id")
        sibling = fields.get(resource)
        new_id = getattr(request, field.name)
        if resource == field.name or sibling is None or sibling.message_type is None:
            continue
        if isinstance(new_id, str) and new_id:
            head, *rest = resource.split("_")
            name = f"{head}{''.join(word.title() for word in rest)}s/{new_id}"
            parent = next((getattr(request, f) for f in ("parent", "agent") if f in fields), "")
            return f"{parent}/{name}" if isinstance(parent, str) and parent else name
    return ""


# --- server --------------------------------------------------------------------------------
Registrar = Callable[[grpc.aio.Server], Iterable[str]]


class GrpcApp:
    """A grpc.aio server with health and reflection; `register` adds the service's servicers."""

    def __init__(
        self,
        settings: Settings,
        register: Registrar,
        guard: Guard | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.settings = settings
        limit = settings.max_message_bytes
        interceptor = ErrorAndContextInterceptor(
            settings.service, settings.write_timeout_s, guard, audit
        )
        self.server = grpc.aio.server(
            interceptors=[interceptor],
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                ("grpc.keepalive_time_ms", 30_000),
                # Shared only by a service's own processes (docs/workers.md); otherwise a second
                # server on the same port must fail, not silently take half the connections.
                ("grpc.so_reuseport", 1 if shares_port(settings) else 0),
            ],
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.service_names = list(register(self.server))
        reflection.enable_server_reflection(
            [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        self.port = 0

    async def start(self, port: int | None = None) -> int:
        port = self.settings.grpc_port if port is None else port
        if shares_port(self.settings) and not self.settings.is_api_worker:
            _check_port_free(self.settings.grpc_host, port)
        address = f"{self.settings.grpc_host}:{port}"
        self.port = self._bind(address)
        await self.server.start()
        for name in [*self.service_names, ""]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("grpc_serving", address=f"{self.settings.grpc_host}:{self.port}")
        return self.port

    def _bind(self, address: str) -> int:
        settings = self.settings
        if settings.plaintext:
            log.warning("grpc_plaintext", note="development flag WFM_DEV_PLAINTEXT=1 is set")
            return int(self.server.add_insecure_port(address))
        if not (settings.tls_cert_file and settings.tls_key_file):
            raise ValueError(
                "gRPC needs TLS: set WFM_TLS_CERT_FILE and WFM_TLS_KEY_FILE "
                "(or WFM_DEV_PLAINTEXT=1 for local development)"
            )
        client_ca = (
            Path(settings.tls_client_ca_file).read_bytes() if settings.tls_client_ca_file else None
        )
        credentials = grpc.ssl_server_credentials(
            [(Path(settings.tls_key_file).read_bytes(), Path(settings.tls_cert_file).read_bytes())],
            root_certificates=client_ca,
            require_client_auth=client_ca is not None,
        )
        return int(self.server.add_secure_port(address, credentials))

    async def stop(self) -> None:
        for name in [*self.service_names, ""]:
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.stop(self.settings.shutdown_grace_s)


def shares_port(settings: Settings) -> bool:
    return settings.workers > 1 or settings.is_api_worker


def _check_port_free(host: str, port: int) -> None:
    """With SO_REUSEPORT a busy port would be shared, not refused: the primary checks first."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC: TIME_WAIT is free
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OSError(f"gRPC port {host}:{port} is in use: {exc.strerror}") from exc


async def wait_for_termination_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
