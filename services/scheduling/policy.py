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


def _updated_team(request: Any) -> Target:
    return team_from_name(request.team.name)


def _team(request: Any) -> Target:
    return team_from_name(request.team)


POLICY = {
    # The directory is managed by admins; anyone signed in may read team details.
    DIRECTORY + "CreateTeam": Rule((Grant(Role.ADMIN),), _new_team, mutating=True),
    DIRECTORY + "GetTeam": Rule(_EVERYONE),
    # Schedulers maintain a team's operating hours and rest rule too.
    DIRECTORY + "UpdateTeam": Rule(
        (Grant(Role.SCHEDULER), Grant(Role.ADMIN)), _updated_team, mutating=True
    ),
    DIRECTORY + "ListTeams": Rule(_EVERYONE),
    DIRECTORY + "CreateAgent": Rule((Grant(Role.ADMIN),), _new_agent, mutating=True),
    DIRECTORY + "UpdateAgent": Rule((Grant(Role.ADMIN),), _updated_agent, mutating=True),
    DIRECTORY + "GetAgent": Rule(_PEOPLE_READERS, _agent_name),
    DIRECTORY + "ListAgents": Rule(_PEOPLE_READERS[1:], _team),
}


ROSTER = "/wfm.scheduling.v1.RosterService/"

_PLANNERS = (Grant(Role.SCHEDULER), Grant(Role.ADMIN))
_ROSTER_READERS = (
    Grant(Role.AGENT, Scope.SELF),
    Grant(Role.TEAM_LEADER, Scope.TEAM),
    Grant(Role.SCHEDULER),
    Grant(Role.HR),
    Grant(Role.ADMIN),
)
_TEAM_READERS = (Grant(Role.TEAM_LEADER, Scope.TEAM), *_PLANNERS)


def _agent_field(request: Any) -> Target:
    return agent_from_name(request.agent)


def _agent_child(request: Any) -> Target:
    parts = request.name.split("/")
    if len(parts) != 4 or parts[0] != "agents" or not parts[1]:
        return Target(unreadable=True)
    return Target(agent_id=parts[1])


def _team_or_agent(request: Any) -> Target:
    return agent_from_name(request.agent) if request.agent else team_from_name(request.team)


POLICY.update(
    {
        # Sites and shift patterns: planned by schedulers; anyone signed in may read them.
        ROSTER + "CreateSite": Rule(_PLANNERS, mutating=True),
        ROSTER + "GetSite": Rule(_EVERYONE),
        ROSTER + "ListSites": Rule(_EVERYONE),
        ROSTER + "SetPublicHolidays": Rule(_PLANNERS, mutating=True),
        ROSTER + "CreateShiftPattern": Rule(_PLANNERS, mutating=True),
        ROSTER + "GetShiftPattern": Rule(_EVERYONE),
        ROSTER + "ListShiftPatterns": Rule(_EVERYONE),
        # Shifts are managed by schedulers and admins.
        ROSTER + "AssignShift": Rule(_PLANNERS, _agent_field, mutating=True),
        ROSTER + "BulkAssignShifts": Rule(_PLANNERS, mutating=True),
        ROSTER + "UpdateShift": Rule(_PLANNERS, _agent_child, mutating=True),
        ROSTER + "CancelShift": Rule(_PLANNERS, _agent_child, mutating=True),
        ROSTER + "PublishWeek": Rule(_PLANNERS, _team, mutating=True),
        # Agents read their own roster (published shifts only); team leaders their team's.
        ROSTER + "GetAgentRoster": Rule(_ROSTER_READERS, _agent_field),
        ROSTER + "GetTeamRoster": Rule(_TEAM_READERS, _team),
        # Agents request their own leave; schedulers decide.
        ROSTER + "RequestLeave": Rule(
            (Grant(Role.AGENT, Scope.SELF), *_PLANNERS), _agent_field, mutating=True
        ),
        ROSTER + "ApproveLeave": Rule(_PLANNERS, _agent_child, mutating=True),
        ROSTER + "DenyLeave": Rule(_PLANNERS, _agent_child, mutating=True),
        # Agents withdraw their own leave before it starts; schedulers any leave.
        ROSTER + "CancelLeave": Rule(
            (Grant(Role.AGENT, Scope.SELF), *_PLANNERS), _agent_child, mutating=True
        ),
        # Agents list their own requests; team leaders their team's (or one member's).
        ROSTER + "ListLeaveRequests": Rule(
            (
                Grant(Role.AGENT, Scope.SELF),
                Grant(Role.TEAM_LEADER, Scope.TEAM),
                Grant(Role.HR),
                *_PLANNERS,
            ),
            _team_or_agent,
        ),
        ROSTER + "GetLeaveBalance": Rule(_ROSTER_READERS, _agent_field),
        ROSTER + "SetCoverageRequirement": Rule(_PLANNERS, _team, mutating=True),
        ROSTER + "GetCoverage": Rule(_TEAM_READERS, _team),
    }
)
