"""Randomized concurrency of the training flows across two replicas sharing one database.

A seeded generator sends a few hundred operations in waves (each wave at once, with
asyncio.gather) to both replicas: enrollments (one agent, or a batch), withdrawals, check-ins,
no-shows, results (one, or a batch), cancellations, moves of a session onto and off other
sessions' times, capacity changes, and retries of the same idempotency key on the other
replica (in the same wave, racing the first attempt, or later). Several agents, three courses
and overlapping sessions of small capacity make the flows meet: the learner aggregate (the
agent's bookings) and the session aggregate (seats and waitlist) are written by different
steps of one request, with no transaction between them (docs/training.md).

Every answer must be OK or a refusal carrying a google.rpc ErrorInfo, never INTERNAL, UNKNOWN
or a hang; a retry sent after its first attempt answered OK answers the same. Then, from the
events replayed (the truth) and from the views:
1. no session ever seats more than its capacity, nobody waits while a seat is free before
   check-in, and the waitlist is promoted in arrival order;
2. each agent's bookings are exactly the sessions holding the agent (waitlisted, enrolled or
   in progress), at the session's time, on the learner and on the transcript;
3. no agent holds two places on sessions of one course, nor two at overlapping times, even
   when a move races an enrollment at the session's new time or another session's move there
   (each move holds its new time on the learners first), and no move leaves a hold behind;
4. every result on a session is on the agent's record once, as the session recorded it, and
   the transcript counts its minutes once;
5. the views rebuilt from the stream equal the truth, and the incremental views equal the
   rebuilt ones (or are an older version of a document: two replicas' projectors may
   interleave, docs/training.md "Views"). The transcripts are read after the rebuild: before
   it, one may legitimately show an older version of the learner (that interleave again).

No flow is cut off here, so the checks are made before any reconciler sweep: nothing should be
left for it. A sweep past its grace afterwards must find nothing to settle.

Each run draws a seed (printed, and named in every failure); WFM_CHAOS_SEED=... runs it again,
WFM_CHAOS_WAVES=... changes the number of waves, and WFM_CHAOS_TRACE=FILE writes every call
with its answer to FILE, then every session's and learner's events (key, time, state).
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from wfm.training.v1 import training_service_pb2 as pb
from wfm.training.v1 import training_service_pb2_grpc as training_grpc

from services.training import domain as d
from services.training import reconciler, store
from tests.conftest import System
from tests.integration.test_training_api import _snapshot, course
from tests.replicas import TrainingReplicas as Replicas
from tests.replicas import training_replicas
from wfm_runtime.testing import eventually, unpack_details
from wfm_runtime.timefmt import to_timestamp, utc_now

pytestmark = pytest.mark.integration

Code = grpc.StatusCode
SEED = int(os.environ.get("WFM_CHAOS_SEED") or random.randrange(2**32))
WAVES = int(os.environ.get("WFM_CHAOS_WAVES") or 24)
WAVE_SIZE = 14
CALL_TIMEOUT_S = 30.0  # a loaded machine answers in well under a second: 30 s is a hang
REFUSALS = frozenset(
    {
        Code.INVALID_ARGUMENT,
        Code.NOT_FOUND,
        Code.ALREADY_EXISTS,
        Code.FAILED_PRECONDITION,
        Code.ABORTED,
    }
)
AGENTS = [f"x{i}" for i in range(8)]
SESSIONS = 10  # the last one self-paced
COURSES = ["fibre-101", "copper-101", "calm-calls"]
SLOT = timedelta(minutes=90)  # sessions last two hours: neighbouring slots overlap
LENGTH = timedelta(hours=2)
SLOTS = 6
ACTIVE = {d.E.WAITLISTED, d.E.ENROLLED, d.E.IN_PROGRESS}


@pytest.fixture
async def replicas(system: System) -> AsyncIterator[Replicas]:
    stubs = await training_replicas(system, AGENTS)
    try:
        yield stubs
    finally:
        await stubs.stop_second()


# --- the operations ------------------------------------------------------------------------
@dataclass
class Sent:
    """One call: what was sent where, and what came back."""

    method: str
    request: Message
    replica: int
    wave: int
    retry_of: Sent | None = None
    answer: Message | None = None
    error: grpc.aio.AioRpcError | None = None

    @property
    def code(self) -> grpc.StatusCode:
        return Code.OK if self.error is None else self.error.code()

    def describe(self) -> str:
        request = " ".join(str(self.request).split())
        outcome = "OK" if self.error is None else f"{self.code.name}: {self.error.details()}"
        retry = " (retry)" if self.retry_of is not None else ""
        return f"wave {self.wave} {self.method}@{self.replica}{retry} {request} -> {outcome}"


@dataclass
class Chaos:
    rng: random.Random
    stubs: list[training_grpc.TrainingServiceStub]
    base: datetime
    sessions: dict[str, d.Session] = field(default_factory=dict)  # the truth, each wave
    sent: list[Sent] = field(default_factory=list)
    keys: int = 0

    def key(self, kind: str) -> str:
        self.keys += 1
        return f"{kind}-{self.keys}"

    def slot(self) -> datetime:
        return self.base + SLOT * self.rng.randrange(SLOTS)

    def session_id(self) -> str:
        return self.rng.choice(sorted(self.sessions))

    def on(self, sid: str, *states: d.EnrollmentState) -> list[str]:
        return [e.agent_id for e in self.sessions[sid].roster if e.state in states]

    def agent_of(self, sid: str, *states: d.EnrollmentState) -> str:
        """An agent in one of `states` on the session mostly, any agent sometimes."""
        held = self.on(sid, *states)
        if held and self.rng.random() < 0.85:
            return self.rng.choice(held)
        return self.rng.choice(AGENTS)

    def operation(self) -> tuple[str, Message]:
        rng = self.rng
        sid = self.session_id()
        name = f"sessions/{sid}"
        session = self.sessions[sid]
        roll = rng.random()
        if roll < 0.30:
            return "EnrollAgents", pb.EnrollAgentsRequest(
                session=name,
                agents=[f"agents/{rng.choice(AGENTS)}"],
                refuse_if_full=rng.random() < 0.3,
                idempotency_key=self.key("enroll"),
            )
        if roll < 0.40:
            batch = rng.sample(AGENTS, rng.randint(2, 4))
            return "EnrollAgents", pb.EnrollAgentsRequest(
                session=name,
                agents=[f"agents/{a}" for a in batch],
                refuse_if_full=rng.random() < 0.2,
                idempotency_key=self.key("batch"),
            )
        if roll < 0.52:
            agent = self.agent_of(sid, d.E.ENROLLED, d.E.WAITLISTED, d.E.IN_PROGRESS)
            return "WithdrawEnrollment", pb.WithdrawEnrollmentRequest(
                name=f"{name}/enrollments/{agent}", idempotency_key=self.key("withdraw")
            )
        if roll < 0.57:
            return "StartSession", pb.StartSessionRequest(
                name=name, idempotency_key=self.key("start")
            )
        if roll < 0.63:
            agent = self.agent_of(sid, d.E.IN_PROGRESS)
            return "MarkNoShow", pb.MarkNoShowRequest(
                name=f"{name}/enrollments/{agent}", idempotency_key=self.key("noshow")
            )
        if roll < 0.71:
            agent = self.agent_of(sid, d.E.IN_PROGRESS)
            return "RecordCompletion", pb.RecordCompletionRequest(
                name=f"{name}/enrollments/{agent}",
                completion=self.completion(),
                idempotency_key=self.key("complete"),
            )
        if roll < 0.76:
            held = self.on(sid, d.E.IN_PROGRESS) or [rng.choice(AGENTS)]
            chosen = rng.sample(held, rng.randint(1, len(held)))
            return "RecordCompletions", pb.RecordCompletionsRequest(
                session=name,
                completions=[
                    pb.CompletionEntry(agent=f"agents/{a}", completion=self.completion())
                    for a in chosen
                ],
                idempotency_key=self.key("results"),
            )
        if roll < 0.78:
            return "CancelSession", pb.CancelSessionRequest(
                name=name, reason="trainer ill", idempotency_key=self.key("cancel")
            )
        if roll < 0.92:
            start = self.slot()
            if session.delivery is d.Delivery.SELF_PACED:
                end = start + timedelta(days=1)
            else:
                end = start + LENGTH
            return "UpdateSession", pb.UpdateSessionRequest(
                session=pb.Session(
                    name=name, start_time=to_timestamp(start), end_time=to_timestamp(end)
                ),
                update_mask=FieldMask(paths=["start_time", "end_time"]),
                idempotency_key=self.key("move"),
            )
        return "UpdateSession", pb.UpdateSessionRequest(
            session=pb.Session(name=name, capacity=rng.randint(1, 4)),
            update_mask=FieldMask(paths=["capacity"]),
            idempotency_key=self.key("capacity"),
        )

    def completion(self) -> pb.Completion:
        rng = self.rng
        result = pb.Completion(score=rng.randint(0, 100), passed=rng.random() < 0.7)
        if rng.random() < 0.5:
            result.attended_minutes = rng.randint(30, 240)
        if rng.random() < 0.5:  # else the service's now
            result.completion_time.CopyFrom(to_timestamp(self.base + timedelta(hours=8)))
        return result

    def wave(self, number: int) -> list[Sent]:
        """The calls of one wave: new operations, some retried at once on the other replica
        (racing the first attempt), and some retries of earlier waves' calls."""
        calls: list[Sent] = []
        earlier = [s for s in self.sent if s.retry_of is None]
        while len(calls) < WAVE_SIZE:
            roll = self.rng.random()
            if roll < 0.12 and earlier:
                first = self.rng.choice(earlier[-3 * WAVE_SIZE :])
                calls.append(Sent(first.method, first.request, 1 - first.replica, number, first))
                continue
            method, request = self.operation()
            sent = Sent(method, request, self.rng.randrange(2), number)
            calls.append(sent)
            if roll > 0.88:
                calls.append(Sent(method, request, 1 - sent.replica, number, sent))
        return calls

    async def call(self, sent: Sent) -> None:
        rpc = getattr(self.stubs[sent.replica], sent.method)
        try:
            sent.answer = await rpc(sent.request, timeout=CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError as err:
            sent.error = err


def well_formed(sent: Sent) -> str | None:
    """Why the answer is not an OK or a refusal with an ErrorInfo, or None."""
    if sent.error is None:
        return None
    if sent.code not in REFUSALS:
        return f"answered {sent.code.name}"
    status = rpc_status.from_call(sent.error)
    if status is None or not any(
        isinstance(detail, error_details_pb2.ErrorInfo) for detail in unpack_details(status)
    ):
        return "a refusal without an ErrorInfo"
    return None


# --- the truth -----------------------------------------------------------------------------
async def session_history(system: System, sid: str) -> list[d.Session]:
    """Every version of the session, replayed from its events."""
    events = system.training.runtime.store
    states = [d.Session(sid)]
    while True:
        envelope = await events.get(store.SESSION, sid, states[-1].version + 1)
        if envelope is None:
            return states[1:]
        states.append(store.evolve_session(states[-1], envelope))


async def learner_truth(system: System, agent: str) -> d.Learner:
    events = system.training.runtime.store
    learner = d.Learner(agent)
    while True:
        envelope = await events.get(store.LEARNER, agent, learner.version + 1)
        if envelope is None:
            return learner
        learner = store.evolve_learner(learner, envelope)


async def event_story(system: System) -> str:
    """Every session's and learner's events, one line each (for WFM_CHAOS_TRACE)."""
    events = system.training.runtime.store
    lines = []
    for kind, ids, evolve in (
        (store.SESSION, [f"s{i}" for i in range(SESSIONS)], store.evolve_session),
        (store.LEARNER, AGENTS, store.evolve_learner),
    ):
        for aggregate in ids:
            state: Any = d.Session(aggregate) if kind == store.SESSION else d.Learner(aggregate)
            while True:
                env = await events.get(kind, aggregate, state.version + 1)
                if env is None:
                    break
                state = evolve(state, env)
                what = env.event_type.rsplit(".", 1)[-1]
                if isinstance(state, d.Session):
                    detail = (
                        f"{state.state.name} {state.start:%d %H:%M}-{state.end:%H:%M} "
                        f"cap {state.capacity} "
                        + " ".join(f"{e.agent_id}:{e.state.name}" for e in state.roster)
                    )
                else:
                    detail = " ".join(
                        f"{b.session_id}@{b.start:%d %H:%M}-{b.end:%H:%M}/v{b.session_version}"
                        f"[{b.enrollment_key}]"
                        for b in state.bookings
                    )
                lines.append(
                    f"{aggregate} v{state.version} {what} {env.idempotency_key} "
                    f"{env.occurred_at.ToDatetime():%H:%M:%S.%f}: {detail}\n"
                )
    return "".join(lines)


def seat_problems(history: list[d.Session]) -> list[str]:
    """Invariant 1 on every version of one session."""
    problems = []
    before: d.Session | None = None
    for s in history:
        where = f"{s.session_id} v{s.version}"
        if s.seats_taken > s.capacity:
            problems.append(f"{where}: {s.seats_taken} seats taken of {s.capacity}")
        if s.state is d.SessionState.SCHEDULED and s.waitlist and s.seats_taken < s.capacity:
            problems.append(f"{where}: agents wait while {s.capacity - s.seats_taken} seat(s) free")
        sequences = [e.sequence for e in s.roster]
        if len(set(sequences)) != len(sequences):
            problems.append(f"{where}: arrival numbers repeat {sequences}")
        if before is not None:
            waiting = {e.agent_id: e.sequence for e in before.roster if e.state is d.E.WAITLISTED}
            promoted = [
                waiting[e.agent_id]
                for e in s.roster
                if e.agent_id in waiting and e.state is d.E.ENROLLED
            ]
            still = [e.sequence for e in s.roster if e.state is d.E.WAITLISTED]
            if promoted and still and min(still) < max(promoted):
                problems.append(
                    f"{where}: promoted arrival {max(promoted)} before {min(still)}, still waiting"
                )
        before = s
    return problems


def overlapping(a: d.Session, b: d.Session) -> bool:
    if d.Delivery.SELF_PACED in (a.delivery, b.delivery):
        return False
    assert a.start and a.end and b.start and b.end
    return a.start < b.end and b.start < a.end


def completion_of(record: d.CompletionRecord) -> d.Completion:
    return d.Completion(
        record.completion_time, record.attended_minutes, record.score, record.passed
    )


async def check_truth(
    system: System,
    sessions: dict[str, d.Session],
    learners: dict[str, d.Learner],
) -> list[str]:
    problems: list[str] = []
    for sid in sorted(sessions):
        problems += seat_problems(await session_history(system, sid))
    for _, learner in sorted(learners.items()):
        problems += booking_problems(sessions, learner)
        problems += completion_problems(sessions, learner)
    return problems


def booking_problems(sessions: dict[str, d.Session], learner: d.Learner) -> list[str]:
    """Invariants 2 and 3 for one agent."""
    agent = learner.agent_id
    problems = []
    held = {
        sid: s
        for sid, s in sessions.items()
        if (e := s.enrollment(agent)) is not None and e.state in ACTIVE
    }
    booked = {b.session_id: b for b in learner.bookings}
    if set(booked) != set(held):
        problems.append(
            f"{agent}: bookings {sorted(booked)} but the sessions hold it on {sorted(held)}"
        )
    for sid, b in booked.items():
        if b.move_holds:
            problems.append(f"{agent}: booking of {sid} keeps move holds {b.move_holds}")
        s = sessions.get(sid)
        if s is not None and (b.start, b.end) != (s.start, s.end):
            problems.append(
                f"{agent}: booking of {sid} at {b.start}-{b.end}, the session at {s.start}-{s.end}"
            )
    places = sorted(held.values(), key=lambda s: s.session_id)
    for i, one in enumerate(places):
        for other in places[i + 1 :]:
            if one.course_id == other.course_id:
                problems.append(
                    f"{agent}: two places in {one.course_id}: {one.session_id}, {other.session_id}"
                )
            elif overlapping(one, other):
                problems.append(
                    f"{agent}: overlapping places {one.session_id} ({one.start}-{one.end}) and "
                    f"{other.session_id} ({other.start}-{other.end})"
                )
    return problems


def completion_problems(sessions: dict[str, d.Session], learner: d.Learner) -> list[str]:
    """Invariant 4 on the learner's record, for one agent."""
    agent = learner.agent_id
    problems = []
    results = {
        sid: e.completion
        for sid, s in sessions.items()
        if (e := s.enrollment(agent)) is not None and e.completion is not None
    }
    recorded: dict[str, list[d.CompletionRecord]] = {}
    for record in learner.completions:
        recorded.setdefault(record.session_id, []).append(record)
    if set(recorded) != set(results):
        problems.append(
            f"{agent}: results on sessions {sorted(results)}, on the record {sorted(recorded)}"
        )
    for sid, records in recorded.items():
        if len(records) != 1:
            problems.append(f"{agent}: {len(records)} completions of {sid}")
        elif sid in results and completion_of(records[0]) != results[sid]:
            problems.append(
                f"{agent}: {sid} recorded {completion_of(records[0])}, "
                f"the session says {results[sid]}"
            )
    return problems


async def check_transcripts(
    system: System, sessions: dict[str, d.Session], learners: dict[str, d.Learner]
) -> list[str]:
    """Invariants 2 and 4 on the transcript (read after the views are rebuilt: before, the
    learners view may keep an older version of a document, docs/training.md "Views")."""
    problems = []
    for agent, learner in sorted(learners.items()):
        expected_bookings = sorted(f"sessions/{b.session_id}" for b in learner.bookings)
        minutes = sum(c.attended_minutes for c in learner.completions)

        async def read(agent: str = agent) -> pb.Transcript:
            return await system.train.GetTranscript(
                pb.GetTranscriptRequest(name=f"agents/{agent}/transcript")
            )

        def agrees(t: pb.Transcript, want: list[str] = expected_bookings, m: int = minutes) -> bool:
            return sorted(b.session for b in t.bookings) == want and t.totals.training_minutes == m

        try:
            transcript = await eventually(read, agrees, timeout=20)
        except AssertionError as err:
            problems.append(f"{agent}: transcript {err}")
            continue
        listed = sorted(c.session for c in transcript.completions)
        if listed != sorted(f"sessions/{c.session_id}" for c in learner.completions):
            problems.append(f"{agent}: transcript lists completions {listed}")
    return problems


def view_problems(
    incremental: dict[str, list[dict[str, Any]]], rebuilt: dict[str, list[dict[str, Any]]]
) -> tuple[list[str], int]:
    """Differences of the incremental views from the rebuilt ones (an older version of a
    document is counted, not a problem: docs/training.md, "Views")."""
    problems = []
    older = 0
    for name, docs in rebuilt.items():
        fresh = {doc["_id"]: doc for doc in docs}
        kept = {doc["_id"]: doc for doc in incremental[name]}
        if set(fresh) != set(kept):
            problems.append(f"{name}: ids {sorted(kept)} incrementally, {sorted(fresh)} rebuilt")
        for doc_id in sorted(set(fresh) & set(kept)):
            if kept[doc_id] == fresh[doc_id]:
                continue
            if kept[doc_id].get("version", 0) < fresh[doc_id].get("version", 0):
                older += 1
                continue
            problems.append(
                f"{name}/{doc_id}: {kept[doc_id]} incrementally, {fresh[doc_id]} rebuilt"
            )
    return problems, older


# --- the test ------------------------------------------------------------------------------
async def setup_courses_and_sessions(system: System, chaos: Chaos) -> None:
    rng = chaos.rng
    for code in COURSES:
        await system.train.CreateCourse(
            course(code, title=code, validity_days=rng.choice([0, 365]))
        )
    for i in range(SESSIONS):
        code = COURSES[i % len(COURSES)]
        start = chaos.slot()
        self_paced = i == SESSIONS - 1
        await system.train.CreateSession(
            pb.CreateSessionRequest(
                session_id=f"s{i}",
                session=pb.Session(
                    course=f"courses/{code}",
                    start_time=to_timestamp(start),
                    end_time=to_timestamp(start + (timedelta(days=1) if self_paced else LENGTH)),
                    time_zone="Asia/Kolkata",
                    trainer="Ravi",
                    capacity=rng.randint(1, 3),
                    delivery=pb.DELIVERY_SELF_PACED if self_paced else pb.DELIVERY_VIRTUAL,
                ),
                idempotency_key=f"create-s{i}",
            )
        )


async def sessions_now(system: System) -> dict[str, d.Session]:
    return {f"s{i}": await system.training.store.session_now(f"s{i}") for i in range(SESSIONS)}


async def run_waves(system: System, chaos: Chaos) -> list[str]:
    """Sends every wave; the problems with the answers."""
    failures = []
    for number in range(WAVES):
        chaos.sessions = await sessions_now(system)
        calls = chaos.wave(number)
        await asyncio.gather(*(chaos.call(c) for c in calls))
        chaos.sent += calls
        for sent in calls:
            why = well_formed(sent)
            if why:
                failures.append(f"{why}: {sent.describe()}")
            first = sent.retry_of
            if (
                first is not None
                and first.wave < sent.wave
                and first.code is Code.OK
                and (sent.code is not Code.OK or sent.answer != first.answer)
            ):
                failures.append(
                    f"a retry of an OK answered differently: {first.describe()} / {sent.describe()}"
                )
    if os.environ.get("WFM_CHAOS_TRACE"):  # every call, for a failure's story
        Path(os.environ["WFM_CHAOS_TRACE"]).write_text(  # noqa: ASYNC240
            "".join(f"{sent.describe()}\n" for sent in chaos.sent)
        )
    codes: dict[str, int] = {}
    for sent in chaos.sent:
        label = f"{sent.method} {sent.code.name}"
        codes[label] = codes.get(label, 0) + 1
    print(f"{len(chaos.sent)} calls:", ", ".join(f"{k} {v}" for k, v in sorted(codes.items())))
    return failures


async def check_views(system: System, replicas: Replicas) -> list[str]:
    """Rebuilt from the stream by one projector the views equal the truth, and the incremental
    ones equal the rebuilt (or keep an older version of a document)."""
    await replicas.stop_second()
    for runner in system.training.runtime.projectors:
        await runner.wait_caught_up()
    incremental = await _snapshot(system)
    await system.training.runtime.rebuild_views()
    rebuilt = await _snapshot(system)
    failures, older = view_problems(incremental, rebuilt)
    print(f"{older} incremental view document(s) an older version than rebuilt")
    training = system.training.store
    for sid, truth in (await sessions_now(system)).items():
        viewed = await training.session(sid, events=False)
        if viewed != truth:
            failures.append(f"{sid}: rebuilt view {viewed}, events {truth}")
    for agent in AGENTS:
        learner = await learner_truth(system, agent)
        viewed_learner = await training.learner(agent)
        if (viewed_learner or d.Learner(agent)) != learner:
            failures.append(f"{agent}: rebuilt view {viewed_learner}, events {learner}")
    return failures


async def test_concurrent_flows_keep_every_invariant(system: System, replicas: Replicas) -> None:
    print(f"WFM_CHAOS_SEED={SEED}")
    rng = random.Random(SEED)
    # Sessions two days back: check-in is open for every slot (until 14 days after the end).
    base = utc_now().replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    chaos = Chaos(rng, replicas, base)
    await setup_courses_and_sessions(system, chaos)
    failures = await run_waves(system, chaos)

    sessions = await sessions_now(system)
    learners = {a: await learner_truth(system, a) for a in AGENTS}
    if os.environ.get("WFM_CHAOS_TRACE"):  # every event too, for a failure's story
        with Path(os.environ["WFM_CHAOS_TRACE"]).open("a") as out:  # noqa: ASYNC230
            out.write(await event_story(system))
    failures += await check_truth(system, sessions, learners)
    # Nothing was cut off: a sweep past every grace finds nothing to settle.
    settled = await system.training.reconciler.sweep(utc_now() + reconciler.GRACE * 2)
    if settled:
        failures.append(f"the reconciler settled {settled} booking(s) no flow left")
    failures += await check_views(system, replicas)
    failures += await check_transcripts(system, sessions, learners)

    assert not failures, f"WFM_CHAOS_SEED={SEED}: {len(failures)} problem(s):\n" + "\n".join(
        failures[:40]
    )
