"""Who may call which training RPC (rendered into docs/security.md)."""

from __future__ import annotations

from typing import Any

from wfm_runtime.auth import Role
from wfm_runtime.authz import (
    Grant,
    Rule,
    Scope,
    Target,
    agent_from_name,
    batch_of_agents,
    team_from_name,
)

SERVICE = "/wfm.training.v1.TrainingService/"

_EVERYONE = tuple(Grant(role) for role in Role)
# HR and the training team run training; admins may do anything.
_MANAGERS = (Grant(Role.HR), Grant(Role.TRAINER), Grant(Role.ADMIN))
_AGENT_OR_LEADER = (Grant(Role.AGENT, Scope.SELF), Grant(Role.TEAM_LEADER, Scope.TEAM))


def _enrolled_agents(request: Any) -> Target:
    # An agent may only enroll themselves: a batch never matches one caller.
    if len(request.agents) != 1:
        return batch_of_agents(list(request.agents))
    return agent_from_name(request.agents[0])


def _enrollment(request: Any) -> Target:
    parts = request.name.split("/")
    if len(parts) != 4 or parts[0] != "sessions" or parts[2] != "enrollments" or not parts[3]:
        return Target(unreadable=True)
    return Target(agent_id=parts[3])


def _agent_filter(request: Any) -> Target:
    return agent_from_name(request.agent) if request.agent else Target()


def _transcript(request: Any) -> Target:
    return agent_from_name(request.name, "transcript")


def _team(request: Any) -> Target:
    return team_from_name(request.team)


def _team_summary(request: Any) -> Target:
    return team_from_name(request.name.removesuffix("/trainingSummary"))


POLICY = {
    SERVICE + "CreateCourse": Rule(_MANAGERS, mutating=True),
    SERVICE + "GetCourse": Rule(_EVERYONE),
    SERVICE + "ListCourses": Rule(_EVERYONE),
    SERVICE + "UpdateCourse": Rule(_MANAGERS, mutating=True),
    SERVICE + "CreateSession": Rule(_MANAGERS, mutating=True),
    SERVICE + "UpdateSession": Rule(_MANAGERS, mutating=True),
    SERVICE + "CancelSession": Rule(_MANAGERS, mutating=True),
    SERVICE + "GetSession": Rule(_EVERYONE),
    # The training calendar: agents find sessions to enroll in where a course allows it.
    SERVICE + "ListSessions": Rule(_EVERYONE),
    # Agents enroll themselves where the course allows it (checked by the service).
    SERVICE + "EnrollAgents": Rule(
        (Grant(Role.AGENT, Scope.SELF), *_MANAGERS), _enrolled_agents, mutating=True
    ),
    SERVICE + "WithdrawEnrollment": Rule(
        (Grant(Role.AGENT, Scope.SELF), *_MANAGERS), _enrollment, mutating=True
    ),
    SERVICE + "StartSession": Rule(_MANAGERS, mutating=True),
    SERVICE + "MarkNoShow": Rule(_MANAGERS, _enrollment, mutating=True),
    SERVICE + "RecordCompletion": Rule(_MANAGERS, _enrollment, mutating=True),
    SERVICE + "RecordCompletions": Rule(_MANAGERS, mutating=True),
    # Agents list their own enrollments (filter by themselves); leaders their team's agents.
    SERVICE + "ListEnrollments": Rule((*_AGENT_OR_LEADER, *_MANAGERS), _agent_filter),
    SERVICE + "GetTranscript": Rule((*_AGENT_OR_LEADER, *_MANAGERS), _transcript),
    SERVICE + "ListDue": Rule((Grant(Role.TEAM_LEADER, Scope.TEAM), *_MANAGERS), _team),
    SERVICE + "GetTeamTrainingSummary": Rule(
        (Grant(Role.TEAM_LEADER, Scope.TEAM), *_MANAGERS), _team_summary
    ),
}
