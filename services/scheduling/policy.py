"""Who may call which scheduling RPC (rendered into docs/security.md)."""

from __future__ import annotations

from typing import Any

from wfm_runtime.auth import Role
from wfm_runtime.authz import Grant, Rule, Scope, Target, agent_from_name, team_from_name

DIRECTORY = "/wfm.scheduling.v1.DirectoryService/"

_EVERYONE = tuple(Grant(role) for role in Role)
_PEOPLE_READERS = (
    Grant(Role.AGENT, Scope.SELF),
    Grant(Role.TEAM_LEADER, Scope.TEAM),
    Grant(Role.SCHEDULER),
    Grant(Role.HR),
    Grant(Role.TRAINER),
    Grant(Role.ADMIN),
)


def _new_team(request: Any) -> Target:
    return Target(team_id=request.team_id)


def _new_agent(request: Any) -> Target:
    return Target(agent_id=request.agent_id, team_id=request.agent.team.removeprefix("teams/"))


def _agent_name(request: Any) -> Target:
    return agent_from_name(request.name)


def _updated_agent(request: Any) -> Target:
    return agent_from_name(request.agent.name)


def _team(request: Any) -> Target:
    return team_from_name(request.team)


POLICY = {
    # The directory is managed by admins; anyone signed in may read team details.
    DIRECTORY + "CreateTeam": Rule((Grant(Role.ADMIN),), _new_team, mutating=True),
    DIRECTORY + "GetTeam": Rule(_EVERYONE),
    DIRECTORY + "ListTeams": Rule(_EVERYONE),
    DIRECTORY + "CreateAgent": Rule((Grant(Role.ADMIN),), _new_agent, mutating=True),
    DIRECTORY + "UpdateAgent": Rule((Grant(Role.ADMIN),), _updated_agent, mutating=True),
    DIRECTORY + "GetAgent": Rule(_PEOPLE_READERS, _agent_name),
    DIRECTORY + "ListAgents": Rule(_PEOPLE_READERS[1:], _team),
}
