"""The bounded backlog of a live stream: what a reader that stopped reading may hold."""

from __future__ import annotations

import asyncio

import pytest

from wfm_runtime.livefeed import RESYNC, Backlog, LiveFeed


def drain(backlog: Backlog[int]) -> list[object]:
    taken: list[object] = []
    while (item := backlog.take()) is not None:
        taken.append(item)
    return taken


def test_a_reader_that_keeps_up_never_resyncs() -> None:
    backlog: Backlog[int] = Backlog(3)
    for i in range(1000):
        backlog.push(i)
        if i % 3 == 2:  # reads a few at a time, never more than the limit behind
            assert drain(backlog) == [i - 2, i - 1, i]
    assert (backlog.overflows, backlog.dropped, backlog.high_water) == (0, 0, 3)


def test_holds_at_most_the_limit_however_far_behind() -> None:
    backlog: Backlog[int] = Backlog(5)
    for i in range(100_000):
        backlog.push(i)
        assert len(backlog) <= 5
    assert backlog.high_water == 5
    assert backlog.resync_owed


def test_falling_behind_drops_what_waits_then_resyncs_then_carries_on() -> None:
    backlog: Backlog[int] = Backlog(4)
    for i in range(4):
        backlog.push(i)
    assert not backlog.resync_owed
    backlog.push(4)  # one past the limit: 0-3 are dropped, 4 came after the drop and stays
    backlog.push(5)
    assert (backlog.dropped, backlog.overflows, len(backlog)) == (4, 1, 2)
    # A resync first (the snapshot is read after the drop), then what came after the drop.
    assert drain(backlog) == [RESYNC, 4, 5]
    assert not backlog.resync_owed
    backlog.push(6)
    assert drain(backlog) == [6]


def test_overflowing_again_before_reading_owes_one_resync() -> None:
    backlog: Backlog[int] = Backlog(2)
    for i in range(7):  # drops at 2, 4 and 6
        backlog.push(i)
    assert (backlog.overflows, backlog.dropped) == (3, 6)
    assert drain(backlog) == [RESYNC, 6]


def test_a_limit_of_one() -> None:
    backlog: Backlog[int] = Backlog(1)
    backlog.push(1)
    backlog.push(2)
    assert drain(backlog) == [RESYNC, 2]


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Backlog[int](0)


async def test_live_feed_waits_for_the_next_message() -> None:
    feed: LiveFeed[str] = LiveFeed(2)
    waiting = asyncio.create_task(feed.next())
    await asyncio.sleep(0)
    assert not waiting.done()
    feed.push("a")
    assert await asyncio.wait_for(waiting, 5) == "a"
    for item in "bcd":  # "b" and "c" dropped when "d" came
        feed.push(item)
    assert [await feed.next(), await feed.next()] == [RESYNC, "d"]
