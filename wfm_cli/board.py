"""Live screens: the board's state and following the Watch stream across service restarts,
and `poll` for screens redrawn from a read every few seconds (`wfm adherence --watch`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import grpc
from wfm.availability.v1 import availability_service_pb2 as availability_pb

from wfm_sdk import WfmError

WatchMessage = availability_pb.WatchAvailabilityResponse
# A stream broken by these is reopened (a service restarting, a connection dropped); any other
# error (an expired token, a refused team) ends the command with its exit code.
RECONNECT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})
# A polled read failing with these is tried again at the next tick, the last answer kept on
# screen; any other error ends the command with its exit code.
RETRY_POLL = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
Answer = TypeVar("Answer")


@dataclass
class Board:
    """Who is in which status now, as the stream tells it; safe to read from another thread."""

    rows: dict[str, availability_pb.Availability] = field(default_factory=dict)
    note: str = ""  # shown under the title, e.g. while reconnecting
    lock: threading.Lock = field(default_factory=threading.Lock)

    def apply(self, message: WatchMessage) -> None:
        with self.lock:
            if message.WhichOneof("event") == "snapshot":
                self.rows = {a.agent_id: a for a in message.snapshot.availabilities}
                self.note = ""
            elif message.WhichOneof("event") == "change":
                self.rows[message.change.agent_id] = message.change

    def current(self) -> tuple[list[availability_pb.Availability], str]:
        with self.lock:
            return list(self.rows.values()), self.note


def follow(
    board: Board,
    stream: Iterable[WatchMessage],
    reopen: Callable[[], Iterable[WatchMessage]],
    *,
    redraw: Callable[[], None],
    sleep: Callable[[float], None] = time.sleep,
    max_backoff_s: float = 5.0,
) -> None:
    """Applies every message until Ctrl-C. When the stream ends or breaks with UNAVAILABLE or
    CANCELLED, it is reopened after a backoff; the new snapshot then replaces the board."""
    backoff = 0.5
    while True:
        try:
            for message in stream:
                board.apply(message)
                backoff = 0.5
                redraw()
        except WfmError as error:
            if error.code not in RECONNECT:
                raise
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        with board.lock:
            board.note = f"reconnecting in {backoff:g}s (the stream ended)"
        redraw()
        sleep(backoff)
        backoff = min(backoff * 2, max_backoff_s)
        stream = reopen()


def poll(
    first: Answer,
    fetch: Callable[[], Answer],
    show: Callable[[Answer, str], None],
    *,
    every_s: float,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Shows `first`, then a fresh answer every `every_s` seconds until Ctrl-C (the caller's
    KeyboardInterrupt). While the service does not answer, the last answer stays on screen
    with a note saying since when; the next tick tries again."""
    last, note = first, ""
    answered = now()
    while True:
        show(last, note)
        sleep(every_s)
        try:
            last, note = fetch(), ""
            answered = now()
        except WfmError as error:
            if error.code not in RETRY_POLL:
                raise
            note = (
                f"no answer ({error.code.name.lower()}): showing {answered:%H:%M:%S} UTC,"
                f" trying again every {every_s:g}s"
            )
