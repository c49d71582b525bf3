"""Hostile requests to every TrainingService RPC (and the AuditService the training server
serves too): a well-formed answer every time.

Each RPC gets a valid template (it must answer OK) and then generated requests: variants of the
template with fields cleared or made hostile at any depth, and wholly generated messages, sent
by callers of every role. Every answer must be OK or a refusal that carries a google.rpc.Status
with one ErrorInfo; never INTERNAL, UNKNOWN, a hang or a dropped connection. A refusal
changes nothing: after each refused request every course, session and learner is as it was
(see `Ledger`; a flow writes several events, and undoes its own steps when a later one is
refused, so the state is compared, not the number of events). Afterwards the server is still
serving, its audit log still takes records and a normal read still answers.
Uses the strategies, the runner and the judge of tests/integration/test_fuzz.py (its seed and
WFM_FUZZ_SCALE knob too).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import field_mask_pb2, text_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from hypothesis import strategies as st
from wfm.audit.v1 import audit_service_pb2 as audit_pb
from wfm.events.v1.envelope_pb2 import EventEnvelope
from wfm.training.v1 import events_pb2 as ev
from wfm.training.v1 import training_service_pb2 as pb

from services.training import store
from tests.conftest import System
from tests.fuzz_strategies import MAX_TIMESTAMP_S, messages, variants
from tests.integration.test_fuzz import (
    CALL_TIMEOUT_S,
    CALLERS,
    SEED,
    Case,
    Target,
    fuzz,
    invoke,
    judge,
)
from wfm_runtime import mongo
from wfm_runtime.eventstore import event_key
from wfm_runtime.testing import unpack_details
from wfm_runtime.timefmt import to_timestamp, utc_now

pytestmark = pytest.mark.integration

SERVICE = pb.DESCRIPTOR.services_by_name["TrainingService"]
AUDIT = audit_pb.DESCRIPTOR.services_by_name["AuditService"]
TARGETS = {
    **{m.name: Target("training", m) for m in SERVICE.methods},
    "ListAuditRecords@training": Target("training", AUDIT.methods_by_name["ListAuditRecords"]),
}
COURSE = "courses/fibre-101"
TEAM = "teams/night"
AGENTS = ("asha", "ravi", "mei", "omar", "lin", "noor")


def _hour(days: int) -> datetime:
    """Today's hour `days` away: sessions around now, so check-in is open for the past ones."""
    return utc_now().replace(minute=0, second=0, microsecond=0) + timedelta(days=days)


# Sessions of the one course (an agent books one of them at most): s1 is a month ahead (asha
# enrolled); `past` met yesterday (ravi enrolled, not checked in); `live` met two days ago and is
# checked in (mei and omar in progress, lin passed). noor is on none.
SESSIONS = {"s1": (30, ("asha",)), "past": (-1, ("ravi",)), "live": (-2, ("mei", "omar", "lin"))}


def _session(days: int, capacity: int = 3) -> pb.Session:
    start = _hour(days)
    return pb.Session(
        course=COURSE,
        start_time=to_timestamp(start),
        end_time=to_timestamp(start + timedelta(hours=2)),
        time_zone="Asia/Kolkata",
        trainer="Ravi",
        capacity=capacity,
        delivery=pb.DELIVERY_CLASSROOM,
    )


def _result(agent: str, score: int) -> pb.CompletionEntry:
    return pb.CompletionEntry(
        agent=f"agents/{agent}", completion=pb.Completion(score=score, passed=score >= 50)
    )


def _templates() -> dict[str, Message]:
    """A valid request per RPC (an admin gets OK) in the world `_world` makes."""
    moved = _session(31, capacity=4)
    moved.name, moved.trainer = "sessions/s1", "Mei"
    return {
        "CreateCourse": pb.CreateCourseRequest(
            course_id="fibre-201",
            course=pb.Course(
                title="Fibre faults",
                category=pb.COURSE_CATEGORY_CLIENT_SPECIFIC,
                client="acme",
                credit_minutes=120,
                technical=True,
                competency="fibre",
                competency_level=pb.COMPETENCY_LEVEL_COMPETENT,
                prerequisite_courses=[COURSE],
                prerequisite_competencies=[
                    pb.CompetencyRequirement(
                        competency="fibre", level=pb.COMPETENCY_LEVEL_FOUNDATION
                    )
                ],
                validity_days=180,
                required_for_clients=["acme"],
            ),
            idempotency_key="f-course",
        ),
        "GetCourse": pb.GetCourseRequest(name=COURSE),
        "ListCourses": pb.ListCoursesRequest(page_size=1),
        "UpdateCourse": pb.UpdateCourseRequest(
            course=pb.Course(name=COURSE, title="Fibre 101", validity_days=90),
            update_mask=field_mask_pb2.FieldMask(paths=["title", "validity_days"]),
            idempotency_key="f-course-update",
        ),
        "CreateSession": pb.CreateSessionRequest(
            session_id="f-s", session=_session(45), idempotency_key="f-session"
        ),
        "GetSession": pb.GetSessionRequest(name="sessions/s1"),
        "ListSessions": pb.ListSessionsRequest(
            page_size=1,
            course=COURSE,
            earliest_start_time=to_timestamp(_hour(-7)),
            latest_start_time=to_timestamp(_hour(60)),
            state=pb.SESSION_STATE_SCHEDULED,
        ),
        "UpdateSession": pb.UpdateSessionRequest(
            session=moved,
            update_mask=field_mask_pb2.FieldMask(
                paths=["start_time", "end_time", "trainer", "capacity"]
            ),
            idempotency_key="f-session-update",
        ),
        "CancelSession": pb.CancelSessionRequest(
            name="sessions/s1", reason="trainer ill", idempotency_key="f-cancel"
        ),
        "EnrollAgents": pb.EnrollAgentsRequest(
            session="sessions/s1", agents=["agents/noor"], idempotency_key="f-enroll"
        ),
        "WithdrawEnrollment": pb.WithdrawEnrollmentRequest(
            name="sessions/s1/enrollments/asha", idempotency_key="f-withdraw"
        ),
        "StartSession": pb.StartSessionRequest(name="sessions/past", idempotency_key="f-start"),
        "MarkNoShow": pb.MarkNoShowRequest(
            name="sessions/live/enrollments/omar", idempotency_key="f-no-show"
        ),
        "RecordCompletion": pb.RecordCompletionRequest(
            name="sessions/live/enrollments/mei",
            completion=pb.Completion(attended_minutes=110, score=80, passed=True),
            idempotency_key="f-complete",
        ),
        "RecordCompletions": pb.RecordCompletionsRequest(
            session="sessions/live",
            completions=[_result("mei", 90), _result("omar", 30)],
            idempotency_key="f-results",
        ),
        "ListEnrollments": pb.ListEnrollmentsRequest(
            page_size=1, session="sessions/live", state=pb.ENROLLMENT_STATE_IN_PROGRESS
        ),
        "GetTranscript": pb.GetTranscriptRequest(
            name="agents/lin/transcript",
            start_time=to_timestamp(_hour(-30)),
            end_time=to_timestamp(_hour(30)),
            as_of_time=to_timestamp(_hour(0)),
            due_within_days=400,
        ),
        "ListDue": pb.ListDueRequest(team=TEAM, within_days=400, page_size=1),
        "GetTeamTrainingSummary": pb.GetTeamTrainingSummaryRequest(
            name=f"{TEAM}/trainingSummary",
            start_time=to_timestamp(_hour(-30)),
            end_time=to_timestamp(_hour(30)),
        ),
        "ListAuditRecords@training": audit_pb.ListAuditRecordsRequest(
            subject="admin-1", target="sessions/live", page_size=5
        ),
    }


assert set(_templates()) == set(TARGETS)

# Names the world knows (so generated strings get past validation and reach the rules), and
# near misses of them.
WORDS = [
    *AGENTS, "ghost", "fibre-101", "fibre-201", "s1", "past", "live", "f-s", "night", "acme",
    *(f"agents/{a}" for a in AGENTS), *(f"agents/{a}/transcript" for a in AGENTS),
    *(f"sessions/{s}" for s in SESSIONS), *(f"sessions/{s}/enrollments/{a}" for a in AGENTS
    for s in SESSIONS), COURSE, "courses/fibre-201", "courses/ghost", TEAM, "teams/ghost",
    f"{TEAM}/trainingSummary", "sessions/", "sessions//enrollments/asha", "agents//transcript",
    "fibre", "Ravi", "Asia/Kolkata", "America/New_York", "Factory", "../etc/passwd", "*",
    *pb.Course.DESCRIPTOR.fields_by_name, *pb.Session.DESCRIPTOR.fields_by_name,
    "course.title", "session.capacity", "roster.state", "admin-1",
]  # fmt: skip


async def _world(system: System) -> list[str]:
    """A team serving acme, five agents, the course and the sessions of SESSIONS; returns
    page tokens the lists issued (so mutated tokens start from real ones)."""
    await system.add_team("night", client="acme")
    for agent in AGENTS:
        await system.add_agent(agent, "night")
    for agent in AGENTS:
        await system.known_to_training(agent)
    train = system.train
    await train.CreateCourse(
        pb.CreateCourseRequest(
            course_id="fibre-101",
            course=pb.Course(
                title="Fibre basics",
                category=pb.COURSE_CATEGORY_TECHNICAL,
                credit_minutes=120,
                technical=True,
                competency="fibre",
                competency_level=pb.COMPETENCY_LEVEL_FOUNDATION,
                validity_days=365,
                required_for_clients=["acme"],
                self_enrollment=True,
            ),
            idempotency_key="w-course",
        )
    )
    for sid, (days, agents) in SESSIONS.items():
        await train.CreateSession(
            pb.CreateSessionRequest(session_id=sid, session=_session(days), idempotency_key=sid)
        )
        await train.EnrollAgents(
            pb.EnrollAgentsRequest(
                session=f"sessions/{sid}",
                agents=[f"agents/{a}" for a in agents],
                idempotency_key=f"w-e-{sid}",
            )
        )
    await train.StartSession(pb.StartSessionRequest(name="sessions/live", idempotency_key="w-go"))
    await train.RecordCompletion(
        pb.RecordCompletionRequest(
            name="sessions/live/enrollments/lin",
            completion=pb.Completion(score=70, passed=True),
            idempotency_key="w-lin",
        )
    )
    lists = [
        await train.ListCourses(pb.ListCoursesRequest(page_size=1)),
        await train.ListSessions(pb.ListSessionsRequest(page_size=1)),
        await train.ListEnrollments(pb.ListEnrollmentsRequest(page_size=1)),
        await train.ListDue(pb.ListDueRequest(team=TEAM, within_days=400, page_size=1)),
    ]
    return [page.next_page_token for page in lists if page.next_page_token]


def _auth(system: System) -> dict[str, Sequence[tuple[str, str]]]:
    """Auth metadata per caller of test_fuzz's CALLERS (leaders lead the world's team)."""
    minter = system.minter
    tokens = {
        "admin": minter.token("admin-1", "admin"),
        "agent": minter.token("asha", "agent"),
        "team_leader": minter.token("tl-1", "team_leader", teams=("night",)),
        "scheduler": minter.token("s-1", "scheduler"),
        "hr": minter.token("hr-1", "hr"),
        "trainer": minter.token("tr-1", "trainer"),
        "no role": minter.token("nobody"),
    }
    return {caller: [("authorization", f"Bearer {token}")] for caller, token in tokens.items()}


async def _harm(system: System, ch: grpc.aio.Channel) -> list[str]:
    """What the fuzzing broke: a server not serving, a stuck audit log, a dead read."""
    found = []
    health = health_pb2_grpc.HealthStub(ch)
    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT_S)
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        found.append(f"training health is {reply.status}")
    try:  # a record the store refuses would block every later audit record
        await system.training.runtime.audit.flush()
    except Exception as exc:
        found.append(f"audit log of training stuck: {exc!r}")
    course = await system.train.GetCourse(pb.GetCourseRequest(name=COURSE), timeout=CALL_TIMEOUT_S)
    if course.name != COURSE:
        found.append(f"a normal GetCourse answered {course}")
    return found


class Ledger:
    """The training event store as the cases go by: what a refused request left behind.

    Every event carries its aggregate's full new state (store.py), so an aggregate's state is
    its latest event's. After each answer the ledger counts the store's documents; where a
    refused request added some, it compares each aggregate it wrote to with its state before
    the request: a booking made and released again by the same refused request (a compensated
    step) nets to no change, a booking it took over, a seat or a result it left does not. A
    no-change record (`noop/...`) it added is a change too: its idempotency key was spent.
    Versions are left out of the comparison (the compensating events move them on), and a
    learner the request booked for the first time and released again is as it was: a learner
    without bookings or results is what an agent without events is.
    """

    def __init__(self, system: System) -> None:
        self._events = system.training.runtime.db["events"]
        self._known: set[str] = set()

    async def _ids(self) -> set[str]:
        return {doc["_id"] async for doc in self._events.find({}, {"_id": 1})}

    async def open(self) -> None:
        self._known = await self._ids()

    async def left_behind(self, refused: bool) -> list[str]:
        """What the request just answered changed, if it was refused (else [])."""
        if await self._events.count_documents({}) == len(self._known):
            return []
        known, self._known = self._known, await self._ids()
        if not refused:
            return []
        added = await mongo.find_all(self._events, {"_id": {"$in": sorted(self._known - known)}})
        changes = [f"spent its key ({doc['_id']})" for doc in added if doc.get("noop")]
        written: dict[tuple[str, str], list[int]] = {}
        for doc in added:
            if not doc.get("noop"):
                written.setdefault((doc["aggregate_type"], doc["aggregate_id"]), []).append(
                    doc["version"]
                )
        for (kind, aggregate_id), versions in sorted(written.items()):
            before = await self._state(kind, aggregate_id, min(versions) - 1)
            after = await self._state(kind, aggregate_id, max(versions))
            if before != after:
                changes.append(f"{kind} {aggregate_id}: {before!r:.300} -> {after!r:.300}")
        return changes

    async def _state(self, kind: str, aggregate_id: str, version: int) -> str:
        doc = await mongo.get(self._events, event_key(kind, aggregate_id, version))
        if doc is not None:
            state = store.event_state(EventEnvelope.FromString(bytes(doc["envelope"])))
        elif kind == store.LEARNER:  # a learner without events: no bookings, no results
            state = ev.Learner(agent=f"agents/{aggregate_id}")
        else:
            return "(none)"
        state.ClearField("version")
        for entry in getattr(state, "roster", ()):
            entry.ClearField("session_version")
        return str(text_format.MessageToString(state, as_one_line=True))


@pytest.mark.parametrize("label", list(TARGETS))
async def test_hostile_training_requests_get_well_formed_answers(
    system: System, label: str
) -> None:
    target = TARGETS[label]
    page_tokens = await asyncio.wait_for(_world(system), 60)
    auth = _auth(system)
    ch = grpc.aio.insecure_channel(f"127.0.0.1:{system.training.port}")
    system.channels.append(ch)
    template = _templates()[label]
    accepted = await invoke(
        ch, Case("generated", target, template.SerializeToString(), auth["admin"])
    )
    assert accepted.code is grpc.StatusCode.OK, (label, accepted)
    words = [*WORDS, *page_tokens]
    requests = st.one_of(messages(target.method.input_type, words), variants(template, words))
    key = getattr(template, "idempotency_key", "")
    problems: dict[str, list[str]] = {}
    keys = itertools.count()
    ledger = Ledger(system)
    await ledger.open()

    async def check(drawn: tuple[str, Message, bool]) -> None:
        caller, request, fresh_key = drawn
        if key and fresh_key and getattr(request, "idempotency_key", "") == key:
            # The template's key with other fields is refused as a reused key before any rule
            # is checked: a fresh one lets the variant reach the rules and the stores.
            setattr(request, "idempotency_key", f"fuzz-{next(keys)}")  # noqa: B010
        case = Case("generated", target, request.SerializeToString(), auth[caller])
        outcome = await invoke(ch, case)
        problem = judge(case, outcome)
        changes = await ledger.left_behind(refused=outcome.code is not grpc.StatusCode.OK)
        if problem is None and changes:
            problem = f"{outcome.code.name} left a change: " + "; ".join(changes)
        if problem is not None:
            samples = problems.setdefault(problem, [])
            if len(samples) < 3:
                samples.append(case.describe())

    drawn = st.tuples(st.sampled_from(CALLERS), requests, st.booleans())
    await fuzz(drawn, check, examples=40)
    harm = await _harm(system, ch)
    report = [f"{problem}\n    e.g. " + "\n    e.g. ".join(e) for problem, e in problems.items()]
    assert not report, f"hypothesis seed {SEED}:\n" + "\n".join(report)
    assert not harm, harm


# --- what this fuzz found (each fixed; kept as regression tests) ----------------------------
LAST_INSTANT = Timestamp(seconds=MAX_TIMESTAMP_S)  # 9999-12-31T23:59:59Z


def _refused_fields(err: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(err)
    assert status is not None
    return [
        v.field
        for detail in unpack_details(status)
        if isinstance(detail, error_details_pb2.BadRequest)
        for v in detail.field_violations
    ]


async def test_a_huge_unicode_mask_path_is_refused_with_its_details(system: System) -> None:
    # The error quoted the path: 2,446 emoji made 22 KB of percent-encoded grpc-message, over
    # gRPC's 16 KiB trailer limit, so the client got RESOURCE_EXHAUSTED and no details.
    for update in (
        pb.UpdateSessionRequest(
            session=pb.Session(name="sessions/s1"),
            update_mask=field_mask_pb2.FieldMask(paths=["😀" * 2_500]),
            idempotency_key="k-1",
        ),
        pb.UpdateCourseRequest(
            course=pb.Course(name=COURSE),
            update_mask=field_mask_pb2.FieldMask(paths=["é" * 5_000, "\x00" * 5_000]),
            idempotency_key="k-2",
        ),
    ):
        method = getattr(system.train, type(update).__name__.removesuffix("Request"))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await method(update)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert _refused_fields(refused.value) == ["update_mask"]


async def test_what_is_due_as_of_the_last_timestamp_is_answered(system: System) -> None:
    # as_of + the window went past the year 9999: INTERNAL (OverflowError).
    await _world(system)
    transcript = await system.train.GetTranscript(
        pb.GetTranscriptRequest(
            name="agents/lin/transcript", as_of_time=LAST_INSTANT, due_within_days=30
        )
    )
    assert [(d.course, d.reason) for d in transcript.due] == [(COURSE, pb.DUE_REASON_EXPIRED)]
    due = await system.train.ListDue(
        pb.ListDueRequest(team=TEAM, as_of_time=LAST_INSTANT, within_days=3660, page_size=50)
    )
    assert {d.agent for d in due.due} == {f"agents/{a}" for a in AGENTS}


async def test_sessions_and_results_outside_the_training_years_are_refused(
    system: System,
) -> None:
    # A session near the ends of the Timestamp range had no clock time (INTERNAL); a result
    # dated then had no expiry (INTERNAL after the enrollment was already marked completed).
    await _world(system)
    for sid, start, zone in (
        ("late", datetime(9999, 12, 31, 20, tzinfo=UTC), "Asia/Kolkata"),
        ("early", datetime(1, 1, 1, 0, tzinfo=UTC), "America/New_York"),
    ):
        create = pb.CreateSessionRequest(session_id=sid, session=_session(0), idempotency_key=sid)
        create.session.time_zone = zone
        create.session.start_time.CopyFrom(to_timestamp(start))
        create.session.end_time.CopyFrom(to_timestamp(start + timedelta(hours=2)))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await system.train.CreateSession(create)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, sid
        assert set(_refused_fields(refused.value)) & {"session.start_time", "session.end_time"}
    late = pb.Completion(completion_time=Timestamp(seconds=MAX_TIMESTAMP_S - 86_400), passed=True)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await system.train.RecordCompletion(
            pb.RecordCompletionRequest(
                name="sessions/live/enrollments/mei", completion=late, idempotency_key="late"
            )
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _refused_fields(refused.value) == ["completion.completion_time"]
    live = await system.train.GetSession(pb.GetSessionRequest(name="sessions/live"))
    mei = next(e for e in live.roster if e.agent == "agents/mei")
    assert mei.state == pb.ENROLLMENT_STATE_IN_PROGRESS  # nothing changed
    transcript = await system.train.GetTranscript(
        pb.GetTranscriptRequest(name="agents/mei/transcript")
    )
    assert not transcript.completions


async def test_a_refused_enrollment_hands_back_the_bookings_it_took_over(system: System) -> None:
    # The learner step takes over a booking another request made (its key and key_time); the
    # session step then refused (here a stale session_version), and only the bookings this call
    # made were released: asha's stayed under the refused request's key, so a reconciler would
    # settle (abandon) the refused request instead of the one that booked her.
    await _world(system)
    ledger = Ledger(system)
    await ledger.open()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await system.train.EnrollAgents(
            pb.EnrollAgentsRequest(
                session="sessions/s1",
                agents=["agents/noor", "agents/asha"],
                session_version=99,
                idempotency_key="stale",
            )
        )
    assert refused.value.code() == grpc.StatusCode.ABORTED
    assert await ledger.left_behind(refused=True) == []
