"""DirectoryService servicer: proto <-> domain; the rules live in domain.py."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, TypeAlias

import grpc
from wfm.scheduling.v1 import directory_service_pb2 as pb
from wfm.scheduling.v1 import directory_service_pb2_grpc as pb_grpc
from wfm.scheduling.v1 import events_pb2

from services.scheduling import domain, store
from services.scheduling.views import DirectoryViews
from wfm_runtime import pagination
from wfm_runtime.commands import CommandRunner, command_for
from wfm_runtime.errors import NotFound, Violations
from wfm_runtime.grpcserver import bind
from wfm_runtime.timefmt import utc_now
from wfm_runtime.validation import check_id, check_idempotency_key, check_page_size, parse_name

Ctx: TypeAlias = grpc.aio.ServicerContext


class DirectoryApi(pb_grpc.DirectoryServiceServicer):
    def __init__(
        self, commands: CommandRunner, directory: store.DirectoryStore, views: DirectoryViews
    ) -> None:
        self._commands = commands
        self._store = directory
        self._views = views
        self._teams = directory.team_behaviour()
        self._agents = directory.agent_behaviour()
        # Agents this process registered or changed that the `agents` view may not show yet:
        # team_members overlays them, so a roster right after a team move shows it.
        self._unprojected_agents: set[str] = set()

    async def CreateTeam(self, request: pb.CreateTeamRequest, context: Ctx) -> pb.Team:
        v = Violations()
        team = store.team_from_proto(request.team, request.team_id)
        domain.validate_team(team, v)
        check_idempotency_key(v, request.idempotency_key)
        v.raise_if_any()
        outcome = await self._commands.execute(
            self._teams,
            command_for(store.TEAM, team.team_id, request),
            lambda current, version: events_pb2.TeamCreated(
                team=store.team_to_proto(
                    replace(
                        domain.decide_create_team(current, team, utc_now()), version=version + 1
                    )
                )
            ),
        )
        return store.team_to_proto(outcome.state)

    async def UpdateTeam(self, request: pb.UpdateTeamRequest, context: Ctx) -> pb.Team:
        v = Violations()
        team_id = parse_name(v, request.team.name, "team.name", "teams")
        paths = frozenset(request.update_mask.paths)
        v.check(bool(paths), "update_mask", "name at least one field to change")
        for path in paths - domain.UPDATABLE_TEAM_FIELDS:
            v.add("update_mask", f"{path[:80]!r} cannot be changed")
        check_idempotency_key(v, request.idempotency_key)
        v.raise_if_any()
        changes = store.team_from_proto(request.team, team_id)
        command = replace(
            command_for(store.TEAM, team_id, request),
            expected_version=request.team.version or None,
        )

        def decide(current: domain.Team, version: int) -> events_pb2.TeamUpdated | None:
            result = domain.decide_update_team(current, changes, paths, utc_now())
            if result is None:
                return None
            team, changed = result
            return events_pb2.TeamUpdated(
                team=store.team_to_proto(replace(team, version=version + 1)),
                changed_fields=changed,
            )

        outcome = await self._commands.execute(self._teams, command, decide)
        return store.team_to_proto(outcome.state)

    async def GetTeam(self, request: pb.GetTeamRequest, context: Ctx) -> pb.Team:
        v = Violations()
        team_id = parse_name(v, request.name, "name", "teams")
        v.raise_if_any()
        team = await self._latest_team(team_id)
        if team is None:
            raise NotFound("team", request.name)
        return store.team_to_proto(team)

    async def ListTeams(self, request: pb.ListTeamsRequest, context: Ctx) -> pb.ListTeamsResponse:
        v = Violations()
        page_size = check_page_size(v, request.page_size)
        v.raise_if_any()
        after = pagination.decode(request.page_token, "teams")
        teams = await self._views.list_teams(after, page_size + 1)
        return pb.ListTeamsResponse(
            teams=[store.team_to_proto(t) for t in teams[:page_size]],
            next_page_token=_next(teams, page_size, "teams", lambda t: t.team_id),
        )

    async def CreateAgent(self, request: pb.CreateAgentRequest, context: Ctx) -> pb.Agent:
        v = Violations()
        check_id(v, request.agent_id, "agent_id", "agent id")
        agent = store.agent_from_proto(request.agent, request.agent_id)
        if request.agent.team:
            parse_name(v, request.agent.team, "agent.team", "teams")
        _check_contract(v, request.agent.contract_type, "agent.contract_type")
        domain.validate_agent(agent, v)
        check_idempotency_key(v, request.idempotency_key)
        v.raise_if_any()
        bind(agent_id=agent.agent_id)
        team_exists = await self._latest_team(agent.team_id) is not None
        outcome = await self._commands.execute(
            self._agents,
            command_for(store.AGENT, agent.agent_id, request),
            lambda current, version: events_pb2.AgentRegistered(
                agent=store.agent_to_proto(
                    replace(
                        domain.decide_register_agent(current, agent, team_exists, utc_now()),
                        version=version + 1,
                    )
                )
            ),
        )
        if outcome.event is not None:
            self._unprojected_agents.add(agent.agent_id)
        return store.agent_to_proto(outcome.state)

    async def UpdateAgent(self, request: pb.UpdateAgentRequest, context: Ctx) -> pb.Agent:
        v = Violations()
        agent_id = parse_name(v, request.agent.name, "agent.name", "agents")
        paths = frozenset(request.update_mask.paths)
        v.check(bool(paths), "update_mask", "name at least one field to change")
        for path in paths - domain.UPDATABLE_AGENT_FIELDS:
            v.add("update_mask", f"{path[:80]!r} cannot be changed")
        if "contract_type" in paths:
            _check_contract(v, request.agent.contract_type, "agent.contract_type")
        if "team" in paths and request.agent.team:
            parse_name(v, request.agent.team, "agent.team", "teams")
        check_idempotency_key(v, request.idempotency_key)
        v.raise_if_any()
        bind(agent_id=agent_id)
        changes = store.agent_from_proto(request.agent, agent_id)
        if await self.latest_agent(agent_id) is None:
            raise NotFound("agent", request.agent.name)
        team_exists = await self._latest_team(changes.team_id) is not None
        expected = request.agent.version or None
        outcome = await self._commands.execute(
            self._agents,
            command_for(store.AGENT, agent_id, request, expected_version=expected),
            lambda current, version: _agent_updated(
                domain.decide_update_agent(current, changes, paths, team_exists, utc_now()),
                version,
            ),
        )
        if outcome.event is not None:
            self._unprojected_agents.add(agent_id)
        return store.agent_to_proto(outcome.state)

    async def GetAgent(self, request: pb.GetAgentRequest, context: Ctx) -> pb.Agent:
        v = Violations()
        agent_id = parse_name(v, request.name, "name", "agents")
        v.raise_if_any()
        agent = await self.latest_agent(agent_id)
        if agent is None:
            raise NotFound("agent", request.name)
        return store.agent_to_proto(agent)

    async def ListAgents(
        self, request: pb.ListAgentsRequest, context: Ctx
    ) -> pb.ListAgentsResponse:
        v = Violations()
        page_size = check_page_size(v, request.page_size)
        team_id = parse_name(v, request.team, "team", "teams") if request.team else ""
        v.raise_if_any()
        after = pagination.decode(request.page_token, f"agents|{team_id}")
        agents = await self._views.list_agents(team_id, after, page_size + 1)
        return pb.ListAgentsResponse(
            agents=[store.agent_to_proto(a) for a in agents[:page_size]],
            next_page_token=_next(agents, page_size, f"agents|{team_id}", lambda a: a.agent_id),
        )

    # Reads prefer what this process just wrote, so a Get right after a Create sees it.
    async def latest_team(self, team_id: str) -> domain.Team | None:
        return await self._latest_team(team_id)

    async def _latest_team(self, team_id: str) -> domain.Team | None:
        cached = self._commands.cached(store.TEAM, team_id)
        return cached if isinstance(cached, domain.Team) else await self._store.team(team_id)

    async def latest_agent(self, agent_id: str) -> domain.Agent | None:
        cached = self._commands.cached(store.AGENT, agent_id)
        return cached if isinstance(cached, domain.Agent) else await self._store.agent(agent_id)

    async def team_members(self, team_id: str) -> list[domain.Agent]:
        """The team's agents in id order as the `agents` view lists them, with this process's
        newer commits on top: an agent moved here joins the new team and leaves the old one at
        once, not when the projection catches up."""
        # Asked before the view is read: a commit projected in between is in the view.
        pending = await self._pending_agents()
        members = {a.agent_id: a for a in await self._views.list_agents(team_id, "", 100_000)}
        for agent in pending:
            if agent.team_id == team_id:
                members[agent.agent_id] = agent
            else:
                members.pop(agent.agent_id, None)
        return [members[a] for a in sorted(members)]

    async def _pending_agents(self) -> list[domain.Agent]:
        """The agents this process committed that the view holds an older version of; the
        ones it has caught up with leave `_unprojected_agents`."""
        ids = sorted(self._unprojected_agents)
        if not ids:
            return []
        viewed = await self._views.agent_versions(ids)
        pending = []
        for agent_id in ids:
            cached = self._commands.cached(store.AGENT, agent_id)
            if isinstance(cached, domain.Agent) and cached.version > viewed.get(agent_id, 0):
                pending.append(cached)
            else:
                self._unprojected_agents.discard(agent_id)
        return pending


def _agent_updated(
    result: tuple[domain.Agent, list[str]] | None, version: int
) -> events_pb2.AgentUpdated | None:
    if result is None:
        return None
    agent, changed = result
    return store.agent_updated(replace(agent, version=version + 1), changed)


def _check_contract(v: Violations, value: int, field_path: str) -> None:
    v.check(
        store.contract_from_proto(value) is not None,
        field_path,
        "must be CONTRACT_TYPE_FULL_TIME or CONTRACT_TYPE_PART_TIME",
    )


def _next(items: list[Any], page_size: int, filter_key: str, key: Any) -> str:
    if len(items) <= page_size:
        return ""
    return pagination.encode(key(items[page_size - 1]), filter_key)
