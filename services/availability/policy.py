"""Who may call which availability RPC (rendered into docs/security.md)."""

from __future__ import annotations

from typing import Any

from wfm_runtime.auth import Role
from wfm_runtime.authz import Grant, Rule, Scope, Target, agent_from_name, team_from_name

SERVICE = "/wfm.availability.v1.AvailabilityService/"


def _agent(request: Any) -> Target:
    return agent_from_name(request.name, "availability")


def _team(request: Any) -> Target:
    return team_from_name(request.team)


_BOARD_READERS = (Grant(Role.TEAM_LEADER, Scope.TEAM), Grant(Role.SCHEDULER), Grant(Role.ADMIN))

POLICY = {
    # An agent sets only their own status; an admin may correct anyone's.
    SERVICE + "SetStatus": Rule(
        (Grant(Role.AGENT, Scope.SELF), Grant(Role.ADMIN)), _agent, mutating=True
    ),
    SERVICE + "GetAvailability": Rule((Grant(Role.AGENT, Scope.SELF), *_BOARD_READERS), _agent),
    # Team leaders must name their own team; schedulers and admins see every team.
    SERVICE + "ListAvailability": Rule(_BOARD_READERS, _team),
    SERVICE + "WatchAvailability": Rule(_BOARD_READERS, _team),
    # HR reviews absenteeism, so it reads history (not the live board).
    SERVICE + "GetStatusHistory": Rule(
        (Grant(Role.AGENT, Scope.SELF), *_BOARD_READERS, Grant(Role.HR)), _agent
    ),
}
