"""The live board follows the Watch stream across a service restart."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeAlias

import grpc
import pytest
from wfm.availability.v1 import availability_service_pb2 as pb

from wfm_cli.board import Board, follow
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
