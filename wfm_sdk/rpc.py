"""Clients built from a table of RPCs: one method per RPC, taking the request's fields.

    roster = wfm.roster
    change = await roster.assign_shift(agent="agents/a-1001", shift_id="s-1", spec=spec)
    week = await roster.get_team_roster(team="teams/pune-night", week_start="2026-11-23")

A method takes a ready request message, or its fields as keyword arguments (nested messages as
messages or dicts), never both. Mutating RPCs get an idempotency key generated when none is
given: picked once per call, so retries of UNAVAILABLE send the same key, and put on a copy,
never on the caller's message, so sending that message again is a new change. The newer
services have many RPCs with many fields that keep growing; describing them once in a table
keeps the clients in step with the protos instead of copying every field into a signature.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import Message

from wfm_sdk.calls import ALL_PAGES_SIZE, Caller, every_page, new_idempotency_key
from wfm_sdk.errors import from_rpc_error


@dataclass(frozen=True)
class Rpc:
    """One RPC of a client: its gRPC method name and request message class."""

    method: str
    request: type[Message]

    def build(self, request: Message | None, fields: dict[str, Any]) -> Message:
        if request is not None and fields:
            raise TypeError(f"{self.method}: give a request message or fields, not both")
        message: Any = request if request is not None else self.request(**fields)
        if "idempotency_key" in message.DESCRIPTOR.fields_by_name and not message.idempotency_key:
            # The key goes on a copy: the caller's message stays as given, so one reused for a
            # second change (a loop setting a field and sending again) gets a key of its own
            # instead of the first one, which would answer the first result and drop the change.
            if request is not None:
                message = type(request)()
                message.CopyFrom(request)
            message.idempotency_key = new_idempotency_key()
        built: Message = message
        return built


class TableClient:
    """Base of the table-built clients: `RPCS` maps a method name to its `Rpc`."""

    RPCS: dict[str, Rpc] = {}

    def __init__(self, caller: Caller) -> None:
        self._call = caller

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        rpc = type(self).RPCS.get(name)
        if rpc is None:
            raise AttributeError(f"{type(self).__name__} has no method {name!r}")

        async def call(request: Message | None = None, /, **fields: Any) -> Any:
            return await self._call.unary(rpc.method, rpc.build(request, fields))

        call.__name__ = name
        return call

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *type(self).RPCS})

    async def all_pages(self, name: str, items: str, **fields: Any) -> list[Any]:
        """Every page of the List RPC `name`; `items` is the repeated field of the response."""
        list_page = getattr(self, name)
        return await every_page(
            lambda token: list_page(page_size=ALL_PAGES_SIZE, page_token=token, **fields), items
        )

    async def _client_stream(self, method: str, requests: AsyncIterable[Message]) -> Any:
        """A client stream (never retried: the requests are consumed as they are sent)."""

        async def stamped() -> AsyncIterator[Message]:
            async for request in requests:
                yield Rpc(method, type(request)).build(request, {})

        try:
            return await self._call.client_stream(method, stamped())
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
