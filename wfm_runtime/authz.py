"""Authorization: each service declares who may call what; `Guard` enforces it in one place.

A grant is a role plus a scope: ANY (every target), SELF (the caller's own agent id), TEAM (an
agent or team the caller leads, from the token's `teams` claim). A request whose target cannot
be read is let through to validation, which rejects it with INVALID_ARGUMENT.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from wfm_runtime.auth import PermissionDenied, Principal, RateLimited, Role, TokenVerifier


class Scope(Enum):
    ANY = "any"
    SELF = "own"
    TEAM = "own team"


@dataclass(frozen=True)
class Grant:
    role: Role
    scope: Scope = Scope.ANY


@dataclass(frozen=True)
class Target:
    """What a request is about; empty strings when it names no agent or team."""

    agent_id: str = ""
    team_id: str = ""
    unreadable: bool = False  # the request names a target we could not parse
    # Every agent a batch names, for the audit trail and refusals. `agent_id` stays empty: a
    # batch is no single caller's own, so the SELF scope never matches it.
    batch_agent_ids: tuple[str, ...] = ()


# The agents of one batch an audit record names; then how many more. Enough for any class
# (a training batch is capped at 500, a refused request may name any number); the events the
# batch wrote name them all, found by the record's request id.
AUDITED_BATCH_AGENTS = 50


@dataclass(frozen=True)
class Rule:
    grants: tuple[Grant, ...]
    target: Callable[[Any], Target] = lambda _request: Target()
    mutating: bool = False


def agent_from_name(name: str, suffix: str = "") -> Target:
    parts = name.split("/")
    expected = 3 if suffix else 2
    if len(parts) != expected or parts[0] != "agents" or not parts[1]:
        return Target(unreadable=True)
    return Target(agent_id=parts[1])


def batch_of_agents(names: list[str]) -> Target:
    """The target of a request naming several agents (a batch): each by its id, or as given
    when it is not an agent name (validation refuses it; the audit trail still shows it)."""
    return Target(batch_agent_ids=tuple(agent_from_name(n).agent_id or n for n in names))


def batch_audit_names(target: Target) -> tuple[str, ...]:
    """A batch's agents as an audit record names them: `agents/{id}` for the first
    AUDITED_BATCH_AGENTS, then `+N more agents`, so a record stays small whatever was sent."""
    agents = target.batch_agent_ids
    names = [f"agents/{agent}"[:100] for agent in agents[:AUDITED_BATCH_AGENTS]]
    if len(agents) > AUDITED_BATCH_AGENTS:
        names.append(f"+{len(agents) - AUDITED_BATCH_AGENTS} more agents")
    return tuple(names)


def team_from_name(name: str) -> Target:
    if not name:
        return Target()
    parts = name.split("/")
    if len(parts) != 2 or parts[0] != "teams" or not parts[1]:
        return Target(unreadable=True)
    return Target(team_id=parts[1])


TeamOf = Callable[[str], Awaitable[str | None]]


@dataclass
class RateLimiter:
    """Token bucket per caller for mutating RPCs; rate 0 turns it off."""

    rate_per_s: float
    burst: float
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, subject: str, now: float | None = None) -> float:
        """0 if allowed, else seconds until the next request would be."""
        if self.rate_per_s <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(subject, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate_per_s)
        if tokens < 1:
            self._buckets[subject] = (tokens, now)
            return (1 - tokens) / self.rate_per_s
        self._buckets[subject] = (tokens - 1, now)
        return 0.0


class Guard:
    """Authenticates, authorizes and rate-limits every RPC of one service."""

    def __init__(
        self,
        verifier: TokenVerifier,
        policy: Mapping[str, Rule],
        team_of_agent: TeamOf,
        limiter: RateLimiter,
    ) -> None:
        self._verifier = verifier
        self._policy = policy
        self._team_of_agent = team_of_agent
        self._limiter = limiter

    def rule(self, method: str) -> Rule | None:
        return self._policy.get(method)

    def authenticate(self, metadata: Mapping[str, Any]) -> Principal:
        return self._verifier.principal(metadata)

    async def authorize(self, principal: Principal, method: str, request: Any) -> None:
        """PermissionDenied unless a grant covers the call; RateLimited past the caller's rate."""
        rule = self._policy.get(method)
        if rule is None:
            raise PermissionDenied(f"{method} is not open to any role")
        target = rule.target(request)
        if not await self._allowed(principal, rule, target):
            raise PermissionDenied(
                f"{', '.join(sorted(r.value for r in principal.roles)) or 'no role'} may not call "
                f"{method.rsplit('/', 1)[-1]} for {_describe(target)}",
                subject=principal.subject,
            )
        if rule.mutating:
            wait = self._limiter.take(principal.subject)
            if wait:
                raise RateLimited(
                    f"too many changes from {principal.subject}; retry in {wait:.2f}s",
                    retry_after_s=f"{wait:.3f}",
                )

    async def _allowed(self, principal: Principal, rule: Rule, target: Target) -> bool:
        for grant in rule.grants:
            if not principal.has(grant.role):
                continue
            if grant.scope is Scope.ANY or target.unreadable:
                return True
            # A request that names no agent is nobody's own (an empty subject is refused at the
            # token check too: two empty strings must never read as "the caller's").
            if (
                grant.scope is Scope.SELF
                and target.agent_id
                and target.agent_id == principal.subject
            ):
                return True
            if grant.scope is Scope.TEAM and await self._in_my_teams(principal, target):
                return True
        return False

    async def _in_my_teams(self, principal: Principal, target: Target) -> bool:
        if target.team_id:
            return target.team_id in principal.teams
        if target.agent_id:
            return (await self._team_of_agent(target.agent_id)) in principal.teams
        return False


def _describe(target: Target) -> str:
    if target.agent_id:
        return f"agents/{target.agent_id[:80]}"
    if target.team_id:
        return f"teams/{target.team_id[:80]}"
    if target.batch_agent_ids:
        shown = ", ".join(f"agents/{a[:80]}" for a in target.batch_agent_ids[:3])
        more = len(target.batch_agent_ids) - 3
        return f"{shown} and {more} more" if more > 0 else shown
    return "every team"


def render_matrix(policies: Mapping[str, Mapping[str, Rule]]) -> str:
    """The written matrix (docs/security.md) from the policies the code enforces."""
    roles = list(Role)
    lines = [
        "| RPC | " + " | ".join(r.value for r in roles) + " |",
        "|---|" + "---|" * len(roles),
    ]
    for service, policy in policies.items():
        for method, rule in policy.items():
            cells = []
            for role in roles:
                scopes = [g.scope.value for g in rule.grants if g.role is role]
                cells.append(", ".join(scopes) if scopes else "-")
            short = method.rsplit("/", 1)[-1]
            mark = " (change)" if rule.mutating else ""
            lines.append(f"| {service} `{short}`{mark} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
