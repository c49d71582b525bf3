"""What a live stream's reader has not read yet, bounded.

A server-streaming RPC that relays bus messages (WatchAvailability) cannot send faster than its
client reads: gRPC flow control blocks the `yield` of a client that stopped reading (a laptop
lid closed, a stalled network). Whatever the bus delivers meanwhile waits here. A reader that
falls more than `limit` messages behind has everything waiting dropped and is told, once it
reads again, to start over from a fresh snapshot (`RESYNC`); messages delivered after the drop
are kept and follow the snapshot. So one stalled reader holds at most `limit` messages, however
long it stalls.

`Backlog` is the decision, without I/O; `LiveFeed` adds the waiting for the event loop.
"""

from __future__ import annotations

import asyncio
from collections import deque
from enum import Enum
from typing import Final, Generic, Literal, TypeVar

T = TypeVar("T")


class _Resync(Enum):
    RESYNC = "resync"


# What `take` gives a reader that fell too far behind: send a fresh snapshot, then carry on.
RESYNC: Final = _Resync.RESYNC
Resync = Literal[_Resync.RESYNC]


class Backlog(Generic[T]):
    """At most `limit` messages a reader has not read yet; older ones are dropped all at once
    when a new one would go past the limit, and the reader is owed a resync."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a backlog holds at least one message, not {limit}")
        self.limit = limit
        self._items: deque[T] = deque()
        self._resync = False
        self.dropped = 0  # messages dropped over the reader's life
        self.overflows = 0  # times it fell behind (one resync may answer several)
        self.high_water = 0  # most messages ever held at once

    def __len__(self) -> int:
        return len(self._items)

    @property
    def resync_owed(self) -> bool:
        return self._resync

    def push(self, item: T) -> None:
        if len(self._items) >= self.limit:
            self.dropped += len(self._items)
            self.overflows += 1
            self._items.clear()
            self._resync = True
        self._items.append(item)
        self.high_water = max(self.high_water, len(self._items))

    def take(self) -> T | Resync | None:
        """What to send next: RESYNC when messages were dropped since the last take (the ones
        kept after the drop come next), else the oldest message; None when nothing waits."""
        if self._resync:
            self._resync = False
            return RESYNC
        return self._items.popleft() if self._items else None


class LiveFeed(Backlog[T]):
    """A Backlog whose reader can wait: `push` from a bus callback, `await next()` to read."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self._ready = asyncio.Event()

    def push(self, item: T) -> None:
        super().push(item)
        self._ready.set()

    async def next(self) -> T | Resync:
        while True:
            taken = self.take()
            if taken is not None:
                return taken
            self._ready.clear()
            await self._ready.wait()
