"""The relay's fast path: JetStream publishes sent back to back, each ack matched to its message."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import Nats
from wfm_runtime.messaging import Bus, PipelinedPublisher
from wfm_runtime.testing import eventually

pytestmark = pytest.mark.integration
NAMESPACE = "tpipe"


async def test_each_message_is_reported_stored_once_and_the_stream_has_each_once(
    nats: Nats,
) -> None:
    bus = Bus(nats.url, "piper", ["piper"], NAMESPACE)
    await bus.start(wait=5)
    results: list[tuple[str, bool]] = []
    publisher = PipelinedPublisher(bus, lambda token, ok: results.append((token, ok)))
    try:
        subject = f"{NAMESPACE}.piper.thing.Happened"
        messages = [(f"{subject}.{n}", b"x", f"id-{n}", f"token-{n}") for n in range(500)]
        assert await publisher.send(messages) == []
        # The same message ids again: JetStream drops them as duplicates, and still acks.
        assert await publisher.send(messages[:10]) == []
        await eventually(lambda: asyncio.sleep(0, len(results)), lambda n: n == 510)
        expected = [f"token-{n}" for n in range(500)] + [f"token-{n}" for n in range(10)]
        assert sorted(t for t, _ in results) == sorted(expected)
        assert all(ok for _, ok in results)
        info = await bus.js.stream_info(f"{NAMESPACE.upper()}_PIPER")
        assert info.state.messages == 500
    finally:
        await bus.close()


async def test_a_subject_no_stream_takes_is_reported_not_stored(nats: Nats) -> None:
    bus = Bus(nats.url, "piper", ["piper"], NAMESPACE)
    await bus.start(wait=5)
    results: list[tuple[str, bool]] = []
    publisher = PipelinedPublisher(bus, lambda token, ok: results.append((token, ok)))
    try:
        assert await publisher.send([("nowhere.at.all", b"x", "id-1", "lost")]) == []
        await eventually(lambda: asyncio.sleep(0, list(results)), lambda r: len(r) == 1)
        assert results == [("lost", False)]
    finally:
        await bus.close()


async def test_without_nats_nothing_is_sent_and_an_unanswered_message_expires(
    nats: Nats,
) -> None:
    results: list[tuple[str, bool]] = []
    down = Bus("nats://127.0.0.1:1", "piper", ["piper"], NAMESPACE)
    publisher = PipelinedPublisher(down, lambda token, ok: results.append((token, ok)))
    assert await publisher.send([("s.a", b"x", "id-1", "t1"), ("s.b", b"x", "id-2", "t2")]) == [
        "t1",
        "t2",
    ]
    assert results == []
    # Connected, but nobody answers within the timeout (a plain subject a subscriber holds).
    bus = Bus(nats.url, "piper", ["piper"], NAMESPACE)
    await bus.start(wait=5)
    silent = PipelinedPublisher(bus, lambda token, ok: results.append((token, ok)), timeout_s=0.2)
    try:
        await bus.nc.subscribe("quiet.subject")  # a responder that never replies
        assert await silent.send([("quiet.subject", b"x", "id-3", "t3")]) == []
        silent.expire()
        assert results == []  # not overdue yet
        await asyncio.sleep(0.3)
        silent.expire()
        assert results == [("t3", False)]
    finally:
        await bus.close()
        await down.close()
