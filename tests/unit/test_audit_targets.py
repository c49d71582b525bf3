"""What an audit record names as the targets of a change: the agent or team the policy found,
and the resource the request is about (a session, a course, a site...)."""

from __future__ import annotations

from wfm.availability.v1 import availability_service_pb2 as apb
from wfm.performance.v1 import performance_service_pb2 as ppb
from wfm.scheduling.v1 import roster_service_pb2 as rpb
from wfm.training.v1 import training_service_pb2 as tpb

from services.training.policy import POLICY, SERVICE
from wfm_runtime.authz import AUDITED_BATCH_AGENTS, Target, batch_audit_names
from wfm_runtime.grpcserver import _target_names


def test_a_training_change_names_its_session_or_course() -> None:
    nobody = Target()
    cases = [
        (tpb.CreateSessionRequest(session_id="fib-1"), ("sessions/fib-1",)),
        (tpb.StartSessionRequest(name="sessions/fib-1"), ("sessions/fib-1",)),
        (tpb.EnrollAgentsRequest(session="sessions/fib-1"), ("sessions/fib-1",)),
        (tpb.UpdateCourseRequest(course=tpb.Course(name="courses/c-1")), ("courses/c-1",)),
        (rpb.CreateSiteRequest(site_id="pune"), ("sites/pune",)),
        (rpb.SetPublicHolidaysRequest(site="sites/pune"), ("sites/pune",)),
        # A create request's `{resource}_id`, in the resource's collection (AIP-133).
        (rpb.CreateShiftPatternRequest(shift_pattern_id="night"), ("shiftPatterns/night",)),
        (ppb.RecordCasesRequest(case_id="c-9"), ("cases/c-9",)),
        (tpb.CreateCourseRequest(course_id="c-1"), ("courses/c-1",)),
    ]
    for request, expected in cases:
        assert _target_names(nobody, request) == expected, request


def test_the_agent_comes_first_and_its_own_resources_are_not_repeated() -> None:
    completion = tpb.RecordCompletionRequest(name="sessions/fib-1/enrollments/a-1")
    assert _target_names(Target(agent_id="a-1"), completion) == (
        "agents/a-1",
        "sessions/fib-1/enrollments/a-1",
    )
    status = apb.SetStatusRequest(name="agents/a-1/availability")
    assert _target_names(Target(agent_id="a-1"), status) == ("agents/a-1",)
    shift = rpb.CancelShiftRequest(name="agents/a-1/shifts/s-1")
    assert _target_names(Target(agent_id="a-1"), shift) == ("agents/a-1",)
    # Created under the agent (its `agent` field is the parent): the agent names it already.
    leave = rpb.RequestLeaveRequest(agent="agents/a-1", leave_request_id="l-1")
    assert _target_names(Target(agent_id="a-1"), leave) == ("agents/a-1",)
    assigned = rpb.AssignShiftRequest(agent="agents/a-1", shift_id="s-2")
    assert _target_names(Target(agent_id="a-1"), assigned) == ("agents/a-1",)


def test_a_huge_name_is_clipped() -> None:
    (name,) = _target_names(Target(), tpb.StartSessionRequest(name="sessions/" + "x" * 10_000))
    assert name.startswith("sessions/x") and len(name) <= 100


def test_a_batch_names_its_agents_and_its_session() -> None:
    batch = tpb.EnrollAgentsRequest(session="sessions/fib-1", agents=["agents/a-1", "agents/a-2"])
    target = POLICY[SERVICE + "EnrollAgents"].target(batch)
    assert _target_names(target, batch) == ("agents/a-1", "agents/a-2", "sessions/fib-1")
    assert not target.agent_id  # a batch is no one caller's own


def test_a_huge_batch_names_its_first_agents_then_how_many_more() -> None:
    agents = [f"agents/a-{n}" for n in range(AUDITED_BATCH_AGENTS + 70)]
    batch = tpb.EnrollAgentsRequest(session="sessions/fib-1", agents=agents)
    names = _target_names(POLICY[SERVICE + "EnrollAgents"].target(batch), batch)
    assert names == (*agents[:AUDITED_BATCH_AGENTS], "+70 more agents", "sessions/fib-1")


def test_a_batch_target_holds_every_agent_and_is_no_one_callers_own() -> None:
    batch = tpb.EnrollAgentsRequest(agents=["agents/a-1", "agents/a-2", "not a name"])
    target = POLICY[SERVICE + "EnrollAgents"].target(batch)
    assert target.batch_agent_ids == ("a-1", "a-2", "not a name") and not target.agent_id
    assert batch_audit_names(target) == ("agents/a-1", "agents/a-2", "agents/not a name")
    huge = Target(batch_agent_ids=tuple(f"a-{n}" for n in range(AUDITED_BATCH_AGENTS + 1)))
    assert batch_audit_names(huge)[-2:] == (
        f"agents/a-{AUDITED_BATCH_AGENTS - 1}",
        "+1 more agents",
    )
