"""docs/security.md shows exactly the matrix the code enforces."""

from __future__ import annotations

from pathlib import Path

from services.availability.policy import POLICY as AVAILABILITY
from services.performance.policy import POLICY as PERFORMANCE
from services.scheduling.policy import POLICY as SCHEDULING
from services.training.policy import POLICY as TRAINING
from wfm_runtime.auth import Role
from wfm_runtime.authz import RateLimiter, render_matrix
from wfm_runtime.service import AUDIT_POLICY

WRITE_VERBS = (
    "Set",
    "Create",
    "Update",
    "Assign",
    "BulkAssign",
    "Cancel",
    "Publish",
    "Request",
    "Approve",
    "Deny",
    "Record",
)
DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def test_written_matrix_matches_the_policies() -> None:
    text = DOC.read_text()
    written = text.split("<!-- matrix:begin -->\n", 1)[1].split("<!-- matrix:end -->", 1)[0]
    rendered = render_matrix(
        {
            "availability": AVAILABILITY,
            "scheduling": SCHEDULING,
            "training": TRAINING,
            "performance": PERFORMANCE,
            "audit (every service)": AUDIT_POLICY,
        }
    )
    assert written == rendered, "docs/security.md is out of date: paste render_matrix() output"


def test_every_policy_names_only_known_roles_and_marks_writes() -> None:
    for policy in (AVAILABILITY, SCHEDULING, PERFORMANCE):
        for method, rule in policy.items():
            assert all(isinstance(g.role, Role) for g in rule.grants), method
            is_write = method.rsplit("/", 1)[-1].startswith(WRITE_VERBS)
            assert rule.mutating == is_write, method


def test_sites_and_patterns_are_listed_by_whoever_may_get_them() -> None:
    roster = "/wfm.scheduling.v1.RosterService/"
    for get, listing in (("GetSite", "ListSites"), ("GetShiftPattern", "ListShiftPatterns")):
        assert SCHEDULING[roster + listing].grants == SCHEDULING[roster + get].grants
        assert not SCHEDULING[roster + listing].mutating


TRAINING_WRITES = {
    "CreateCourse",
    "CreateSession",
    "EnrollAgents",
    "WithdrawEnrollment",
    "StartSession",
    "MarkNoShow",
    "UpdateCourse",
    "UpdateSession",
    "CancelSession",
    "RecordCompletion",
    "RecordCompletions",
}


def test_training_policy_marks_exactly_its_writes() -> None:
    for method, rule in TRAINING.items():
        assert all(isinstance(g.role, Role) for g in rule.grants), method
        assert rule.mutating == (method.rsplit("/", 1)[-1] in TRAINING_WRITES), method


def test_rate_limiter_allows_the_burst_then_asks_to_wait() -> None:
    limiter = RateLimiter(rate_per_s=2, burst=3)
    assert [limiter.take("a1", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a1", now=0.0) == 0.5  # one token comes back every 0.5 s
    assert limiter.take("a2", now=0.0) == 0.0  # callers have separate buckets
    assert limiter.take("a1", now=0.5) == 0.0


def test_rate_limit_zero_means_off() -> None:
    limiter = RateLimiter(rate_per_s=0, burst=0)
    assert all(limiter.take("a1", now=0.0) == 0.0 for _ in range(1000))
