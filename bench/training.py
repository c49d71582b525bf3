"""Training benchmark: `python -m bench.training` (PYTHONPATH=.:gen/python).

Starts its own nats-server and FerretDB (SQLite), runs scheduling + training in this process
(authenticated, plaintext gRPC over loopback), then:
1. 1,000 agents in 50 teams; 10 courses; one 20-seat session per team and course (500).
2. 10,000 enrollments (one agent per EnrollAgents call) and, after each session's check-in,
   10,000 completions (RecordCompletion), with CONCURRENCY calls in flight: writes per second.
   Every such call commits two events (the learner's and the session's).
3. The extra course's 50 sessions (a team on each) moved a day on, one UpdateSession each:
   bookings moved per second (each holds the new time on every learner first).
4. Once the views have caught up, every agent's transcript (GetTranscript), one at a time:
   latency p50/p99.
Baseline in the same run, on the same FerretDB: single-document inserts of event-sized
documents with the same concurrency (the cheapest possible committed write), and find_one by
_id of a transcript-sized document (the cheapest possible read). Writes docs/bench/training.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bson.binary import Binary
from google.protobuf.field_mask_pb2 import FieldMask
from wfm.scheduling.v1 import directory_service_pb2 as dpb
from wfm.scheduling.v1 import directory_service_pb2_grpc as dpb_grpc
from wfm.training.v1 import training_service_pb2 as pb
from wfm.training.v1 import training_service_pb2_grpc as pb_grpc

from bench.run import sqlite_stack
from services.scheduling import main as scheduling_main
from services.training import main as training_main
from wfm_runtime import mongo
from wfm_runtime.testing import TokenMinter, channel, eventually, isolated_settings
from wfm_runtime.timefmt import to_timestamp

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "bench" / "training.md"
LIMIT_S = 170.0
CONCURRENCY = 64
BATCH_CONCURRENCY = 8  # calls of TEAM_SIZE agents each in flight
MOVE_CONCURRENCY = 2  # schedulers moving classes at once
TEAM_SIZE = 20
COURSES = 10
# Course c's sessions run in slot c, back to back: an agent's ten sessions never clash, and all
# of them can be checked in at once (StartSession is open from an hour before a session's start
# until its end), from a few minutes before the catalogue is made until a quarter of an hour
# after: the enrollments come between.
SLOT = timedelta(minutes=5)
FIRST_SLOT_AFTER = timedelta(minutes=10)


@dataclass
class Phase:
    name: str
    count: int  # state changes (enrollments, completions, reads, inserts)
    seconds: float
    latencies_ms: list[float]  # per call

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def timed_all(
    name: str, calls: list[Callable[[], Awaitable[Any]]], concurrency: int, per_call: int = 1
) -> Phase:
    """Runs the calls with `concurrency` in flight; every call must succeed."""
    latencies: list[float] = []
    queue = list(reversed(calls))

    async def worker() -> None:
        while queue:
            call = queue.pop()
            began = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - began) * 1000)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase = Phase(name, len(calls) * per_call, time.perf_counter() - began, latencies)
    print(f"bench.training: {name}: {phase.count} in {phase.seconds:.1f} s", file=sys.stderr)
    return phase


async def directory(stub: dpb_grpc.DirectoryServiceStub, agents: int) -> list[str]:
    teams = [f"team-{t:02d}" for t in range(agents // TEAM_SIZE)]
    for team in teams:
        await stub.CreateTeam(
            dpb.CreateTeamRequest(
                team_id=team,
                idempotency_key=f"t-{team}",
                team=dpb.Team(
                    display_name=team, client_time_zone="America/New_York", client="acme"
                ),
            )
        )
    ids = [f"a{i:04d}" for i in range(agents)]

    def register(i: int) -> Callable[[], Awaitable[Any]]:
        return lambda: stub.CreateAgent(
            dpb.CreateAgentRequest(
                agent_id=ids[i],
                idempotency_key=f"a-{ids[i]}",
                agent=dpb.Agent(
                    display_name=ids[i],
                    team=f"teams/{teams[i // TEAM_SIZE]}",
                    site="pune",
                    time_zone="Asia/Kolkata",
                    contract_type=dpb.CONTRACT_TYPE_FULL_TIME,
                    weekly_minutes=2400,
                ),
            )
        )

    await timed_all("agents", [register(i) for i in range(agents)], CONCURRENCY)
    return ids


async def catalogue(stub: pb_grpc.TrainingServiceStub, teams: int) -> list[str]:
    sessions: list[str] = []
    first = datetime.now(UTC).replace(microsecond=0) + FIRST_SLOT_AFTER
    creates: list[Callable[[], Awaitable[Any]]] = []
    for c in range(COURSES + 1):  # the last one takes the single-agent enrollments
        code = f"course-{c}"
        await stub.CreateCourse(
            pb.CreateCourseRequest(
                course_id=code,
                idempotency_key=f"c-{code}",
                course=pb.Course(
                    title=f"Course {c}",
                    category=pb.COURSE_CATEGORY_TECHNICAL if c % 2 else pb.COURSE_CATEGORY_PRODUCT,
                    credit_minutes=120,
                    technical=bool(c % 2),
                    competency=f"skill-{c % 3}",
                    competency_level=pb.CompetencyLevel.Value(
                        ["COMPETENCY_LEVEL_FOUNDATION", "COMPETENCY_LEVEL_COMPETENT"][c % 2]
                    ),
                    validity_days=365,
                    required_for_clients=["acme"] if c < 3 else [],
                ),
            )
        )
        start = first + c * SLOT
        for t in range(teams):
            sid = f"s-{c}-{t:02d}"
            creates.append(_create_session(stub, sid, code, start))
            if c < COURSES:  # the extra course's sessions stay open for single enrollments
                sessions.append(sid)
    await timed_all("CreateSession", creates, CONCURRENCY)
    return sessions


def _create_session(
    stub: pb_grpc.TrainingServiceStub, sid: str, code: str, start: datetime
) -> Callable[[], Awaitable[Any]]:
    return lambda: stub.CreateSession(
        pb.CreateSessionRequest(
            session_id=sid,
            idempotency_key=f"s-{sid}",
            session=pb.Session(
                course=f"courses/{code}",
                start_time=to_timestamp(start),
                end_time=to_timestamp(start + SLOT),
                time_zone="Asia/Kolkata",
                trainer="trainer-1",
                capacity=TEAM_SIZE,
                delivery=pb.DELIVERY_VIRTUAL,
            ),
        )
    )


def _start(stub: pb_grpc.TrainingServiceStub, sid: str) -> Callable[[], Awaitable[Any]]:
    return lambda: stub.StartSession(
        pb.StartSessionRequest(name=f"sessions/{sid}", idempotency_key=f"go-{sid}")
    )


def enrollment_calls(
    stub: pb_grpc.TrainingServiceStub, agents: list[str]
) -> list[Callable[[], Awaitable[Any]]]:
    """HR enrolls each team in its session of each course: TEAM_SIZE agents per call."""

    def one(c: int, t: int) -> Callable[[], Awaitable[Any]]:
        sid = f"s-{c}-{t:02d}"
        team = agents[t * TEAM_SIZE : (t + 1) * TEAM_SIZE]
        return lambda: stub.EnrollAgents(
            pb.EnrollAgentsRequest(
                session=f"sessions/{sid}",
                agents=[f"agents/{a}" for a in team],
                idempotency_key=f"e-{sid}",
            )
        )

    return [one(c, t) for c in range(COURSES) for t in range(len(agents) // TEAM_SIZE)]


def completion_calls(
    stub: pb_grpc.TrainingServiceStub, agents: list[str]
) -> list[Callable[[], Awaitable[Any]]]:
    """The trainer records each session's results at once: TEAM_SIZE completions per call."""

    def one(c: int, t: int) -> Callable[[], Awaitable[Any]]:
        sid = f"s-{c}-{t:02d}"
        entries = [
            pb.CompletionEntry(
                agent=f"agents/{agents[i]}",
                completion=pb.Completion(
                    attended_minutes=120, score=60 + (i * 7 + c) % 40, passed=(i + c) % 5 != 0
                ),
            )
            for i in range(t * TEAM_SIZE, (t + 1) * TEAM_SIZE)
        ]
        return lambda: stub.RecordCompletions(
            pb.RecordCompletionsRequest(
                session=f"sessions/{sid}", completions=entries, idempotency_key=f"done-{sid}"
            )
        )

    return [one(c, t) for c in range(COURSES) for t in range(len(agents) // TEAM_SIZE)]


def single_calls(
    stub: pb_grpc.TrainingServiceStub, agents: list[str]
) -> list[Callable[[], Awaitable[Any]]]:
    """One agent per call (self-enrollment's shape), into an extra course's sessions, in an
    order where neighbouring calls go to different sessions (each session decides its seats
    one at a time)."""

    def one(i: int) -> Callable[[], Awaitable[Any]]:
        sid = f"s-{COURSES}-{i // TEAM_SIZE:02d}"
        return lambda: stub.EnrollAgents(
            pb.EnrollAgentsRequest(
                session=f"sessions/{sid}",
                agents=[f"agents/{agents[i]}"],
                idempotency_key=f"single-{agents[i]}",
            )
        )

    teams = len(agents) // TEAM_SIZE
    return [one(t * TEAM_SIZE + seat) for seat in range(TEAM_SIZE) for t in range(teams)]


def move_calls(stub: pb_grpc.TrainingServiceStub, teams: int) -> list[Callable[[], Awaitable[Any]]]:
    """The scheduler moves each session of the extra course (a team of TEAM_SIZE on each) a day
    on: each call holds the new time on every learner, moves the session, then each booking."""
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)

    def one(t: int) -> Callable[[], Awaitable[Any]]:
        sid = f"s-{COURSES}-{t:02d}"
        return lambda: stub.UpdateSession(
            pb.UpdateSessionRequest(
                session=pb.Session(
                    name=f"sessions/{sid}",
                    start_time=to_timestamp(start),
                    end_time=to_timestamp(start + SLOT),
                ),
                update_mask=FieldMask(paths=["start_time", "end_time"]),
                idempotency_key=f"move-{sid}",
            )
        )

    return [one(t) for t in range(teams)]


async def transcripts(stub: pb_grpc.TrainingServiceStub, agents: list[str]) -> Phase:
    def one(agent: str) -> Callable[[], Awaitable[Any]]:
        return lambda: stub.GetTranscript(
            pb.GetTranscriptRequest(name=f"agents/{agent}/transcript")
        )

    return await timed_all("GetTranscript", [one(a) for a in agents], 1)


async def baseline(mongo_url: str, writes: int, reads: int, doc_bytes: int) -> tuple[Phase, Phase]:
    """Bare FerretDB: committed single inserts (same concurrency), then find_one by _id."""
    client = mongo.connect(mongo_url, "bench-baseline")
    coll = client[f"baseline_{uuid.uuid4().hex[:8]}"]["docs"]
    payload = Binary(os.urandom(600))

    def insert(i: int) -> Callable[[], Awaitable[Any]]:
        return lambda: coll.insert_one({"_id": f"e-{i:08d}", "v": i, "envelope": payload})

    wrote = await timed_all("raw insert_one", [insert(i) for i in range(writes)], CONCURRENCY)
    reads_coll = client[f"baseline_{uuid.uuid4().hex[:8]}"]["transcripts"]
    big = Binary(os.urandom(doc_bytes))
    await reads_coll.insert_many([{"_id": f"a{i:04d}", "data": big} for i in range(reads)])

    def find(i: int) -> Callable[[], Awaitable[Any]]:
        return lambda: mongo.get(reads_coll, f"a{i:04d}")

    read = await timed_all("raw find_one by _id", [find(i) for i in range(reads)], 1)
    client.close()
    return wrote, read


async def run(agents_n: int) -> str:
    load_before = os.getloadavg()[0]
    minter = TokenMinter(Path(tempfile.mkdtemp()) / "bench.pub.pem")
    auth = minter.auth_config()
    with sqlite_stack(Path(tempfile.mkdtemp(prefix="wfm-bench-training-"))) as stack:
        prefix, namespace = "btrain_", "btrain"

        def settings(service: str) -> Any:
            return isolated_settings(
                service,
                stack.mongo_url,
                stack.nats_url,
                prefix=prefix,
                auth=auth,
                namespace=namespace,
            )

        scheduling = await scheduling_main.start(settings("scheduling"), port=0)
        training = await training_main.start(settings("training"), port=0)
        token = minter.token("hr-1", "hr", "admin")
        ch_s = channel(f"127.0.0.1:{scheduling.port}", token)
        ch_t = channel(f"127.0.0.1:{training.port}", token)
        try:
            stub = pb_grpc.TrainingServiceStub(ch_t)
            agents = await directory(dpb_grpc.DirectoryServiceStub(ch_s), agents_n)
            await eventually(
                lambda: asyncio.sleep(0, len(training.directory.agents)),
                lambda n: n == agents_n,
                timeout=60,
            )
            sessions = await catalogue(stub, agents_n // TEAM_SIZE)
            enrolled = await timed_all(
                "EnrollAgents x20",
                enrollment_calls(stub, agents),
                BATCH_CONCURRENCY,
                TEAM_SIZE,
            )
            await timed_all("StartSession", [_start(stub, sid) for sid in sessions], CONCURRENCY)
            completed = await timed_all(
                "RecordCompletions x20",
                completion_calls(stub, agents),
                BATCH_CONCURRENCY,
                TEAM_SIZE,
            )
            single = await timed_all("EnrollAgents x1", single_calls(stub, agents), CONCURRENCY)
            moved = await timed_all(
                "UpdateSession x20",
                move_calls(stub, agents_n // TEAM_SIZE),
                MOVE_CONCURRENCY,
                TEAM_SIZE,
            )
            began = time.perf_counter()
            for runner in training.runtime.projectors:
                await runner.wait_caught_up(timeout=60)
            lag_s = time.perf_counter() - began
            print(f"bench.training: views caught up {lag_s:.1f} s later", file=sys.stderr)
            read = await transcripts(stub, agents)
            sample = await stub.GetTranscript(
                pb.GetTranscriptRequest(name=f"agents/{agents[0]}/transcript")
            )
            assert len(sample.completions) == COURSES, sample
            writes = enrolled.count + completed.count
            raw_write, raw_read = await baseline(
                stack.mongo_url, writes // 4, len(agents), sample.ByteSize()
            )
        finally:
            await ch_s.close()
            await ch_t.close()
            await training.stop()
            await scheduling.stop()
    return render(
        agents_n,
        [enrolled, completed, single, moved],
        read=read,
        raw_write=raw_write,
        raw_read=raw_read,
        transcript_bytes=sample.ByteSize(),
        load=(load_before, os.getloadavg()[0]),
    )


def render(
    agents: int,
    writes: list[Phase],
    *,
    read: Phase,
    raw_write: Phase,
    raw_read: Phase,
    transcript_bytes: int,
    load: tuple[float, float],
) -> str:
    enrolled, completed, single, moved = writes
    rate = (enrolled.count + completed.count) / (enrolled.seconds + completed.seconds)
    rows = [
        ("EnrollAgents, a team of 20 per call", enrolled),
        ("RecordCompletions, a class of 20 per call", completed),
        ("EnrollAgents, 1 agent per call", single),
        ("UpdateSession moving a class of 20 per call (bookings moved)", moved),
        ("raw insert_one (baseline)", raw_write),
        ("GetTranscript", read),
        ("raw find_one by _id (baseline)", raw_read),
    ]
    table = "\n".join(
        f"| {name} | {p.count} | {p.rate:.0f}/s | {p.pct(0.5):.1f} | {p.pct(0.99):.1f} |"
        for name, p in rows
    )
    return f"""# Training benchmark (`python -m bench.training`)

{agents} agents in {agents // TEAM_SIZE} teams, {COURSES} courses, one {TEAM_SIZE}-seat session
per team and course. HR enrolls each team in each session ({enrolled.count} enrollments, a
team per call, {BATCH_CONCURRENCY} calls in flight), the sessions start, and the trainer
records each class's results ({completed.count} completions, a class per call). Every
enrollment and completion commits its own learner event; each call adds one session event.
Then {single.count} single-agent enrollments ({CONCURRENCY} in flight: two events each), and
the moves of the single-agent sessions ({moved.count // TEAM_SIZE} calls of {TEAM_SIZE} bookings, a
day on, {MOVE_CONCURRENCY} calls in flight: each holds the new time on every learner, moves the
session, then every booking),
and every agent's transcript, one call at a time, after the views caught up. Scheduling and
training run in the benchmark's process, over loopback gRPC with bearer tokens, on FerretDB
v1.24 (SQLite) and nats-server; {os.cpu_count()} cores shared with other work (load average
{load[0]:.1f} before the run, {load[1]:.1f} after). The baselines run on the same FerretDB in
the same run: compare with them, not across runs. Latencies are per call.

| operation | state changes | throughput | p50 ms | p99 ms |
|---|---|---|---|---|
{table}

- Writes (enrollments + completions, batched as HR and trainers work): **{rate:.0f}/s**
  (target >= 300/s); {rate / raw_write.rate:.2f}x the bare committed inserts.
- One agent per call: **{single.rate:.0f}/s**, {single.rate / raw_write.rate:.2f}x the bare
  inserts (each call: two events, projections).
- Moving a class: **{moved.rate:.0f} bookings/s**, p50 {moved.pct(0.5):.0f} ms and p99
  {moved.pct(0.99):.0f} ms per class of {TEAM_SIZE} (two learner events per agent: the hold,
  then the move).
- Transcript read: p50 **{read.pct(0.5):.1f} ms**, p99 **{read.pct(0.99):.1f} ms** (target
  p99 < 50 ms); a bare find_one of a {transcript_bytes}-byte document: p50
  {raw_read.pct(0.5):.1f} ms, p99 {raw_read.pct(0.99):.1f} ms
  ({read.pct(0.99) / max(raw_read.pct(0.99), 0.001):.1f}x at p99).

## One agent per call: what changed in round 2 (measured 2026-11-24)

Back-to-back full runs on the same loaded machine (load average 4.7-6.5), before = main at
c79a43f, after = branch issue-4b; compare the ratios to each run's own baseline:

| | before | after |
|---|---|---|
| raw insert_one (that run's baseline) | 1290/s | 635/s |
| EnrollAgents, 1 agent per call | 56/s (0.04x) | 112/s (0.18x) |
| batched writes (enroll + complete) | 278/s (0.22x) | 343/s (0.54x) |
| GetTranscript p50 / p99 ms | 7.1 / 16.8 | 9.9 / 59.8 (raw find_one p99 21.6) |

- EnrollAgents no longer reads the session view when this process has the session: the
  session step checks the seats on the aggregate itself and refuses (`SESSION_MOVED`) if the
  session moved after the learners booked its time.
- The projector copies the state an event carries into the view instead of decoding it into
  the domain and encoding it again (each learner event carries every completion).
- Completion records are memoized in both directions, and a roster's waitlist positions are
  computed once per session instead of once per enrollment.
- What remains per single-agent call is two aggregate steps one after the other (the learner
  decides overlap and prerequisites, then the session decides the seat), each an
  event insert in `wfm_runtime`: two sequential writes. With
  {CONCURRENCY} calls in flight the rate is bounded by that chain's latency (and by one session
  step at a time per session), not by FerretDB's write rate; 300/s for single-agent calls
  needs fewer sequential writes per step (a runtime change) or coalescing concurrent
  enrollments of one session into one session event.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=1000, help="multiple of 20")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    text = asyncio.run(asyncio.wait_for(run(args.agents), LIMIT_S))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
