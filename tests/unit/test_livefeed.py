"""What a live stream's reader has not read yet: per key, only the newest message."""

from __future__ import annotations

import asyncio

from wfm_runtime.livefeed import Backlog, LiveFeed


def drain(backlog: Backlog[str]) -> list[str]:
    taken: list[str] = []
    while (item := backlog.take()) is not None:
        taken.append(item)
    return taken


def test_a_reader_that_keeps_up_gets_every_message_in_order() -> None:
    backlog: Backlog[str] = Backlog()
    sent = []
    for version in range(1, 301):
        key = f"a{version % 3}"
        backlog.push(key, version, f"{key}@{version}")
        sent.append(f"{key}@{version}")
        if version % 3 == 0:  # reads after each agent changed once
            assert drain(backlog) == sent[-3:]
    assert (backlog.skipped, backlog.high_water) == (0, 3)


def test_a_stalled_reader_holds_one_message_per_key_however_long_it_stalls() -> None:
    backlog: Backlog[str] = Backlog()
    for version in range(1, 100_001):
        backlog.push(f"a{version % 4}", version, f"v{version}")
        assert len(backlog) <= 4
    assert backlog.high_water == 4
    assert backlog.skipped == 100_000 - 4
    # Each key's newest, in the order of their latest arrival.
    assert drain(backlog) == ["v99997", "v99998", "v99999", "v100000"]


def test_a_key_changed_again_moves_behind_the_others() -> None:
    backlog: Backlog[str] = Backlog()
    backlog.push("a", 1, "a1")
    backlog.push("b", 1, "b1")
    backlog.push("a", 2, "a2")
    assert drain(backlog) == ["b1", "a2"]


def test_an_older_or_repeated_message_never_replaces_a_newer_one() -> None:
    backlog: Backlog[str] = Backlog()
    backlog.push("a", 5, "a5")
    backlog.push("a", 3, "a3")  # a late redelivery of an earlier change
    backlog.push("a", 5, "a5 again")  # the same change delivered twice
    assert drain(backlog) == ["a5"]
    assert backlog.skipped == 2


async def test_live_feed_waits_for_the_next_message() -> None:
    feed: LiveFeed[str] = LiveFeed()
    waiting = asyncio.create_task(feed.next())
    await asyncio.sleep(0)
    assert not waiting.done()
    feed.push("a", 1, "a1")
    assert await asyncio.wait_for(waiting, 5) == "a1"
    for version in (2, 3, 4):
        feed.push("a", version, f"a{version}")
    feed.push("b", 1, "b1")
    assert [await feed.next(), await feed.next()] == ["a4", "b1"]
