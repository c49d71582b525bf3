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
