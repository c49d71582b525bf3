"""How every unary call is made: deadline, bearer token, retries with backoff, typed errors.

Retries: a call is retried only when it is idempotent, and only for UNAVAILABLE (the service or
its data store cannot be reached) or RESOURCE_EXHAUSTED (rate limited; the server's RetryInfo
says how long to wait). Reads are idempotent; so is every mutating call, because the client
picks its idempotency key once, before the first attempt, and sends the same key on every retry:
the server applies the change once and answers retries with the first result.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from wfm_sdk.config import ClientConfig, ConfigError
from wfm_sdk.errors import Internal, ResourceExhausted, Unavailable, WfmError, from_rpc_error

T = TypeVar("T")


def new_idempotency_key() -> str:
    """A fresh key for one change (reuse it only to retry that same change)."""
    return f"sdk-{uuid.uuid4()}"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 3.0
    # The longest a server's RetryInfo may make the caller wait before one retry: a call's
    # deadline. Past it the error is raised at once ("try again later"), so a server asking
    # for an hour cannot hang a script or the command line for an hour.
    max_server_delay_s: float = 10.0

    @classmethod
    def of(cls, config: ClientConfig) -> RetryPolicy:
        return cls(
            config.max_attempts,
            config.initial_backoff_s,
            config.max_backoff_s,
            max_server_delay_s=config.timeout_s,
        )

    def delay(self, attempt: int, error: WfmError) -> float:
        """Exponential backoff with full jitter; the server's RetryInfo is a lower bound."""
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * 2 ** (attempt - 1))
        return max(random.uniform(0, ceiling), error.retry_delay_s or 0.0)


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    idempotent: bool,
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Runs `attempt` (one RPC), mapping gRPC errors to typed ones and retrying what is safe."""
    tries = 0
    while True:
        tries += 1
        try:
            return await attempt()
        except grpc.RpcError as exc:
            error = from_rpc_error(exc)
        if not (idempotent and _retryable(error) and tries < policy.max_attempts):
            raise error
        if (error.retry_delay_s or 0.0) > policy.max_server_delay_s:
            raise error
        await sleep(policy.delay(tries, error))


def _retryable(error: WfmError) -> bool:
    """UNAVAILABLE, and RESOURCE_EXHAUSTED when it is a rate limit (the server then says when to
    retry); other exhaustion (e.g. a message over the size limit) would only fail again."""
    if isinstance(error, ResourceExhausted):
        return error.retry_delay_s is not None
    return isinstance(error, Unavailable)


def next_page_token(token: str, seen: set[str]) -> str:
    """The token of the next page ("" after the last), remembered in `seen`. A token handed out
    before would fetch pages already read, again and again: a server bug that must fail, not
    loop forever."""
    if token in seen:
        raise Internal(
            grpc.StatusCode.INTERNAL, f"the server repeated the page token {token!r}: stopped"
        )
    seen.add(token)
    return token


# The page size of the "every page" helpers: few round trips, each well under the message limit.
ALL_PAGES_SIZE = 500


async def every_page(fetch: Callable[[str], Awaitable[Any]], items: str) -> list[Any]:
    """The `items` of every page `fetch(page_token)` returns, from the first to the last."""
    found: list[Any] = []
    token, seen = "", set[str]()
    while True:
        page = await fetch(token)
        found += getattr(page, items)
        token = next_page_token(page.next_page_token, seen)
        if not token:
            return found


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    if not token:
        return ()
    if not (token.isascii() and token.isprintable()):
        raise ConfigError("the token has characters that cannot be sent in a header")
    return (("authorization", f"Bearer {token}"),)


class Caller:
    """Makes the calls of one service's stub: `await caller.unary("GetTeam", request)`.

    `stub` makes the stub when first needed: gRPC asyncio channels belong to the event loop
    they are made in, so they are made inside the first call, on the loop that runs it.
    """

    def __init__(
        self, stub: Callable[[], Any], config: ClientConfig, policy: RetryPolicy | None = None
    ) -> None:
        self._make_stub = stub
        self._stub: Any = None
        self._config = config
        self._policy = policy or RetryPolicy.of(config)

    def _rpc(self, method: str) -> Any:
        if self._stub is None:
            self._stub = self._make_stub()
        return getattr(self._stub, method)

    async def unary(
        self, method: str, request: Any, *, idempotent: bool = True, timeout_s: float | None = None
    ) -> Any:
        rpc = self._rpc(method)
        deadline = timeout_s or self._config.timeout_s
        metadata = bearer(self._config.token)

        async def attempt() -> Any:
            return await rpc(request, timeout=deadline, metadata=metadata)

        return await call_with_retries(attempt, idempotent=idempotent, policy=self._policy)

    def stream(self, method: str, request: Any) -> Any:
        """A server stream with no deadline (it lasts as long as the caller reads it)."""
        return self._rpc(method)(request, metadata=bearer(self._config.token))

    async def client_stream(self, method: str, requests: Any, *, timeout_s: float = 0) -> Any:
        """A client stream; its deadline is longer than a unary call's (default 30 times the
        configured one) because it lasts as long as the caller has requests to send."""
        deadline = timeout_s or self._config.timeout_s * 30
        call = self._rpc(method)(requests, timeout=deadline, metadata=bearer(self._config.token))
        return await call
