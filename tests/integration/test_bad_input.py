"""Bad input through gRPC, against the real servers: INVALID_ARGUMENT naming the right field
(never INTERNAL), NOT_FOUND for unknown agents, and nothing recorded."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2, status_pb2
from grpc import StatusCode as Code
from grpc_status import rpc_status
from wfm.availability.v1 import availability_service_pb2 as pb
from wfm.scheduling.v1 import directory_service_pb2 as dpb

from tests.conftest import System
from wfm_runtime import pagination
from wfm_runtime.testing import eventually, unpack_details

pytestmark = pytest.mark.integration

AGENT = "agents/a1/availability"
DAY = datetime(2026, 3, 8, tzinfo=UTC)


@dataclass(frozen=True)
class Bad:
    label: str
    service: str  # "avail" or "directory"
    method: str
    request: Message
    fields: frozenset[str] = frozenset()  # BadRequest field violations expected
    code: Code = Code.INVALID_ARGUMENT
    subject: str = ""  # ResourceInfo.resource_name or PreconditionFailure subject


@dataclass
class Seen:
    code: Code
    status: status_pb2.Status | None
    details: list[Message] = field(default_factory=list)


def ts(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def set_status(
    name: str = AGENT,
    status: int = pb.AGENT_STATUS_BREAK,
    reason: str = "",
    key: str = "bad-key",
    expected: int | None = None,
) -> pb.SetStatusRequest:
    request = pb.SetStatusRequest(
        name=name,
        status=status,  # type: ignore[arg-type]
        reason_code=reason,
        idempotency_key=key,
    )
    if expected is not None:
        request.expected_version = expected
    return request


def history(
    name: str = AGENT, start: datetime | None = DAY, end: datetime | None = DAY + timedelta(days=1)
) -> pb.GetStatusHistoryRequest:
    request = pb.GetStatusHistoryRequest(name=name)
    if start is not None:
        request.start_time.CopyFrom(ts(start))
    if end is not None:
        request.end_time.CopyFrom(ts(end))
    return request


def new_team(team_id: str = "day", key: str = "bad-team", **changes: Any) -> dpb.CreateTeamRequest:
    team: dict[str, Any] = {
        "display_name": "Day",
        "client_time_zone": "Europe/London",
        "client": "acme",
    }
    team.update(changes)
    return dpb.CreateTeamRequest(team_id=team_id, team=dpb.Team(**team), idempotency_key=key)


def new_agent(
    agent_id: str = "E2", key: str = "bad-agent", **changes: Any
) -> dpb.CreateAgentRequest:
    agent: dict[str, Any] = {
        "display_name": "Ravi",
        "team": "teams/night",
        "site": "pune",
        "time_zone": "Asia/Kolkata",
        "contract_type": dpb.CONTRACT_TYPE_FULL_TIME,
        "weekly_minutes": 2400,
    }
    agent.update(changes)
    return dpb.CreateAgentRequest(agent_id=agent_id, agent=dpb.Agent(**agent), idempotency_key=key)


def update_agent(
    paths: list[str], name: str = "agents/a1", key: str = "bad-update", **changes: Any
) -> dpb.UpdateAgentRequest:
    return dpb.UpdateAgentRequest(
        agent=dpb.Agent(name=name, **changes),
        update_mask=field_mask_pb2.FieldMask(paths=paths),
        idempotency_key=key,
    )


def token(body: bytes) -> str:
    return base64.urlsafe_b64encode(body).decode().rstrip("=")


def A(label: str, method: str, request: Message, *fields: str, **kw: Any) -> Bad:
    return Bad(label, "avail", method, request, frozenset(fields), **kw)


def D(label: str, method: str, request: Message, *fields: str, **kw: Any) -> Bad:
    return Bad(label, "directory", method, request, frozenset(fields), **kw)


OTHER_FILTER = pagination.encode("a1", "some other filter")
GARBAGE = "not-a-token!!"

AVAILABILITY_CASES = [
    # SetStatus
    A("SetStatus: empty name", "SetStatus", set_status(name=""), "name"),
    A("SetStatus: name without suffix", "SetStatus", set_status(name="agents/a1"), "name"),
    A("SetStatus: other collection", "SetStatus", set_status(name="teams/a1/availability"), "name"),
    A("SetStatus: name with extra part", "SetStatus", set_status(name=AGENT + "/x"), "name"),
    A("SetStatus: empty id", "SetStatus", set_status(name="agents//availability"), "name"),
    A("SetStatus: id with space", "SetStatus", set_status(name="agents/a 1/availability"), "name"),
    A("SetStatus: id too long", "SetStatus", set_status(name=f"agents/{'a' * 64}/availability"),
      "name"),
    A("SetStatus: unknown status 99", "SetStatus", set_status(status=99), "status"),
    A("SetStatus: status -1", "SetStatus", set_status(status=-1), "status"),
    A("SetStatus: UNSPECIFIED", "SetStatus", set_status(status=pb.AGENT_STATUS_UNSPECIFIED),
      "status"),
    A("SetStatus: reason of 65", "SetStatus", set_status(reason="A" * 65), "reason_code"),
    A("SetStatus: reason of 10k", "SetStatus", set_status(reason="A" * 10_000), "reason_code"),
    A("SetStatus: lower-case reason", "SetStatus", set_status(reason="coffee"), "reason_code"),
    A("SetStatus: missing key", "SetStatus", set_status(key=""), "idempotency_key"),
    A("SetStatus: key with space", "SetStatus", set_status(key="a b"), "idempotency_key"),
    A("SetStatus: key of 129", "SetStatus", set_status(key="k" * 129), "idempotency_key"),
    A("SetStatus: non-ASCII key", "SetStatus", set_status(key="ключ"), "idempotency_key"),
    A("SetStatus: negative version", "SetStatus", set_status(expected=-1), "expected_version"),
    A("SetStatus: everything wrong", "SetStatus",
      set_status(name="", status=0, reason="x y", key="", expected=-1),
      "name", "status", "reason_code", "idempotency_key", "expected_version"),
    A("SetStatus: unknown agent", "SetStatus", set_status(name="agents/ghost/availability"),
      code=Code.NOT_FOUND, subject="agents/ghost"),
    A("SetStatus: stale version", "SetStatus", set_status(expected=5), code=Code.ABORTED),
    # GetAvailability
    A("GetAvailability: empty name", "GetAvailability", pb.GetAvailabilityRequest(), "name"),
    A("GetAvailability: agent name", "GetAvailability",
      pb.GetAvailabilityRequest(name="agents/a1"), "name"),
    A("GetAvailability: bad id", "GetAvailability",
      pb.GetAvailabilityRequest(name="agents/a%1/availability"), "name"),
    A("GetAvailability: unknown agent", "GetAvailability",
      pb.GetAvailabilityRequest(name="agents/ghost/availability"),
      code=Code.NOT_FOUND, subject="agents/ghost"),
    # ListAvailability
    A("ListAvailability: negative page size", "ListAvailability",
      pb.ListAvailabilityRequest(page_size=-1), "page_size"),
    A("ListAvailability: garbage token", "ListAvailability",
      pb.ListAvailabilityRequest(page_token=GARBAGE), "page_token"),
    A("ListAvailability: JSON list token", "ListAvailability",
      pb.ListAvailabilityRequest(page_token=token(b"[1, 2]")), "page_token"),
    A("ListAvailability: token of another filter", "ListAvailability",
      pb.ListAvailabilityRequest(page_token=OTHER_FILTER), "page_token"),
    A("ListAvailability: team without prefix", "ListAvailability",
      pb.ListAvailabilityRequest(team="night"), "team"),
    A("ListAvailability: empty team id", "ListAvailability",
      pb.ListAvailabilityRequest(team="teams/"), "team"),
    A("ListAvailability: unknown status", "ListAvailability",
      pb.ListAvailabilityRequest(status=99), "status"),  # type: ignore[arg-type]
    A("ListAvailability: several", "ListAvailability",
      pb.ListAvailabilityRequest(page_size=-7, team="x/y", status=42),  # type: ignore[arg-type]
      "page_size", "team", "status"),
    # WatchAvailability (server streaming)
    A("WatchAvailability: bad team", "WatchAvailability",
      pb.WatchAvailabilityRequest(team="night"), "team"),
    # GetStatusHistory
    A("GetStatusHistory: empty name", "GetStatusHistory", history(name=""), "name"),
    A("GetStatusHistory: missing start", "GetStatusHistory", history(start=None), "start_time"),
    A("GetStatusHistory: missing end", "GetStatusHistory", history(end=None), "end_time"),
    A("GetStatusHistory: missing both", "GetStatusHistory", history(start=None, end=None),
      "start_time", "end_time"),
    A("GetStatusHistory: inverted", "GetStatusHistory",
      history(start=DAY, end=DAY - timedelta(hours=1)), "end_time"),
    A("GetStatusHistory: empty range", "GetStatusHistory", history(start=DAY, end=DAY),
      "end_time"),
    A("GetStatusHistory: 32 days", "GetStatusHistory",
      history(end=DAY + timedelta(days=32)), "end_time"),
    A("GetStatusHistory: 31 days and a second", "GetStatusHistory",
      history(end=DAY + timedelta(days=31, seconds=1)), "end_time"),
    A("GetStatusHistory: bad name and range", "GetStatusHistory",
      history(name="agents/a1", end=DAY - timedelta(days=1)), "name", "end_time"),
    A("GetStatusHistory: unknown agent", "GetStatusHistory",
      history(name="agents/ghost/availability"), code=Code.NOT_FOUND, subject="agents/ghost"),
]  # fmt: skip

DIRECTORY_CASES = [
    # CreateTeam
    D("CreateTeam: empty id", "CreateTeam", new_team(team_id=""), "team_id"),
    D("CreateTeam: id with space", "CreateTeam", new_team(team_id="day shift"), "team_id"),
    D("CreateTeam: id starting with -", "CreateTeam", new_team(team_id="-day"), "team_id"),
    D("CreateTeam: id of 64", "CreateTeam", new_team(team_id="d" * 64), "team_id"),
    D("CreateTeam: no display name", "CreateTeam", new_team(display_name=""),
      "team.display_name"),
    D("CreateTeam: bad zone", "CreateTeam", new_team(client_time_zone="Mars/Base"),
      "team.client_time_zone"),
    D("CreateTeam: lower-case zone", "CreateTeam",
      new_team(client_time_zone="europe/london"), "team.client_time_zone"),
    D("CreateTeam: no zone", "CreateTeam", new_team(client_time_zone=""),
      "team.client_time_zone"),
    D("CreateTeam: client of 101", "CreateTeam", new_team(client="c" * 101), "team.client"),
    D("CreateTeam: missing key", "CreateTeam", new_team(key=""), "idempotency_key"),
    D("CreateTeam: no team at all", "CreateTeam",
      dpb.CreateTeamRequest(team_id="day", idempotency_key="k"),
      "team.display_name", "team.client_time_zone"),
    D("CreateTeam: existing team", "CreateTeam", new_team(team_id="night"),
      code=Code.ALREADY_EXISTS, subject="teams/night"),
    # GetTeam
    D("GetTeam: empty name", "GetTeam", dpb.GetTeamRequest(), "name"),
    D("GetTeam: bare id", "GetTeam", dpb.GetTeamRequest(name="night"), "name"),
    D("GetTeam: agent name", "GetTeam", dpb.GetTeamRequest(name="agents/night"), "name"),
    D("GetTeam: extra part", "GetTeam", dpb.GetTeamRequest(name="teams/night/x"), "name"),
    D("GetTeam: unknown", "GetTeam", dpb.GetTeamRequest(name="teams/ghost"),
      code=Code.NOT_FOUND, subject="teams/ghost"),
    # ListTeams
    D("ListTeams: negative page size", "ListTeams", dpb.ListTeamsRequest(page_size=-5),
      "page_size"),
    D("ListTeams: garbage token", "ListTeams", dpb.ListTeamsRequest(page_token=GARBAGE),
      "page_token"),
    D("ListTeams: token of agents", "ListTeams",
      dpb.ListTeamsRequest(page_token=pagination.encode("a1", "agents|")), "page_token"),
    # CreateAgent
    D("CreateAgent: empty id", "CreateAgent", new_agent(agent_id=""), "agent_id"),
    D("CreateAgent: id with slash", "CreateAgent", new_agent(agent_id="E/2"), "agent_id"),
    D("CreateAgent: unspecified contract", "CreateAgent",
      new_agent(contract_type=dpb.CONTRACT_TYPE_UNSPECIFIED), "agent.contract_type"),
    D("CreateAgent: unknown contract", "CreateAgent", new_agent(contract_type=99),
      "agent.contract_type"),
    D("CreateAgent: zero minutes", "CreateAgent", new_agent(weekly_minutes=0),
      "agent.weekly_minutes"),
    D("CreateAgent: negative minutes", "CreateAgent", new_agent(weekly_minutes=-60),
      "agent.weekly_minutes"),
    D("CreateAgent: full time over 3600", "CreateAgent", new_agent(weekly_minutes=3601),
      "agent.weekly_minutes"),
    D("CreateAgent: part time over 1800", "CreateAgent",
      new_agent(contract_type=dpb.CONTRACT_TYPE_PART_TIME, weekly_minutes=1801),
      "agent.weekly_minutes"),
    D("CreateAgent: bad zone", "CreateAgent", new_agent(time_zone="Nowhere/City"),
      "agent.time_zone"),
    D("CreateAgent: no zone", "CreateAgent", new_agent(time_zone=""), "agent.time_zone"),
    D("CreateAgent: no team", "CreateAgent", new_agent(team=""), "agent.team"),
    D("CreateAgent: bad team id", "CreateAgent", new_agent(team="teams/night shift"),
      "agent.team"),
    D("CreateAgent: empty team id", "CreateAgent", new_agent(team="teams/"), "agent.team"),
    D("CreateAgent: no display name", "CreateAgent", new_agent(display_name=""),
      "agent.display_name"),
    D("CreateAgent: site of 101", "CreateAgent", new_agent(site="s" * 101), "agent.site"),
    D("CreateAgent: missing key", "CreateAgent", new_agent(key=""), "idempotency_key"),
    D("CreateAgent: everything wrong", "CreateAgent",
      new_agent(agent_id="", key="", display_name="", team="", time_zone="", contract_type=0,
                weekly_minutes=0),
      "agent_id", "agent.contract_type", "agent.display_name", "agent.team",
      "agent.time_zone", "agent.weekly_minutes", "idempotency_key"),
    D("CreateAgent: unknown team", "CreateAgent", new_agent(team="teams/ghost"),
      code=Code.FAILED_PRECONDITION, subject="teams/ghost"),
    D("CreateAgent: existing agent", "CreateAgent", new_agent(agent_id="a1"),
      code=Code.ALREADY_EXISTS, subject="agents/a1"),
    # UpdateAgent
    D("UpdateAgent: empty name", "UpdateAgent", update_agent(["site"], name="", site="x"),
      "agent.name"),
    D("UpdateAgent: availability name", "UpdateAgent",
      update_agent(["site"], name=AGENT, site="x"), "agent.name"),
    D("UpdateAgent: empty mask", "UpdateAgent", update_agent([], site="x"), "update_mask"),
    D("UpdateAgent: version in mask", "UpdateAgent", update_agent(["version"], version=9),
      "update_mask"),
    D("UpdateAgent: name in mask", "UpdateAgent", update_agent(["name"]), "update_mask"),
    D("UpdateAgent: internal field name", "UpdateAgent",
      update_agent(["team_id"], team="teams/night"), "update_mask"),
    D("UpdateAgent: unknown paths", "UpdateAgent",
      update_agent(["site", "bogus", "agent.site"], site="x"), "update_mask"),
    D("UpdateAgent: unknown contract", "UpdateAgent",
      update_agent(["contract_type"], contract_type=99), "agent.contract_type"),
    D("UpdateAgent: minutes over cap", "UpdateAgent",
      update_agent(["weekly_minutes"], weekly_minutes=4000), "agent.weekly_minutes"),
    D("UpdateAgent: zero minutes", "UpdateAgent", update_agent(["weekly_minutes"]),
      "agent.weekly_minutes"),
    D("UpdateAgent: part time keeps full-time minutes", "UpdateAgent",
      update_agent(["contract_type"], contract_type=dpb.CONTRACT_TYPE_PART_TIME),
      "agent.weekly_minutes"),
    D("UpdateAgent: bad zone", "UpdateAgent", update_agent(["time_zone"], time_zone="Bad/Zone"),
      "agent.time_zone"),
    D("UpdateAgent: no display name", "UpdateAgent", update_agent(["display_name"]),
      "agent.display_name"),
    D("UpdateAgent: missing key", "UpdateAgent", update_agent(["site"], key="", site="x"),
      "idempotency_key"),
    D("UpdateAgent: unknown agent", "UpdateAgent",
      update_agent(["site"], name="agents/ghost", site="x"),
      code=Code.NOT_FOUND, subject="agents/ghost"),
    D("UpdateAgent: unknown team", "UpdateAgent", update_agent(["team"], team="teams/ghost"),
      code=Code.FAILED_PRECONDITION, subject="teams/ghost"),
    D("UpdateAgent: stale version", "UpdateAgent",
      update_agent(["site"], site="x", version=9), code=Code.ABORTED),
    # GetAgent
    D("GetAgent: empty name", "GetAgent", dpb.GetAgentRequest(), "name"),
    D("GetAgent: availability name", "GetAgent", dpb.GetAgentRequest(name=AGENT), "name"),
    D("GetAgent: team name", "GetAgent", dpb.GetAgentRequest(name="teams/night"), "name"),
    D("GetAgent: unknown", "GetAgent", dpb.GetAgentRequest(name="agents/ghost"),
      code=Code.NOT_FOUND, subject="agents/ghost"),
    # ListAgents
    D("ListAgents: negative page size", "ListAgents", dpb.ListAgentsRequest(page_size=-1),
      "page_size"),
    D("ListAgents: garbage token", "ListAgents", dpb.ListAgentsRequest(page_token=GARBAGE),
      "page_token"),
    D("ListAgents: token of teams", "ListAgents",
      dpb.ListAgentsRequest(page_token=pagination.encode("night", "teams")), "page_token"),
    D("ListAgents: token of another team", "ListAgents",
      dpb.ListAgentsRequest(team="teams/day",
                            page_token=pagination.encode("a1", "agents|night")),
      "page_token"),
    D("ListAgents: team without prefix", "ListAgents", dpb.ListAgentsRequest(team="night"),
      "team"),
]  # fmt: skip


async def call(system: System, service: str, method: str, request: Message) -> Any:
    rpc = getattr(system.avail if service == "avail" else system.directory, method)
    if method == "WatchAvailability":
        stream = rpc(request)
        try:
            return await asyncio.wait_for(stream.read(), 30)  # a hang fails, not blocks
        finally:
            stream.cancel()
    return await rpc(request)


async def attempt(system: System, service: str, method: str, request: Message) -> Seen | None:
    """The error the call ended with, None if it succeeded."""
    try:
        await call(system, service, method, request)
    except grpc.aio.AioRpcError as err:
        status = rpc_status.from_call(err)
        return Seen(err.code(), status, unpack_details(status) if status else [])
    return None


def problems_with(case: Bad, seen: Seen | None) -> list[str]:
    if seen is None:
        return [f"{case.label}: accepted"]
    if seen.code != case.code:
        return [f"{case.label}: {seen.code.name}, expected {case.code.name}"]
    if seen.status is None:
        return [f"{case.label}: no google.rpc.Status details"]
    found: list[str] = []
    infos = [d for d in seen.details if isinstance(d, error_details_pb2.ErrorInfo)]
    if len(infos) != 1 or not infos[0].reason or not infos[0].domain.endswith(".wfm"):
        found.append(f"{case.label}: ErrorInfo missing or odd: {infos}")
    bad = [d for d in seen.details if isinstance(d, error_details_pb2.BadRequest)]
    if case.code is Code.INVALID_ARGUMENT:
        violations = [v for b in bad for v in b.field_violations]
        fields = {v.field for v in violations}
        if fields != case.fields:
            found.append(f"{case.label}: fields {sorted(fields)}, expected {sorted(case.fields)}")
        if not all(v.description for v in violations):
            found.append(f"{case.label}: a violation without a description")
    elif bad:
        found.append(f"{case.label}: unexpected BadRequest {bad}")
    if case.subject:
        names = [
            d.resource_name for d in seen.details if isinstance(d, error_details_pb2.ResourceInfo)
        ]
        names += [
            v.subject
            for d in seen.details
            if isinstance(d, error_details_pb2.PreconditionFailure)
            for v in d.violations
        ]
        if names != [case.subject]:
            found.append(f"{case.label}: names {names}, expected [{case.subject!r}]")
    return found


async def counts(system: System) -> dict[str, int]:
    collections = {
        "availability events": system.availability.runtime.db["events"],
        "availability transitions": system.availability.views.transitions,
        "scheduling events": system.scheduling.runtime.db["events"],
    }
    return {name: int(await coll.count_documents({})) for name, coll in collections.items()}


async def ready(system: System) -> None:
    """A team, an agent and one status (version 1), all visible to the availability views."""
    await system.add_team("night")
    await system.add_agent("a1", "night")
    await system.known_to_availability("a1")
    first = await system.avail.SetStatus(
        pb.SetStatusRequest(name=AGENT, status=pb.AGENT_STATUS_AVAILABLE, idempotency_key="ok-1")
    )
    assert first.version == 1
    await eventually(
        lambda: system.avail.GetAvailability(pb.GetAvailabilityRequest(name=AGENT)),
        lambda r: r.version == 1,
    )
    await eventually(
        lambda: system.availability.views.transitions.count_documents({}), lambda n: n == 1
    )


async def test_bad_requests_are_refused_precisely_and_change_nothing(system: System) -> None:
    await ready(system)
    before = await counts(system)
    assert before["availability events"] == 1
    assert before["scheduling events"] == 2

    problems: list[str] = []
    codes: dict[str, Code] = {}
    for case in [*AVAILABILITY_CASES, *DIRECTORY_CASES]:
        seen = await attempt(system, case.service, case.method, case.request)
        if seen is not None:
            codes[case.label] = seen.code
        problems += problems_with(case, seen)
    assert [label for label, code in codes.items() if code is Code.INTERNAL] == []
    assert problems == []

    # Nothing was recorded, claimed or projected.
    assert await counts(system) == before
    state = await system.avail.GetAvailability(pb.GetAvailabilityRequest(name=AGENT))
    assert (state.version, state.status) == (1, pb.AGENT_STATUS_AVAILABLE)
    agent = await system.directory.GetAgent(dpb.GetAgentRequest(name="agents/a1"))
    assert (agent.version, agent.team, agent.site, agent.weekly_minutes) == (
        1,
        "teams/night",
        "pune",
        2400,
    )
    assert agent.contract_type == dpb.CONTRACT_TYPE_FULL_TIME
    teams = await system.directory.ListTeams(dpb.ListTeamsRequest())
    assert [t.name for t in teams.teams] == ["teams/night"]
    agents = await system.directory.ListAgents(dpb.ListAgentsRequest())
    assert [a.name for a in agents.agents] == ["agents/a1"]

    # The keys the refused requests carried are still free for a real change.
    retry = await system.avail.SetStatus(set_status(status=pb.AGENT_STATUS_BREAK, key="bad-key"))
    assert (retry.version, retry.status) == (2, pb.AGENT_STATUS_BREAK)


async def test_extreme_but_valid_history_ranges_are_answered(system: System) -> None:
    await ready(system)
    first_day = datetime(1, 1, 1, tzinfo=UTC)
    last_day = datetime(9999, 12, 31, tzinfo=UTC)
    for start, end in [
        (first_day, first_day + timedelta(days=1)),
        (last_day - timedelta(days=31), last_day),
        (DAY - timedelta(days=31), DAY),
    ]:
        reply = await system.avail.GetStatusHistory(history(start=start, end=end))
        assert list(reply.segments) == []
        assert reply.covered_duration.ToTimedelta() == timedelta()


# --- known bugs: each is a request that should be INVALID_ARGUMENT ---------------------------
async def expect_invalid(system: System, cases: list[Bad]) -> None:
    problems: list[str] = []
    for case in cases:
        problems += problems_with(
            case, await attempt(system, case.service, case.method, case.request)
        )
    assert problems == []


async def test_out_of_range_timestamps_are_invalid_argument(system: System) -> None:
    await ready(system)
    too_late = pb.GetStatusHistoryRequest(
        name=AGENT, start_time=Timestamp(seconds=10**12), end_time=Timestamp(seconds=10**12 + 60)
    )
    bad_nanos = pb.GetStatusHistoryRequest(
        name=AGENT, start_time=Timestamp(seconds=0, nanos=-1), end_time=ts(DAY)
    )
    await expect_invalid(
        system,
        [
            A("GetStatusHistory: year 33658", "GetStatusHistory", too_late,
              "start_time", "end_time"),
            A("GetStatusHistory: negative nanos", "GetStatusHistory", bad_nanos, "start_time"),
        ],
    )  # fmt: skip


async def test_deeply_nested_page_token_is_invalid_argument(system: System) -> None:
    await ready(system)
    nested = token(b"[" * 100_000)
    await expect_invalid(
        system,
        [
            A("ListAvailability: nested token", "ListAvailability",
              pb.ListAvailabilityRequest(page_token=nested), "page_token"),
            D("ListTeams: nested token", "ListTeams",
              dpb.ListTeamsRequest(page_token=nested), "page_token"),
            D("ListAgents: nested token", "ListAgents",
              dpb.ListAgentsRequest(page_token=nested), "page_token"),
        ],
    )  # fmt: skip


async def test_trailing_newline_is_refused(system: System) -> None:
    await ready(system)
    await expect_invalid(
        system,
        [
            D("CreateTeam: id with newline", "CreateTeam", new_team(team_id="day\n"), "team_id"),
            A("SetStatus: reason with newline", "SetStatus", set_status(reason="COFFEE\n"),
              "reason_code"),
            A("SetStatus: key with newline", "SetStatus", set_status(key="k-2\n"),
              "idempotency_key"),
        ],
    )  # fmt: skip


async def test_agent_team_must_be_a_resource_name(system: System) -> None:
    await ready(system)
    await expect_invalid(
        system,
        [
            D("CreateAgent: bare team id", "CreateAgent", new_agent(team="night"), "agent.team"),
            D("UpdateAgent: bare team id", "UpdateAgent", update_agent(["team"], team="night"),
              "agent.team"),
        ],
    )  # fmt: skip
