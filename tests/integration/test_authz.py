"""The authorization matrix (docs/security.md), RPC by RPC, against the running services.

The expectations below are written by hand from the matrix: they are the oracle the policy
tables in services/*/policy.py are checked against.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from wfm.audit.v1 import audit_service_pb2 as audit_pb
from wfm.audit.v1 import audit_service_pb2_grpc as audit_grpc
from wfm.availability.v1 import availability_service_pb2 as pb
from wfm.availability.v1 import availability_service_pb2_grpc as pb_grpc
from wfm.scheduling.v1 import directory_service_pb2 as dpb
from wfm.scheduling.v1 import directory_service_pb2_grpc as dpb_grpc
from wfm.scheduling.v1 import roster_service_pb2 as rpb
from wfm.scheduling.v1 import roster_service_pb2_grpc as rpb_grpc

from services.availability import main as availability_main
from tests.conftest import System
from wfm_runtime.testing import channel, eventually

pytestmark = pytest.mark.integration

CALLERS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    # name: (subject, roles, teams led)
    "agent": ("a1", ("agent",), ()),
    "team_leader": ("tl1", ("team_leader",), ("t1",)),
    "scheduler": ("s1", ("scheduler",), ()),
    "hr": ("h1", ("hr",), ()),
    "trainer": ("tr1", ("trainer",), ()),
    "admin": ("ad1", ("admin",), ()),
}
ALL = set(CALLERS)


class Stubs:
    def __init__(self, system: System, caller: str) -> None:
        subject, roles, teams = CALLERS[caller]
        token = system.minter.token(subject, *roles, teams=teams)
        a = channel(f"127.0.0.1:{system.availability.port}", token)
        s = channel(f"127.0.0.1:{system.scheduling.port}", token)
        system.channels += [a, s]
        self.avail = pb_grpc.AvailabilityServiceStub(a)
        self.directory = dpb_grpc.DirectoryServiceStub(s)
        self.roster = rpb_grpc.RosterServiceStub(s)
        self.audit = audit_grpc.AuditServiceStub(a)


Call = Callable[[Stubs, str], Awaitable[Any]]


def _history(agent: str) -> pb.GetStatusHistoryRequest:
    return pb.GetStatusHistoryRequest(
        name=f"agents/{agent}/availability",
        start_time=Timestamp(seconds=1_700_000_000),
        end_time=Timestamp(seconds=1_700_086_400),
    )


def _new_agent(agent_id: str) -> dpb.CreateAgentRequest:
    return dpb.CreateAgentRequest(
        agent_id=agent_id,
        idempotency_key=f"create-{agent_id}",
        agent=dpb.Agent(
            display_name=agent_id,
            team="teams/t1",
            time_zone="Asia/Kolkata",
            contract_type=dpb.CONTRACT_TYPE_FULL_TIME,
            weekly_minutes=2400,
        ),
    )


async def _watch(stubs: Stubs, team: str) -> Any:
    stream = stubs.avail.WatchAvailability(pb.WatchAvailabilityRequest(team=team))
    try:
        return await asyncio.wait_for(stream.read(), 10)
    finally:
        stream.cancel()


# (description, call, who may) — `key` makes each mutating call's idempotency key unique.
CASES: list[tuple[str, Call, set[str]]] = [
    (
        "SetStatus own",
        lambda s, k: s.avail.SetStatus(
            pb.SetStatusRequest(
                name="agents/a1/availability", status=pb.AGENT_STATUS_AVAILABLE, idempotency_key=k
            )
        ),
        {"agent", "admin"},
    ),
    (
        "SetStatus other agent",
        lambda s, k: s.avail.SetStatus(
            pb.SetStatusRequest(
                name="agents/a2/availability", status=pb.AGENT_STATUS_BREAK, idempotency_key=k
            )
        ),
        {"admin"},
    ),
    (
        "GetAvailability own/team",
        lambda s, k: s.avail.GetAvailability(
            pb.GetAvailabilityRequest(name="agents/a1/availability")
        ),
        {"agent", "team_leader", "scheduler", "admin"},
    ),
    (
        "GetAvailability other team",
        lambda s, k: s.avail.GetAvailability(
            pb.GetAvailabilityRequest(name="agents/b1/availability")
        ),
        {"scheduler", "admin"},
    ),
    (
        "ListAvailability own team",
        lambda s, k: s.avail.ListAvailability(pb.ListAvailabilityRequest(team="teams/t1")),
        {"team_leader", "scheduler", "admin"},
    ),
    (
        "ListAvailability other team",
        lambda s, k: s.avail.ListAvailability(pb.ListAvailabilityRequest(team="teams/t2")),
        {"scheduler", "admin"},
    ),
    (
        "ListAvailability every team",
        lambda s, k: s.avail.ListAvailability(pb.ListAvailabilityRequest()),
        {"scheduler", "admin"},
    ),
    (
        "WatchAvailability own team",
        lambda s, k: _watch(s, "teams/t1"),
        {"team_leader", "scheduler", "admin"},
    ),
    ("WatchAvailability other team", lambda s, k: _watch(s, "teams/t2"), {"scheduler", "admin"}),
    (
        "GetStatusHistory own/team",
        lambda s, k: s.avail.GetStatusHistory(_history("a1")),
        {"agent", "team_leader", "scheduler", "hr", "admin"},
    ),
    (
        "GetStatusHistory other team",
        lambda s, k: s.avail.GetStatusHistory(_history("b1")),
        {"scheduler", "hr", "admin"},
    ),
    (
        "CreateTeam",
        lambda s, k: s.directory.CreateTeam(
            dpb.CreateTeamRequest(
                team_id=f"new-{k}",
                idempotency_key=k,
                team=dpb.Team(display_name="New", client_time_zone="Europe/London"),
            )
        ),
        {"admin"},
    ),
    ("GetTeam", lambda s, k: s.directory.GetTeam(dpb.GetTeamRequest(name="teams/t2")), ALL),
    ("ListTeams", lambda s, k: s.directory.ListTeams(dpb.ListTeamsRequest()), ALL),
    ("CreateAgent", lambda s, k: s.directory.CreateAgent(_new_agent(f"n-{k}")), {"admin"}),
    (
        "UpdateAgent",
        lambda s, k: s.directory.UpdateAgent(
            dpb.UpdateAgentRequest(
                agent=dpb.Agent(name="agents/a2", display_name=f"A2 {k}"),
                update_mask=FieldMask(paths=["display_name"]),
                idempotency_key=k,
            )
        ),
        {"admin"},
    ),
    (
        "GetAgent own/team",
        lambda s, k: s.directory.GetAgent(dpb.GetAgentRequest(name="agents/a1")),
        ALL,
    ),
    (
        "GetAgent other agent, same team",
        lambda s, k: s.directory.GetAgent(dpb.GetAgentRequest(name="agents/a2")),
        ALL - {"agent"},
    ),
    (
        "GetAgent other team",
        lambda s, k: s.directory.GetAgent(dpb.GetAgentRequest(name="agents/b1")),
        ALL - {"agent", "team_leader"},
    ),
    (
        "ListAgents own team",
        lambda s, k: s.directory.ListAgents(dpb.ListAgentsRequest(team="teams/t1")),
        ALL - {"agent"},
    ),
    (
        "ListAgents other team",
        lambda s, k: s.directory.ListAgents(dpb.ListAgentsRequest(team="teams/t2")),
        ALL - {"agent", "team_leader"},
    ),
    # Sites and shift patterns: anyone signed in may read and list them.
    ("GetSite", lambda s, k: s.roster.GetSite(rpb.GetSiteRequest(name="sites/pune")), ALL),
    ("ListSites", lambda s, k: s.roster.ListSites(rpb.ListSitesRequest()), ALL),
    (
        "GetShiftPattern",
        lambda s, k: s.roster.GetShiftPattern(rpb.GetShiftPatternRequest(name="shiftPatterns/x")),
        ALL,
    ),
    (
        "ListShiftPatterns",
        lambda s, k: s.roster.ListShiftPatterns(rpb.ListShiftPatternsRequest()),
        ALL,
    ),
    (
        "ListAuditRecords",
        lambda s, k: s.audit.ListAuditRecords(audit_pb.ListAuditRecordsRequest()),
        {"admin"},
    ),
]


async def _floor(system: System) -> None:
    for team in ("t1", "t2"):
        await system.add_team(team)
    for agent, team in (("a1", "t1"), ("a2", "t1"), ("b1", "t2")):
        await system.add_agent(agent, team)
    for agent in ("a1", "a2", "b1"):
        await system.known_to_availability(agent)
    await eventually(
        lambda: system.scheduling.views.list_agents("", "", 10), lambda agents: len(agents) == 3
    )


async def test_every_rpc_and_role_against_the_matrix(system: System) -> None:
    await _floor(system)
    stubs = {caller: Stubs(system, caller) for caller in CALLERS}
    wrong: list[str] = []
    for n, (what, call, allowed) in enumerate(CASES):
        for caller in CALLERS:
            try:
                await call(stubs[caller], f"k{n}-{caller}")
                code = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as err:
                code = err.code()
            denied = code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
            if denied == (caller in allowed) or code == grpc.StatusCode.INTERNAL:
                wrong.append(f"{what} as {caller}: {code.name}")
    assert not wrong, "\n".join(wrong)


async def test_tokens_that_are_not_valid_are_unauthenticated(system: System) -> None:
    await _floor(system)
    good = system.minter.token("a1", "agent")
    bad_tokens = {
        "missing": "",
        "expired": system.minter.token("a1", "agent", ttl_s=-120),
        "tampered": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "garbage": "not-a-jwt",
        "no roles claim type": system.minter.token("a1"),  # valid token, no role: denied below
    }
    address = f"127.0.0.1:{system.availability.port}"
    request = pb.GetAvailabilityRequest(name="agents/a1/availability")
    for name, token in bad_tokens.items():
        stub = pb_grpc.AvailabilityServiceStub(channel(address, token))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetAvailability(request)
        expected = (
            grpc.StatusCode.PERMISSION_DENIED
            if name == "no roles claim type"
            else grpc.StatusCode.UNAUTHENTICATED
        )
        assert refused.value.code() == expected, name
    raw = grpc.aio.insecure_channel(address)
    system.channels.append(raw)
    for header in ("Basic abc", "Bearer", "bearer  "):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await pb_grpc.AvailabilityServiceStub(raw).GetAvailability(
                request, metadata=(("authorization", header),)
            )
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_audit_records_who_did_what(system: System) -> None:
    await _floor(system)
    agent = Stubs(system, "agent")
    await agent.avail.SetStatus(
        pb.SetStatusRequest(
            name="agents/a1/availability", status=pb.AGENT_STATUS_BREAK, idempotency_key="audit-1"
        )
    )
    with pytest.raises(grpc.aio.AioRpcError):
        await agent.avail.SetStatus(
            pb.SetStatusRequest(
                name="agents/a2/availability",
                status=pb.AGENT_STATUS_BREAK,
                idempotency_key="audit-2",
            )
        )
    admin = Stubs(system, "admin")
    records = await eventually(
        lambda: admin.audit.ListAuditRecords(audit_pb.ListAuditRecordsRequest(subject="a1")),
        lambda r: len(r.records) == 2,
    )
    newest, oldest = records.records
    assert (oldest.method, oldest.outcome, list(oldest.targets)) == (
        "/wfm.availability.v1.AvailabilityService/SetStatus",
        "OK",
        ["agents/a1"],
    )
    assert (newest.outcome, list(newest.targets), list(newest.roles)) == (
        "PERMISSION_DENIED",
        ["agents/a2"],
        ["agent"],
    )
    about_a2 = await admin.audit.ListAuditRecords(
        audit_pb.ListAuditRecordsRequest(target="agents/a2")
    )
    assert [r.subject for r in about_a2.records] == ["a1"]
    directory_audit = audit_grpc.AuditServiceStub(
        channel(f"127.0.0.1:{system.scheduling.port}", system.minter.token("ad", "admin"))
    )
    created = await eventually(
        lambda: directory_audit.ListAuditRecords(
            audit_pb.ListAuditRecordsRequest(target="agents/b1")
        ),
        lambda r: len(r.records) == 1,
    )
    assert created.records[0].method.endswith("/CreateAgent")
    assert created.records[0].subject == "admin-1"


async def test_changes_past_the_rate_limit_are_resource_exhausted(system: System) -> None:
    await _floor(system)
    settings = system.settings_for("availability", rate_limit_per_s=1.0)
    limited = await availability_main.start(replace(settings, rate_limit_burst=2), port=0)
    try:
        token = system.minter.token("a1", "agent")
        stub = pb_grpc.AvailabilityServiceStub(channel(f"127.0.0.1:{limited.port}", token))
        await eventually(lambda: limited.directory.agent("a1"))
        statuses = [pb.AGENT_STATUS_AVAILABLE, pb.AGENT_STATUS_ON_CONTACT]
        for n in range(2):
            await stub.SetStatus(
                pb.SetStatusRequest(
                    name="agents/a1/availability", status=statuses[n], idempotency_key=f"rl-{n}"
                )
            )
        with pytest.raises(grpc.aio.AioRpcError) as limited_call:
            await stub.SetStatus(
                pb.SetStatusRequest(
                    name="agents/a1/availability",
                    status=pb.AGENT_STATUS_BREAK,
                    idempotency_key="rl-3",
                )
            )
        assert limited_call.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        details = rpc_status.from_call(limited_call.value)
        assert details is not None
        retry = error_details_pb2.RetryInfo()
        assert any(d.Unpack(retry) for d in details.details)
        assert 0 < retry.retry_delay.ToTimedelta().total_seconds() <= 1.0
        # Reads are not rate-limited.
        for _ in range(5):
            await stub.GetAvailability(pb.GetAvailabilityRequest(name="agents/a1/availability"))
    finally:
        await limited.stop()
