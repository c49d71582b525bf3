"""Blocking clients for scripts and the CLI: the async clients, run on a private event loop.

    with Wfm() as wfm:
        wfm.availability.set_status("a-1001", "break")
        for agent in wfm.directory.all_agents(team="pune-night"):
            print(agent.display_name)

The loop runs in a daemon thread owned by the `Wfm` object, so blocking calls work from any
thread, even one whose own event loop is running (a Jupyter cell, a test).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Iterable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from wfm.availability.v1 import availability_service_pb2 as availability_pb

from wfm_sdk.aio import AsyncWfm, AuditClient, AvailabilityClient, DirectoryClient
from wfm_sdk.config import ClientConfig
from wfm_sdk.rpc import TableClient
from wfm_sdk.services import PerformanceClient

P = ParamSpec("P")
T = TypeVar("T")
A = TypeVar("A")


class Portal:
    """An event loop in a thread of its own; `run(coro)` blocks until the coroutine is done."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="wfm-sdk", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def iterate(self, stream: AsyncIterator[T]) -> Generator[T, None, None]:
        """A blocking iterator over an async one (closed when the caller stops early)."""
        try:
            while True:
                pending = asyncio.run_coroutine_threadsafe(_next(stream), self._loop)
                try:
                    item = pending.result()
                except StopAsyncIteration:
                    return
                except BaseException:
                    # Ctrl-C while waiting: stop the read on the loop before closing the stream.
                    pending.cancel()
                    concurrent.futures.wait([pending], timeout=5)
                    raise
                yield item
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None and not self._loop.is_closed():
                with contextlib.suppress(Exception):
                    self.run(close())

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


async def _next(stream: AsyncIterator[T]) -> T:
    return await stream.__anext__()


class _Blocking(Generic[A]):
    def __init__(self, portal: Portal, client: A) -> None:
        self._portal = portal
        self._async = client


def blocking(
    method: Callable[Concatenate[A, P], Awaitable[T]],
) -> Callable[Concatenate[_Blocking[A], P], T]:
    """The blocking twin of an async client method (same parameters, same result)."""

    def call(self: _Blocking[A], *args: P.args, **kwargs: P.kwargs) -> T:
        return self._portal.run(_awaited(method(self._async, *args, **kwargs)))

    call.__doc__ = method.__doc__
    call.__name__ = getattr(method, "__name__", "call")
    return call


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


class Availability(_Blocking[AvailabilityClient]):
    set_status = blocking(AvailabilityClient.set_status)
    get_availability = blocking(AvailabilityClient.get_availability)
    list_availability = blocking(AvailabilityClient.list_availability)
    all_availability = blocking(AvailabilityClient.all_availability)
    get_status_history = blocking(AvailabilityClient.get_status_history)

    def watch_availability(
        self, *, team: str = ""
    ) -> Generator[availability_pb.WatchAvailabilityResponse, None, None]:
        """The board, then every change; close the generator (or break) to stop watching."""
        return self._portal.iterate(self._async.watch_availability(team=team))


class Directory(_Blocking[DirectoryClient]):
    create_team = blocking(DirectoryClient.create_team)
    get_team = blocking(DirectoryClient.get_team)
    list_teams = blocking(DirectoryClient.list_teams)
    all_teams = blocking(DirectoryClient.all_teams)
    update_team = blocking(DirectoryClient.update_team)
    create_agent = blocking(DirectoryClient.create_agent)
    update_agent = blocking(DirectoryClient.update_agent)
    get_agent = blocking(DirectoryClient.get_agent)
    list_agents = blocking(DirectoryClient.list_agents)
    all_agents = blocking(DirectoryClient.all_agents)


class Audit(_Blocking[AuditClient]):
    list_audit_records = blocking(AuditClient.list_audit_records)


class Table(_Blocking[TableClient]):
    """The blocking twin of a table-built client (same methods, same arguments)."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._async, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._portal.run(_awaited(method(*args, **kwargs)))

        call.__name__ = name
        return call

    def all_pages(self, name: str, items: str, **fields: Any) -> list[Any]:
        return self._portal.run(self._async.all_pages(name, items, **fields))


class Performance(Table):
    def record_cases(self, requests: Iterable[Any]) -> Any:
        """Streams the cases of `requests` (any iterable: a generator can report progress)."""
        client = self._async
        assert isinstance(client, PerformanceClient)

        async def each() -> AsyncIterator[Any]:
            for request in requests:
                yield request

        return self._portal.run(client.record_cases(each()))


class Wfm:
    """Every service, blocking. Close it (or use `with`) to release its channels and thread."""

    def __init__(self, config: ClientConfig | None = None) -> None:
        self.config = config or ClientConfig.load()
        self._portal = Portal()
        self._async = AsyncWfm(self.config)

    @property
    def availability(self) -> Availability:
        return Availability(self._portal, self._async.availability)

    @property
    def directory(self) -> Directory:
        return Directory(self._portal, self._async.directory)

    @property
    def roster(self) -> Table:
        return Table(self._portal, self._async.roster)

    @property
    def training(self) -> Table:
        return Table(self._portal, self._async.training)

    @property
    def performance(self) -> Performance:
        return Performance(self._portal, self._async.performance)

    def audit(self, service: str) -> Audit:
        return Audit(self._portal, self._async.audit(service))

    def close(self) -> None:
        self._portal.run(self._async.close())
        self._portal.stop()

    def __enter__(self) -> Wfm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
