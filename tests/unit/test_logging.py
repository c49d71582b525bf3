"""Log lines carry the fields of their own request (wfm_runtime/logging.py)."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog

from wfm_runtime import logging as wlog

Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def lines() -> Iterator[Lines]:
    saved = structlog.get_config()
    wlog.configure("info", "availability")
    out = io.StringIO()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(out))
    yield lambda: [json.loads(line) for line in out.getvalue().splitlines()]
    structlog.configure(**saved)


def test_each_request_logs_its_own_fields_and_the_services(lines: Lines) -> None:
    log = wlog.get("test")

    async def request(rid: str, subject: str) -> None:
        wlog.start_request(request_id=rid, method="/m")
        await asyncio.sleep(0)  # the other request runs in between
        wlog.bind(subject=subject)
        await asyncio.sleep(0)
        log.info("done", subject_seen=subject)

    async def both() -> None:
        await asyncio.gather(request("r1", "alice"), request("r2", "bob"))

    asyncio.run(both())
    log.info("outside")  # no request: the process's fields only
    got = lines()
    by_rid = {line.get("request_id"): line for line in got if line["event"] == "done"}
    assert by_rid["r1"]["subject"] == "alice" and by_rid["r2"]["subject"] == "bob"
    assert all(line["service"] == "availability" for line in got)
    outside = next(line for line in got if line["event"] == "outside")
    assert "request_id" not in outside and "subject" not in outside


def test_a_field_given_to_the_line_wins_over_the_bound_one(lines: Lines) -> None:
    async def request() -> None:
        wlog.start_request(method="/bound")
        wlog.get("test").info("audit", method="/explicit")

    asyncio.run(request())
    (line,) = lines()
    assert line["method"] == "/explicit"
