from __future__ import annotations

import pytest
from wfm.availability.v1 import availability_service_pb2 as pb

from tests.conftest import System
from wfm_runtime.testing import eventually

pytestmark = pytest.mark.integration


async def test_set_status_then_read_it_back(system: System) -> None:
    await system.add_team("night")
    await system.add_agent("a1", "night")
    await system.known_to_availability("a1")
    reply = await system.avail.SetStatus(
        pb.SetStatusRequest(
            name="agents/a1/availability", status=pb.AGENT_STATUS_AVAILABLE, idempotency_key="k1"
        )
    )
    assert reply.version == 1
    assert reply.status == pb.AGENT_STATUS_AVAILABLE
    assert reply.since_agent_local.time_zone == "Asia/Kolkata"
    assert reply.since_client_local.time_zone == "America/New_York"
    got = await eventually(
        lambda: system.avail.GetAvailability(
            pb.GetAvailabilityRequest(name="agents/a1/availability")
        ),
        lambda r: r.version == 1,
    )
    assert got.status == pb.AGENT_STATUS_AVAILABLE
