"""What a live stream's reader has not read yet: every message up to a limit, then each key's
newest until the reader has caught up."""

from __future__ import annotations

import asyncio

import pytest

from wfm_runtime.livefeed import Backlog, LiveFeed


def drain(backlog: Backlog[str]) -> list[str]:
    taken: list[str] = []
    while (item := backlog.take()) is not None:
        taken.append(item)
    return taken


def test_a_reader_within_the_limit_gets_every_message_in_order_even_in_a_burst() -> None:
    backlog: Backlog[str] = Backlog(10)
    sent = [f"a@{version}" for version in range(1, 11)]  # one agent, ten changes at once
    for version, item in enumerate(sent, start=1):
        backlog.push("a", version, item)
    assert drain(backlog) == sent
    assert (backlog.skipped, backlog.high_water, backlog.behind) == (0, 10, False)


def test_a_stalled_reader_holds_the_limit_or_one_per_key_however_long_it_stalls() -> None:
    backlog: Backlog[str] = Backlog(10)
    for version in range(1, 100_001):
        backlog.push(f"a{version % 4}", version, f"v{version}")
        assert len(backlog) <= 10
    assert backlog.behind
    assert backlog.high_water == 10
    assert backlog.skipped == 100_000 - 4
    # Each key's newest, in the order of their latest arrival.
    assert drain(backlog) == ["v99997", "v99998", "v99999", "v100000"]


def test_once_caught_up_every_message_is_kept_again() -> None:
    backlog: Backlog[str] = Backlog(2)
    for version in (1, 2, 3):
        backlog.push("a", version, f"a{version}")
    assert backlog.behind
    assert drain(backlog) == ["a3"]
    assert not backlog.behind
    backlog.push("a", 4, "a4")
    backlog.push("a", 5, "a5")
    assert drain(backlog) == ["a4", "a5"]


def test_behind_a_key_changed_again_moves_behind_the_others() -> None:
    backlog: Backlog[str] = Backlog(1)
    backlog.push("a", 1, "a1")
    backlog.push("b", 1, "b1")  # past the limit
    backlog.push("a", 2, "a2")
    assert drain(backlog) == ["b1", "a2"]


def test_behind_an_older_or_repeated_message_never_replaces_a_newer_one() -> None:
    backlog: Backlog[str] = Backlog(1)
    backlog.push("b", 1, "b1")
    backlog.push("a", 5, "a5")  # past the limit
    backlog.push("a", 3, "a3")  # a late redelivery of an earlier change
    backlog.push("a", 5, "a5 again")  # the same change delivered twice
    assert drain(backlog) == ["b1", "a5"]
    assert backlog.skipped == 2


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Backlog[str](0)


async def test_live_feed_waits_for_the_next_message() -> None:
    feed: LiveFeed[str] = LiveFeed(2)
    waiting = asyncio.create_task(feed.next())
    await asyncio.sleep(0)
    assert not waiting.done()
    feed.push("a", 1, "a1")
    assert await asyncio.wait_for(waiting, 5) == "a1"
    for version in (2, 3, 4):  # past the limit at 4: only a4 stays
        feed.push("a", version, f"a{version}")
    feed.push("b", 1, "b1")
    assert [await feed.next(), await feed.next()] == ["a4", "b1"]
