"""A token must name its caller: an empty `sub` would match requests that name no agent."""

from __future__ import annotations

import pytest

from wfm_runtime.auth import Role, Unauthenticated, _principal


def test_empty_subject_is_unauthenticated() -> None:
    with pytest.raises(Unauthenticated):
        _principal({"sub": "", "roles": ["agent"]})


def test_subject_is_kept() -> None:
    principal = _principal({"sub": "a-1", "roles": ["agent"], "teams": []})
    assert principal.subject == "a-1"
    assert principal.roles == frozenset({Role.AGENT})


async def test_a_request_naming_no_agent_is_nobodys_own() -> None:
    # The guard's second line behind the token check: SELF never matches an empty agent.
    from wfm_runtime.auth import Principal
    from wfm_runtime.authz import Grant, Guard, RateLimiter, Rule, Scope, Target

    async def no_team(_agent: str) -> str:
        return ""

    guard = Guard(None, {}, no_team, RateLimiter(0, 0))  # type: ignore[arg-type]
    own = Rule((Grant(Role.AGENT, Scope.SELF),))
    nobody = Principal("", frozenset({Role.AGENT}))
    assert not await guard._allowed(nobody, own, Target())
    assert await guard._allowed(Principal("a-1", frozenset({Role.AGENT})), own, Target("a-1"))
