"""The live board follows the Watch stream across a service restart."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TypeAlias

import grpc
import pytest
from wfm.availability.v1 import availability_service_pb2 as pb

from wfm_cli.board import Board, follow, poll
from wfm_sdk import PermissionDenied, Unavailable

Status: TypeAlias = pb.AgentStatus.ValueType


def snapshot(*statuses: tuple[str, Status]) -> pb.WatchAvailabilityResponse:
    rows = [pb.Availability(agent_id=a, status=s) for a, s in statuses]
    return pb.WatchAvailabilityResponse(
        snapshot=pb.WatchAvailabilityResponse.Snapshot(availabilities=rows)
    )


def change(agent: str, status: Status) -> pb.WatchAvailabilityResponse:
    return pb.WatchAvailabilityResponse(change=pb.Availability(agent_id=agent, status=status))


class Stop(Exception):
    pass


def test_reconnects_after_unavailable_and_takes_the_new_snapshot() -> None:
    def broken() -> Iterator[pb.WatchAvailabilityResponse]:
        yield change("a-1", pb.AGENT_STATUS_BREAK)
        raise Unavailable(grpc.StatusCode.UNAVAILABLE, "service restarting")

    def after_restart() -> Iterator[pb.WatchAvailabilityResponse]:
        yield snapshot(("a-1", pb.AGENT_STATUS_LUNCH), ("a-2", pb.AGENT_STATUS_AVAILABLE))
        yield change("a-2", pb.AGENT_STATUS_ON_CONTACT)

    board = Board()
    board.apply(snapshot(("a-1", pb.AGENT_STATUS_AVAILABLE)))
    opened: list[str] = []
    slept: list[float] = []
    seen: list[dict[str, int]] = []

    def reopen() -> Iterator[pb.WatchAvailabilityResponse]:
        opened.append("again")
        if len(opened) > 1:
            raise Stop  # the test's Ctrl-C
        return after_restart()

    def redraw() -> None:
        rows, _note = board.current()
        seen.append({r.agent_id: r.status for r in rows})

    with pytest.raises(Stop):
        follow(board, broken(), reopen, redraw=redraw, sleep=slept.append)
    assert seen[0] == {"a-1": pb.AGENT_STATUS_BREAK}
    assert {"a-1": pb.AGENT_STATUS_LUNCH, "a-2": pb.AGENT_STATUS_AVAILABLE} in seen
    assert board.current()[0][1].status == pb.AGENT_STATUS_ON_CONTACT
    assert slept == [0.5, 0.5]  # backoff starts again once messages flow
    assert board.note.startswith("reconnecting")


def test_other_errors_end_the_board() -> None:
    def refused() -> Iterator[pb.WatchAvailabilityResponse]:
        raise PermissionDenied(grpc.StatusCode.PERMISSION_DENIED, "not your team")
        yield  # pragma: no cover

    with pytest.raises(PermissionDenied):
        follow(Board(), refused(), refused, redraw=lambda: None, sleep=lambda _: None)


class Ticks:
    """A fake sleep: lets `poll` tick `rounds` times, then stops it as Ctrl-C would."""

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        self.slept: list[float] = []

    def __call__(self, seconds: float) -> None:
        if len(self.slept) == self.rounds:
            raise KeyboardInterrupt
        self.slept.append(seconds)


def test_poll_shows_each_fresh_answer_every_tick_until_ctrl_c() -> None:
    answers = iter(["second", "third"])
    shown: list[tuple[str, str]] = []
    ticks = Ticks(rounds=2)
    with pytest.raises(KeyboardInterrupt):
        poll(
            "first",
            lambda: next(answers),
            lambda a, n: shown.append((a, n)),
            every_s=5,
            sleep=ticks,
        )
    assert shown == [("first", ""), ("second", ""), ("third", "")]
    assert ticks.slept == [5, 5]


def test_poll_keeps_the_last_answer_while_the_service_does_not_answer() -> None:
    replies: list[str | Exception] = [
        "second",
        Unavailable(grpc.StatusCode.UNAVAILABLE, "service restarting"),
        "back",
    ]

    def fetch() -> str:
        reply = replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    clock = iter(datetime(2026, 12, 6, 9, 0, s, tzinfo=UTC) for s in range(10))
    shown: list[tuple[str, str]] = []
    with pytest.raises(KeyboardInterrupt):
        poll(
            "first",
            fetch,
            lambda a, n: shown.append((a, n)),
            every_s=10,
            sleep=Ticks(rounds=3),
            now=lambda: next(clock),
        )
    assert [answer for answer, _ in shown] == ["first", "second", "second", "back"]
    assert shown[2][1] == "no answer (unavailable): showing 09:00:01 UTC, trying again every 10s"
    assert shown[1][1] == shown[3][1] == ""


def test_poll_ends_on_a_refusal_that_waiting_does_not_cure() -> None:
    def refused() -> str:
        raise PermissionDenied(grpc.StatusCode.PERMISSION_DENIED, "not your team")

    shown: list[str] = []
    with pytest.raises(PermissionDenied):
        poll("first", refused, lambda a, n: shown.append(a), every_s=2, sleep=Ticks(rounds=5))
    assert shown == ["first"]
