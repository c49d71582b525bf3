"""What a live stream's reader has not read yet, bounded however long the reader stalls.

A server-streaming RPC that relays bus messages (WatchAvailability) cannot send faster than its
client reads: gRPC flow control blocks the `yield` of a client that stopped reading (a laptop
lid closed, a stalled network). Whatever the bus delivers meanwhile waits here.

Up to `fifo_limit` waiting messages, every one is kept and sent in order: a reader that keeps up
gets every message, also through a burst (the bus delivering a backlog at once). Past that the
reader has stalled, and the backlog keeps only each key's newest message (by rank: the
aggregate's version) until it is drained: a stalled reader holds at most `fifo_limit` messages
or one per key (per agent: bounded by the floor), and when it reads again it gets each key's
latest state, the states in between skipped. A board shows each agent's state now, so nothing
it needs is lost, and nothing is read from a view that may still be behind the bus.

`Backlog` is the decision, without I/O; `LiveFeed` adds the waiting for the event loop.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from typing import Generic, TypeVar

T = TypeVar("T")

# Messages a reader may fall behind before only each key's newest is kept.
FIFO_LIMIT = 1000


class Backlog(Generic[T]):
    """The messages a reader has not read: all of them in order up to `fifo_limit`, then,
    until the reader has caught up, only each key's newest (in the order of its latest
    arrival; never replaced by an older or repeated one)."""

    def __init__(self, fifo_limit: int = FIFO_LIMIT) -> None:
        if fifo_limit < 1:
            raise ValueError(f"a backlog keeps at least one message in order, not {fifo_limit}")
        self.fifo_limit = fifo_limit
        self._fifo: deque[tuple[str, int, T]] = deque()
        self._newest: OrderedDict[str, tuple[int, T]] | None = None  # while behind
        self.skipped = 0  # messages never sent: replaced by a newer one, or older on arrival
        self.high_water = 0  # most messages ever waiting at once

    def __len__(self) -> int:
        return len(self._fifo) + len(self._newest or ())

    @property
    def behind(self) -> bool:
        """Keeping only each key's newest message (the reader fell too far behind)."""
        return self._newest is not None

    def push(self, key: str, rank: int, item: T) -> None:
        if self._newest is not None:
            self._keep_newest(self._newest, key, rank, item)
        else:
            self._fifo.append((key, rank, item))
            if len(self._fifo) > self.fifo_limit:
                self._newest = OrderedDict()
                for waiting in self._fifo:
                    self._keep_newest(self._newest, *waiting)
                self._fifo.clear()
        self.high_water = max(self.high_water, len(self))

    def take(self) -> T | None:
        """The message waiting longest, or None when nothing waits."""
        if self._newest is not None:
            _key, (_rank, item) = self._newest.popitem(last=False)
            if not self._newest:
                self._newest = None  # caught up: every message again
            return item
        return self._fifo.popleft()[2] if self._fifo else None

    def _keep_newest(
        self, newest: OrderedDict[str, tuple[int, T]], key: str, rank: int, item: T
    ) -> None:
        waiting = newest.get(key)
        if waiting is not None:
            self.skipped += 1
            if waiting[0] >= rank:
                return  # a late or repeated older message: the newer one stays
            del newest[key]  # to the end: its latest arrival is now
        newest[key] = (rank, item)


class LiveFeed(Backlog[T]):
    """A Backlog whose reader can wait: `push` from a bus callback, `await next()` to read."""

    def __init__(self, fifo_limit: int = FIFO_LIMIT) -> None:
        super().__init__(fifo_limit)
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
