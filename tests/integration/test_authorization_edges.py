"""Authorization edges the matrix rows do not show: odd tokens, moved agents, cross-team filters.

Each test is a probe for a hole: a caller reading or changing what its role and teams should
not reach. Only the refusal (PERMISSION_DENIED) is checked, unless the call must succeed.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from wfm.availability.v1 import availability_service_pb2 as apb
from wfm.scheduling.v1 import directory_service_pb2 as dpb
from wfm.scheduling.v1 import roster_service_pb2 as rpb
from wfm.scheduling.v1 import roster_service_pb2_grpc as rpb_grpc
from wfm.training.v1 import training_service_pb2 as tpb

from tests.conftest import System
from wfm_runtime.testing import channel, eventually

pytestmark = pytest.mark.integration


async def _denied(call: Awaitable[Any]) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED, err.value.details()


def _roster_as(
    system: System, subject: str, *roles: str, teams: tuple[str, ...] = ()
) -> rpb_grpc.RosterServiceStub:
    ch = channel(
        f"127.0.0.1:{system.scheduling.port}", system.minter.token(subject, *roles, teams=teams)
    )
    system.channels.append(ch)
    return rpb_grpc.RosterServiceStub(ch)


async def _two_teams(system: System) -> None:
    for team in ("t1", "t2"):
        await system.add_team(team)
    await system.add_agent("a1", "t1")
    await system.add_agent("b2", "t2")


async def test_agent_token_with_empty_subject_reaches_no_ones_rows(system: System) -> None:
    """`sub` "" matched the empty agent of a request that names no agent, so an agent token
    without a subject listed every enrollment and a whole team's leave: now refused."""
    await _two_teams(system)
    await system.known_to_training("a1")
    train = system.training_as("", "agent")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await train.ListEnrollments(tpb.ListEnrollmentsRequest())
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED, err.value.details()
    roster = _roster_as(system, "", "agent")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await roster.ListLeaveRequests(rpb.ListLeaveRequestsRequest(team="teams/t1"))
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED, err.value.details()


async def test_leader_loses_an_agent_moved_to_another_team(system: System) -> None:
    """The policy's team-of-agent lookup follows UpdateAgent: the old leader is refused once
    each service's directory has the move, the new leader admitted."""
    await _two_teams(system)
    await system.known_to_training("a1")
    await system.known_to_availability("a1")
    await system.directory.UpdateAgent(
        dpb.UpdateAgentRequest(
            agent=dpb.Agent(name="agents/a1", team="teams/t2"),
            update_mask=FieldMask(paths=["team"]),
            idempotency_key="move-a1",
        )
    )

    async def moved() -> bool:
        seen = [
            await system.training.directory.agent("a1"),
            await system.availability.directory.agent("a1"),
        ]
        return all(a is not None and a.team_id == "t2" for a in seen)

    await eventually(moved)
    old_avail, old_directory = system.as_caller("tl1", "team_leader", teams=("t1",))
    history = apb.GetStatusHistoryRequest(
        name="agents/a1/availability",
        start_time=Timestamp(seconds=1_700_000_000),
        end_time=Timestamp(seconds=1_700_086_400),
    )
    await _denied(old_avail.GetStatusHistory(history))
    await _denied(old_directory.GetAgent(dpb.GetAgentRequest(name="agents/a1")))
    old_train = system.training_as("tl1", "team_leader", teams=("t1",))
    await _denied(old_train.GetTranscript(tpb.GetTranscriptRequest(name="agents/a1/transcript")))
    new_train = system.training_as("tl2", "team_leader", teams=("t2",))
    await new_train.GetTranscript(tpb.GetTranscriptRequest(name="agents/a1/transcript"))


async def test_leader_cannot_reach_another_team_through_filters(system: System) -> None:
    await _two_teams(system)
    await system.known_to_training("b2")
    roster = _roster_as(system, "tl1", "team_leader", teams=("t1",))
    await _denied(roster.ListLeaveRequests(rpb.ListLeaveRequestsRequest(agent="agents/b2")))
    await _denied(roster.ListLeaveRequests(rpb.ListLeaveRequestsRequest(team="teams/t2")))
    await _denied(roster.GetLeaveBalance(rpb.GetLeaveBalanceRequest(agent="agents/b2", year=2025)))
    train = system.training_as("tl1", "team_leader", teams=("t1",))
    # A client spans teams: a leader names their team, never a client.
    await _denied(train.ListDue(tpb.ListDueRequest(client="acme")))
    await _denied(train.ListEnrollments(tpb.ListEnrollmentsRequest()))
    await _denied(train.ListEnrollments(tpb.ListEnrollmentsRequest(agent="agents/b2")))
    avail, directory = system.as_caller("tl1", "team_leader", teams=("t1",))
    await _denied(directory.ListAgents(dpb.ListAgentsRequest()))
    await _denied(avail.ListAvailability(apb.ListAvailabilityRequest()))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in avail.WatchAvailability(apb.WatchAvailabilityRequest()):
            pass
    assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_leader_token_without_teams_leads_nobody(system: System) -> None:
    await _two_teams(system)
    await system.known_to_availability("a1")
    avail, directory = system.as_caller("tl0", "team_leader")
    await _denied(directory.GetAgent(dpb.GetAgentRequest(name="agents/a1")))
    await _denied(directory.ListAgents(dpb.ListAgentsRequest(team="teams/t1")))
    await _denied(avail.ListAvailability(apb.ListAvailabilityRequest(team="teams/t1")))
    # A team that does not exist, or an id written differently, is not the caller's team.
    _, ghost = system.as_caller("tl9", "team_leader", teams=("ghost", "T1", "teams/t1"))
    await _denied(ghost.ListAgents(dpb.ListAgentsRequest(team="teams/t1")))
    await _denied(ghost.GetAgent(dpb.GetAgentRequest(name="agents/a1")))


async def test_agent_cannot_act_for_another_agent(system: System) -> None:
    await _two_teams(system)
    train = system.training_as("a1", "agent")
    both = tpb.EnrollAgentsRequest(
        session="sessions/s1", agents=["agents/a1", "agents/b2"], idempotency_key="k-both"
    )
    await _denied(train.EnrollAgents(both))
    other = tpb.EnrollAgentsRequest(
        session="sessions/s1", agents=["agents/b2"], idempotency_key="k-other"
    )
    await _denied(train.EnrollAgents(other))
    withdraw = tpb.WithdrawEnrollmentRequest(
        name="sessions/s1/enrollments/b2", idempotency_key="k-w"
    )
    await _denied(train.WithdrawEnrollment(withdraw))
    roster = _roster_as(system, "a1", "agent")
    cancel = rpb.CancelLeaveRequest(name="agents/b2/leaveRequests/l1", idempotency_key="k-c")
    await _denied(roster.CancelLeave(cancel))
    await _denied(roster.ListLeaveRequests(rpb.ListLeaveRequestsRequest(team="teams/t1")))
    await _denied(roster.ListLeaveRequests(rpb.ListLeaveRequestsRequest(agent="agents/b2")))
    await _denied(roster.GetAgentRoster(rpb.GetAgentRosterRequest(agent="agents/b2")))
    avail, _ = system.as_caller("a1", "agent")
    status = apb.SetStatusRequest(name="agents/b2/availability", idempotency_key="k-s")
    await _denied(avail.SetStatus(status))


async def test_performance_stays_within_the_callers_rows(perf_system: System) -> None:
    from wfm.performance.v1 import performance_service_pb2 as ppb

    system = perf_system
    await _two_teams(system)
    leader = system.perf_as("tl1", "team_leader", teams=("t1",))
    await _denied(leader.GetScorecard(ppb.GetScorecardRequest(name="agents/b2/scorecard")))
    explain = ppb.ExplainMetricRequest(name="agents/b2/scorecard", metric="aht")
    await _denied(leader.ExplainMetric(explain))
    await _denied(leader.ListScorecards(ppb.ListScorecardsRequest(team="teams/t2")))
    await _denied(leader.ListScorecards(ppb.ListScorecardsRequest()))
    await _denied(leader.GetTeamAdherence(ppb.GetTeamAdherenceRequest(name="teams/t2/adherence")))
    await _denied(leader.ListRedFlags(ppb.ListRedFlagsRequest(team="teams/t2")))
    agent = system.perf_as("a1", "agent")
    await _denied(agent.GetScorecard(ppb.GetScorecardRequest(name="agents/b2/scorecard")))
    await _denied(agent.ExplainMetric(explain))
    await _denied(agent.ListScorecards(ppb.ListScorecardsRequest(team="teams/t1")))
