"""What a live stream's reader has not read yet: per key, only the newest message.

A server-streaming RPC that relays bus messages (WatchAvailability) cannot send faster than its
client reads: gRPC flow control blocks the `yield` of a client that stopped reading (a laptop
lid closed, a stalled network). Whatever the bus delivers meanwhile waits here, and a message
for a key that already has one waiting replaces it (if newer). So a stalled reader holds at
most one message per key (per agent: bounded by the floor, not by how long it stalls), and when
it reads again it gets each key's latest state, the states in between skipped. A board shows
each agent's state now, so nothing it needs is lost, and nothing is read from a view that may
still be behind the bus. A reader that keeps up gets every message, in order.

`Backlog` is the decision, without I/O; `LiveFeed` adds the waiting for the event loop.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Generic, TypeVar

T = TypeVar("T")


class Backlog(Generic[T]):
    """Per key the newest unread message (by `rank`, e.g. the aggregate's version), in the
    order of each key's latest arrival."""

    def __init__(self) -> None:
        self._waiting: OrderedDict[str, tuple[int, T]] = OrderedDict()
        self.skipped = 0  # messages never sent: replaced by a newer one, or older on arrival
        self.high_water = 0  # most messages ever waiting at once

    def __len__(self) -> int:
        return len(self._waiting)

    def push(self, key: str, rank: int, item: T) -> None:
        waiting = self._waiting.get(key)
        if waiting is not None:
            self.skipped += 1
            if waiting[0] >= rank:
                return  # a redelivered or late older message: the newer one stays
            del self._waiting[key]  # goes to the end: its latest arrival is now
        self._waiting[key] = (rank, item)
        self.high_water = max(self.high_water, len(self._waiting))

    def take(self) -> T | None:
        """The message waiting longest, or None when nothing waits."""
        if not self._waiting:
            return None
        _key, (_rank, item) = self._waiting.popitem(last=False)
        return item


class LiveFeed(Backlog[T]):
    """A Backlog whose reader can wait: `push` from a bus callback, `await next()` to read."""

    def __init__(self) -> None:
        super().__init__()
        self._ready = asyncio.Event()

    def push(self, key: str, rank: int, item: T) -> None:
        super().push(key, rank, item)
        self._ready.set()

    async def next(self) -> T:
        while True:
            taken = self.take()
            if taken is not None:
                return taken
            self._ready.clear()
            await self._ready.wait()
