"""Clients of the roster (scheduling), training and performance services.

    async with AsyncWfm() as wfm:
        roster = await wfm.roster.get_agent_roster(agent="agents/a-1001",
                                                   start_date="2026-11-23", end_date="2026-12-06")
        card = await wfm.performance.get_scorecard(name="agents/a-1001/scorecard",
                                                   period={"start_date": "2026-11-01",
                                                           "end_date": "2026-11-30"})

Each method is one RPC (see wfm_sdk.rpc for the calling convention); the names are the RPCs'
in snake case. Results are the generated response messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Any

from wfm.performance.v1 import performance_service_pb2 as performance_pb
from wfm.scheduling.v1 import roster_service_pb2 as roster_pb
from wfm.training.v1 import training_service_pb2 as training_pb

from wfm_sdk.rpc import Rpc, TableClient


def _table(module: Any, service: str) -> dict[str, Rpc]:
    """`{"assign_shift": Rpc("AssignShift", AssignShiftRequest), ...}` for every unary RPC."""
    descriptor = module.DESCRIPTOR.services_by_name[service]
    table = {}
    for method in descriptor.methods:
        if method.client_streaming or method.server_streaming:
            continue
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in method.name).lstrip("_")
        table[snake] = Rpc(method.name, getattr(module, method.input_type.name))
    return table


class RosterClient(TableClient):
    """wfm.scheduling.v1.RosterService: sites, shift patterns, shifts, rosters, leave,
    coverage. Served by the scheduling service."""

    RPCS = _table(roster_pb, "RosterService")


class TrainingClient(TableClient):
    """wfm.training.v1.TrainingService: courses, sessions, enrollments, transcripts."""

    RPCS = _table(training_pb, "TrainingService")


class PerformanceClient(TableClient):
    """wfm.performance.v1.PerformanceService: cases in, scorecards and red flags out."""

    RPCS = _table(performance_pb, "PerformanceService")

    async def record_cases(
        self, requests: AsyncIterable[performance_pb.RecordCasesRequest]
    ) -> performance_pb.RecordCasesResponse:
        """Streams cases; the reply has one result per case (recorded or refused, why)."""
        reply: performance_pb.RecordCasesResponse = await self._client_stream(
            "RecordCases", requests
        )
        return reply
