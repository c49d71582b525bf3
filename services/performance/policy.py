"""Who may call which performance RPC (rendered into docs/security.md).

Case outcomes come from the contact platform's integration, which calls with an admin token:
there is no separate service role, and no person on the floor records cases by hand.
"""

from __future__ import annotations

from typing import Any

from wfm_runtime.auth import Role
from wfm_runtime.authz import Grant, Rule, Scope, Target, agent_from_name, team_from_name

SERVICE = "/wfm.performance.v1.PerformanceService/"


def _agent(request: Any) -> Target:
    return agent_from_name(request.name, "scorecard")


def _team(request: Any) -> Target:
    return team_from_name(request.team)


def _thresholds_team(name: str) -> Target:
    parts = name.split("/")
    if len(parts) != 3 or parts[2] != "redFlagThresholds":
        return Target(unreadable=True)
    return team_from_name("/".join(parts[:2]))


_TEAM_READERS = (Grant(Role.TEAM_LEADER, Scope.TEAM), Grant(Role.HR), Grant(Role.ADMIN))
# Agents read their own scorecard (self-management); team leaders their team's; HR all.
_SCORECARD_READERS = (Grant(Role.AGENT, Scope.SELF), *_TEAM_READERS)

POLICY = {
    SERVICE + "RecordCase": Rule((Grant(Role.ADMIN),), mutating=True),
    SERVICE + "RecordCases": Rule((Grant(Role.ADMIN),), mutating=True),
    SERVICE + "GetScorecard": Rule(_SCORECARD_READERS, _agent),
    SERVICE + "ListScorecards": Rule(_TEAM_READERS, _team),
    SERVICE + "GetTeamSummary": Rule(_TEAM_READERS, _team),
    # Real-time adherence: the floor's team leaders (own team), HR and admins, as scorecards.
    SERVICE + "GetTeamAdherence": Rule(
        _TEAM_READERS, lambda request: team_from_name(request.name.removesuffix("/adherence"))
    ),
    # A team leader tunes their own team's thresholds; an admin anyone's.
    SERVICE + "SetRedFlagThresholds": Rule(
        (Grant(Role.TEAM_LEADER, Scope.TEAM), Grant(Role.ADMIN)),
        lambda request: _thresholds_team(request.thresholds.name),
        mutating=True,
    ),
    SERVICE + "GetRedFlagThresholds": Rule(
        _TEAM_READERS, lambda request: _thresholds_team(request.name)
    ),
    SERVICE + "ListRedFlags": Rule(_TEAM_READERS, _team),
    SERVICE + "ExplainMetric": Rule(_SCORECARD_READERS, _agent),
}
