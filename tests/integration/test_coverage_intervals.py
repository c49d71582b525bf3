"""GetCoverage over days that mix 15- and 30-minute requirements: each interval says its own
length, and the response's single `interval_minutes` no longer names one day's length for all."""

from __future__ import annotations

import pytest
from wfm.scheduling.v1 import roster_service_pb2 as rpb

from tests import roster_helpers as h
from tests.conftest import System
from tests.integration.test_roster_api import _setup

pytestmark = pytest.mark.integration


async def test_each_interval_carries_its_days_interval_length(system: System) -> None:
    roster = await _setup(system, "asha")
    team = f"teams/{h.TEAM}"
    await roster.SetCoverageRequirement(  # type: ignore[attr-defined]
        rpb.SetCoverageRequirementRequest(
            team=team, date="2027-03-08", interval_minutes=15, required=[2] * 96,
            idempotency_key="mon-15",
        )
    )  # fmt: skip
    await roster.SetCoverageRequirement(  # type: ignore[attr-defined]
        rpb.SetCoverageRequirementRequest(
            team=team, weekday="tue", interval_minutes=30, required=[3] * 48,
            idempotency_key="tue-30",
        )
    )  # fmt: skip

    both = await roster.GetCoverage(  # type: ignore[attr-defined]
        rpb.GetCoverageRequest(team=team, start_date="2027-03-08", end_date="2027-03-09")
    )
    by_length = [(i.interval_minutes, i.required) for i in both.intervals]
    assert by_length == [(15, 2)] * 96 + [(30, 3)] * 48
    for i in both.intervals:
        assert i.end_time.seconds - i.start_time.seconds == i.interval_minutes * 60
    assert both.interval_minutes == 0  # mixed: not the last day's 30

    monday = await roster.GetCoverage(  # type: ignore[attr-defined]
        rpb.GetCoverageRequest(team=team, start_date="2027-03-08", end_date="2027-03-08")
    )
    assert monday.interval_minutes == 15
