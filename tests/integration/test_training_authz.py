"""The training rows of the authorization matrix (docs/security.md), RPC by RPC, by hand.

Like tests/integration/test_authz.py: the expectations are written from the matrix, as the
oracle services/training/policy.py is checked against. A call that passes authorization may
still fail on its merits (FAILED_PRECONDITION, NOT_FOUND): only a denial counts here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from wfm.audit.v1 import audit_service_pb2 as audit_pb
from wfm.audit.v1 import audit_service_pb2_grpc as audit_grpc
from wfm.training.v1 import training_service_pb2 as pb
from wfm.training.v1 import training_service_pb2_grpc as pb_grpc

from tests.conftest import System
from tests.integration.test_authz import ALL, CALLERS
from tests.integration.test_training_api import course, session
from wfm_runtime.testing import channel, eventually

pytestmark = pytest.mark.integration

MANAGERS = {"hr", "trainer", "admin"}
Call = Callable[[pb_grpc.TrainingServiceStub, str], Awaitable[Any]]


def _enroll(*agents: str) -> Call:
    return lambda s, k: s.EnrollAgents(
        pb.EnrollAgentsRequest(
            session="sessions/s1", agents=[f"agents/{a}" for a in agents], idempotency_key=k
        )
    )


def _enrollment(rpc: str, agent: str) -> Call:
    def call(s: pb_grpc.TrainingServiceStub, k: str) -> Awaitable[Any]:
        name = f"sessions/s1/enrollments/{agent}"
        if rpc == "withdraw":
            return s.WithdrawEnrollment(pb.WithdrawEnrollmentRequest(name=name, idempotency_key=k))
        if rpc == "no-show":
            return s.MarkNoShow(pb.MarkNoShowRequest(name=name, idempotency_key=k))
        return s.RecordCompletion(
            pb.RecordCompletionRequest(
                name=name, completion=pb.Completion(passed=True), idempotency_key=k
            )
        )

    return call


CASES: list[tuple[str, Call, set[str]]] = [
    ("CreateCourse", lambda s, k: s.CreateCourse(course(f"c-{k}")), MANAGERS),
    ("GetCourse", lambda s, k: s.GetCourse(pb.GetCourseRequest(name="courses/fibre-101")), ALL),
    ("ListCourses", lambda s, k: s.ListCourses(pb.ListCoursesRequest()), ALL),
    ("CreateSession", lambda s, k: s.CreateSession(session(f"s-{k}")), MANAGERS),
    ("GetSession", lambda s, k: s.GetSession(pb.GetSessionRequest(name="sessions/s1")), ALL),
    (
        "UpdateCourse",
        lambda s, k: s.UpdateCourse(
            pb.UpdateCourseRequest(
                course=pb.Course(name="courses/fibre-101", title=f"Fibre {k}"),
                update_mask=FieldMask(paths=["title"]),
                idempotency_key=k,
            )
        ),
        MANAGERS,
    ),
    (
        "UpdateSession",
        lambda s, k: s.UpdateSession(
            pb.UpdateSessionRequest(
                session=pb.Session(name="sessions/s9", trainer=k),
                update_mask=FieldMask(paths=["trainer"]),
                idempotency_key=k,
            )
        ),
        MANAGERS,
    ),
    (
        "CancelSession",
        lambda s, k: s.CancelSession(
            pb.CancelSessionRequest(name="sessions/s9", reason="test", idempotency_key=k)
        ),
        MANAGERS,
    ),
    ("EnrollAgents self", _enroll("a1"), {"agent"} | MANAGERS),
    ("EnrollAgents other", _enroll("a2"), MANAGERS),
    ("EnrollAgents batch", _enroll("a1", "a2"), MANAGERS),
    ("WithdrawEnrollment own", _enrollment("withdraw", "a1"), {"agent"} | MANAGERS),
    ("WithdrawEnrollment other", _enrollment("withdraw", "a2"), MANAGERS),
    (
        "StartSession",
        lambda s, k: s.StartSession(pb.StartSessionRequest(name="sessions/s9", idempotency_key=k)),
        MANAGERS,
    ),
    ("MarkNoShow own", _enrollment("no-show", "a1"), MANAGERS),
    ("RecordCompletion own", _enrollment("complete", "a1"), MANAGERS),
    (
        "RecordCompletions",
        lambda s, k: s.RecordCompletions(
            pb.RecordCompletionsRequest(
                session="sessions/s1",
                completions=[pb.CompletionEntry(agent="agents/a1")],
                idempotency_key=k,
            )
        ),
        MANAGERS,
    ),
    (
        "ListEnrollments own/team",
        lambda s, k: s.ListEnrollments(pb.ListEnrollmentsRequest(agent="agents/a1")),
        {"agent", "team_leader"} | MANAGERS,
    ),
    (
        "ListEnrollments other team",
        lambda s, k: s.ListEnrollments(pb.ListEnrollmentsRequest(agent="agents/b1")),
        MANAGERS,
    ),
    (
        "ListEnrollments everyone",
        lambda s, k: s.ListEnrollments(pb.ListEnrollmentsRequest()),
        MANAGERS,
    ),
    (
        "GetTranscript own/team",
        lambda s, k: s.GetTranscript(pb.GetTranscriptRequest(name="agents/a1/transcript")),
        {"agent", "team_leader"} | MANAGERS,
    ),
    (
        "GetTranscript other agent, same team",
        lambda s, k: s.GetTranscript(pb.GetTranscriptRequest(name="agents/a2/transcript")),
        {"team_leader"} | MANAGERS,
    ),
    (
        "GetTranscript other team",
        lambda s, k: s.GetTranscript(pb.GetTranscriptRequest(name="agents/b1/transcript")),
        MANAGERS,
    ),
    (
        "ListDue own team",
        lambda s, k: s.ListDue(pb.ListDueRequest(team="teams/t1")),
        {"team_leader"} | MANAGERS,
    ),
    ("ListDue other team", lambda s, k: s.ListDue(pb.ListDueRequest(team="teams/t2")), MANAGERS),
    ("ListDue by client", lambda s, k: s.ListDue(pb.ListDueRequest(client="acme")), MANAGERS),
    (
        "GetTeamTrainingSummary own team",
        lambda s, k: s.GetTeamTrainingSummary(
            pb.GetTeamTrainingSummaryRequest(name="teams/t1/trainingSummary")
        ),
        {"team_leader"} | MANAGERS,
    ),
    (
        "GetTeamTrainingSummary other team",
        lambda s, k: s.GetTeamTrainingSummary(
            pb.GetTeamTrainingSummaryRequest(name="teams/t2/trainingSummary")
        ),
        MANAGERS,
    ),
]


async def test_every_training_rpc_and_role_against_the_matrix(system: System) -> None:
    for team in ("t1", "t2"):
        await system.add_team(team)
    for agent, team in (("a1", "t1"), ("a2", "t1"), ("b1", "t2")):
        await system.add_agent(agent, team)
    for agent in ("a1", "a2", "b1"):
        await system.known_to_training(agent)
    await system.train.CreateCourse(course(self_enrollment=True))
    await system.train.CreateSession(session("s1", capacity=50))
    stubs = {
        caller: system.training_as(subject, *roles, teams=teams)
        for caller, (subject, roles, teams) in CALLERS.items()
    }
    wrong: list[str] = []
    for n, (what, call, allowed) in enumerate(CASES):
        for caller in CALLERS:
            try:
                await call(stubs[caller], f"k{n}-{caller}")
                code = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as err:
                code = err.code()
            denied = code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
            if denied == (caller in allowed) or code == grpc.StatusCode.INTERNAL:
                wrong.append(f"{what} as {caller}: {code.name}")
    assert not wrong, "\n".join(wrong)


async def test_a_batch_enrollment_is_audited_naming_its_session_and_every_agent(
    system: System,
) -> None:
    await system.add_team("t1")
    for agent in ("a1", "a2", "a3"):
        await system.add_agent(agent, "t1")
        await system.known_to_training(agent)
    await system.train.CreateCourse(course(self_enrollment=True))
    await system.train.CreateSession(session("s1", capacity=10))
    names = ["agents/a1", "agents/a2", "agents/a3"]
    hr = system.training_as("h1", "hr")
    await hr.EnrollAgents(
        pb.EnrollAgentsRequest(session="sessions/s1", agents=names, idempotency_key="e1")
    )
    learner = system.training_as("a1", "agent")
    with pytest.raises(grpc.aio.AioRpcError) as refused:  # an agent enrolls only themselves
        await learner.EnrollAgents(
            pb.EnrollAgentsRequest(session="sessions/s1", agents=names[:2], idempotency_key="e2")
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "agents/a1, agents/a2" in (refused.value.details() or "")

    admin = channel(f"127.0.0.1:{system.training.port}", system.minter.token("ad", "admin"))
    system.channels.append(admin)
    audit = audit_grpc.AuditServiceStub(admin)
    about_a2 = await eventually(
        lambda: audit.ListAuditRecords(audit_pb.ListAuditRecordsRequest(target="agents/a2")),
        lambda r: len(r.records) == 2,
    )
    denied, enrolled = about_a2.records  # newest first
    assert (enrolled.subject, enrolled.outcome, list(enrolled.targets)) == (
        "h1",
        "OK",
        [*names, "sessions/s1"],
    )
    assert enrolled.method.endswith("/EnrollAgents")
    assert (denied.subject, denied.outcome, list(denied.targets)) == (
        "a1",
        "PERMISSION_DENIED",
        [*names[:2], "sessions/s1"],
    )
