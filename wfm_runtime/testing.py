"""Helpers for tests and benchmarks that run the real services in-process."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar, overload

import grpc
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from wfm_runtime import config
from wfm_runtime.auth import AuthConfig, issue_token
from wfm_runtime.config import Settings

T = TypeVar("T")


def isolated_settings(
    service: str,
    mongo_url: str,
    nats_url: str,
    *,
    prefix: str = "",
    auth: AuthConfig | None = None,
    rate_limit_per_s: float = 0.0,
    namespace: str = "wfm",
) -> Settings:
    """Settings on real servers with a database prefix of their own and a free gRPC port.

    Plaintext gRPC (the development flag); tokens are checked when `auth` is given.
    """
    base = config.load(service)
    return replace(
        base,
        dev_mode=True,
        plaintext=True,
        auth=auth,
        auth_enabled=auth is not None,
        rate_limit_per_s=rate_limit_per_s,
        namespace=namespace,
        mongo_url=mongo_url,
        nats_url=nats_url,
        grpc_port=0,
        database_prefix=prefix or f"t{uuid.uuid4().hex[:10]}_",
        relay_sweep_interval_s=0.5,
        shutdown_grace_s=0.5,
    )


@overload
async def eventually(
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], bool] = ...,
    timeout: float = ...,
    interval: float = ...,
) -> T: ...


@overload
async def eventually(
    probe: Callable[[], T],
    until: Callable[[T], bool] = ...,
    timeout: float = ...,
    interval: float = ...,
) -> T: ...


async def eventually(
    probe: Callable[[], Any],
    until: Callable[[Any], bool] = bool,
    timeout: float = 15.0,
    interval: float = 0.05,
) -> Any:
    """Polls `probe` (a coroutine function or a plain one) until `until(result)` holds; the
    last result is returned or reported."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = probe()
        if inspect.isawaitable(result):
            result = await result
        if until(result):
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {result!r}")
        await asyncio.sleep(interval)


class TokenMinter:
    """An ES256 key pair for tests, benchmarks and local development tokens."""

    def __init__(self, public_key_file: Path, issuer: str = "wfm", audience: str = "wfm") -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        public_key_file.parent.mkdir(parents=True, exist_ok=True)
        public_key_file.write_bytes(
            self._key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        self.public_key_file = public_key_file
        self.issuer = issuer
        self.audience = audience

    def auth_config(self) -> AuthConfig:
        return AuthConfig.from_env(
            {
                "WFM_JWT_PUBLIC_KEY_FILES": str(self.public_key_file),
                "WFM_JWT_ISSUER": self.issuer,
                "WFM_JWT_AUDIENCE": self.audience,
            }
        )

    def token(
        self,
        subject: str,
        *roles: str,
        teams: tuple[str, ...] = (),
        ttl_s: int = 3600,
        now: float | None = None,
    ) -> str:
        return issue_token(
            self._key,
            "ES256",
            subject,
            roles,
            teams=teams,
            issuer=self.issuer,
            audience=self.audience,
            ttl_s=ttl_s,
            now=now,
        )


class _BearerMetadata:
    def __init__(self, token: str) -> None:
        self._metadata = (("authorization", f"Bearer {token}"),)

    def _details(self, details: Any) -> Any:
        metadata = tuple(details.metadata or ()) + self._metadata
        return details._replace(metadata=metadata)


# grpc.aio files an interceptor under one call type only, so each type gets its own class.
class _BearerUnary(_BearerMetadata, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _BearerStream(_BearerMetadata, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _BearerClientStream(_BearerMetadata, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(
        self, continuation: Any, details: Any, request_iterator: Any
    ) -> Any:
        return await continuation(self._details(details), request_iterator)


def channel(address: str, token: str = "", own_connection: bool = False) -> grpc.aio.Channel:
    """A plaintext channel (development flag on the server) that sends `token` on every call.

    `own_connection`: a TCP connection of its own, not shared with this process's other channels
    to the same address (as a separate client's would be)."""
    interceptors: list[Any] | None = (
        [_BearerUnary(token), _BearerStream(token), _BearerClientStream(token)] if token else None
    )
    options = [(OWN_CONNECTION_OPTION, 1)] if own_connection else None
    return grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)


# gRPC shares one connection among a process's channels to one address unless this is set.
OWN_CONNECTION_OPTION = "grpc.use_local_subchannel_pool"


def unpack_details(status: Any) -> list[Any]:
    """The `google.rpc` detail messages of a `google.rpc.Status`, unpacked."""
    from google.rpc import error_details_pb2

    kinds: list[Any] = [
        error_details_pb2.ErrorInfo,
        error_details_pb2.BadRequest,
        error_details_pb2.PreconditionFailure,
        error_details_pb2.ResourceInfo,
        error_details_pb2.RetryInfo,
    ]
    unpacked = []
    for detail in status.details:
        kind = next(k for k in kinds if detail.Is(k.DESCRIPTOR))
        message = kind()
        detail.Unpack(message)
        unpacked.append(message)
    return unpacked
