"""ListSessions, the training calendar, over gRPC against the real servers: every session in
start order (then name) whether or not anyone is enrolled, filtered by course, by a window of
start times and by state, in stable pages; bad windows and tokens are refused."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import grpc
import pytest
from wfm.training.v1 import training_service_pb2 as pb

from tests.conftest import System
from tests.integration.test_training_api import START, course, rules, session
from wfm_runtime.testing import eventually
from wfm_runtime.timefmt import to_timestamp

pytestmark = pytest.mark.integration
DAY = timedelta(days=1)


async def _calendar(system: System, page_size: int = 2, **filters: object) -> list[str]:
    names: list[str] = []
    token = ""
    while True:
        page = await system.train.ListSessions(
            pb.ListSessionsRequest(page_size=page_size, page_token=token, **filters)  # type: ignore[arg-type]
        )
        assert len(page.sessions) <= page_size
        names += [s.name.removeprefix("sessions/") for s in page.sessions]
        token = page.next_page_token
        if not token:
            return names


async def test_sessions_listed_in_start_order_filtered_and_paged(system: System) -> None:
    await system.train.CreateCourse(course())
    await system.train.CreateCourse(course("calm-calls", competency="calm", technical=False))
    for sid, code, start in [
        ("s-late", "fibre-101", START + 3 * DAY),
        ("s-early", "fibre-101", START),
        ("s-mid", "fibre-101", START + DAY),
        ("c1", "calm-calls", START + DAY),  # the same start as s-mid: name order
        ("s-off", "fibre-101", START + 2 * DAY),
    ]:
        await system.train.CreateSession(session(sid, code, start))
    await system.train.CancelSession(
        pb.CancelSessionRequest(name="sessions/s-off", reason="trainer ill", idempotency_key="x")
    )
    every = ["s-early", "c1", "s-mid", "s-off", "s-late"]
    assert await eventually(lambda: _calendar(system), lambda found: found == every)
    # The list reads a view: the cancellation may land in it a moment after the creations.
    cancelled = await eventually(
        lambda: _calendar(system, state=pb.SESSION_STATE_CANCELLED), lambda found: found != []
    )
    assert cancelled == ["s-off"]

    first = await system.train.ListSessions(pb.ListSessionsRequest(page_size=1))
    assert first.sessions[0].start_local.local_time == "2026-12-01T10:00:00+05:30"
    assert (first.sessions[0].capacity, first.sessions[0].seats_taken) == (2, 0)
    assert await _calendar(system, course="courses/fibre-101") == [
        "s-early",
        "s-mid",
        "s-off",
        "s-late",
    ]
    window: dict[str, Any] = {
        "earliest_start_time": to_timestamp(START + DAY),
        "latest_start_time": to_timestamp(START + 3 * DAY),  # s-late starts then: left out
    }
    assert await _calendar(system, **window) == ["c1", "s-mid", "s-off"]
    assert await _calendar(system, page_size=10, state=pb.SESSION_STATE_SCHEDULED, **window) == [
        "c1",
        "s-mid",
    ]


async def test_bad_windows_tokens_and_filters_are_refused(system: System) -> None:
    await system.train.CreateCourse(course())
    for sid in ("a", "b"):
        await system.train.CreateSession(session(sid))
    await eventually(lambda: _calendar(system), lambda found: found == ["a", "b"])
    paged = await system.train.ListSessions(pb.ListSessionsRequest(page_size=1))
    bad = [
        (
            pb.ListSessionsRequest(
                earliest_start_time=to_timestamp(START), latest_start_time=to_timestamp(START)
            ),
            "latest_start_time",
        ),
        (
            pb.ListSessionsRequest(
                earliest_start_time=to_timestamp(START),
                latest_start_time=to_timestamp(START + 401 * DAY),
            ),
            "latest_start_time",
        ),
        (pb.ListSessionsRequest(state=99), "state"),  # type: ignore[arg-type]
        (pb.ListSessionsRequest(course="fibre-101"), "course"),
        (pb.ListSessionsRequest(page_size=-1), "page_size"),
        (pb.ListSessionsRequest(page_token="not-a-token"), "page_token"),
        # A token is good only for the filters it was issued with.
        (
            pb.ListSessionsRequest(page_token=paged.next_page_token, course="courses/fibre-101"),
            "page_token",
        ),
    ]
    for request, field in bad:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await system.train.ListSessions(request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, request
        assert rules(err.value) == [field], request
