"""Hostile requests to every PerformanceService RPC: a well-formed answer every time.

Each unary RPC gets a valid template (it must answer OK) and then generated requests, from
callers of every role: variants of the template with fields cleared or made hostile at any
depth, and wholly generated messages. RecordCases (client streaming) gets streams of such
messages, some with undecodable ones among them. Every answer must be OK or a refusal that
carries a google.rpc.Status with one ErrorInfo; never INTERNAL, UNKNOWN, a hang or a dropped
connection. A batch's answer must hold one result per streamed case, each recorded or refused
with a code a client can act on. After each answer the event store may have grown by at most
one event per case or threshold set it answered OK, so a refusal, of a call or of a whole
batch, adds none; afterwards the service must be healthy and still record a normal case.
(Where grpc's own aio client loses the server's refusal of a stream, see
CLIENT_WRITE_RACE, the server's audit record of the call is judged instead.) Uses the
strategies and the runner of tests/integration/test_fuzz.py (so WFM_FUZZ_SEED and
WFM_FUZZ_SCALE work here too).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import text_format
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import strategies as st
from wfm.performance.v1 import performance_service_pb2 as pb

from services.performance import domain
from tests.conftest import System
from tests.fuzz_strategies import messages, variants
from tests.integration.test_fuzz import (
    CALL_TIMEOUT_S,
    NO_ANSWER,
    REFUSALS,
    SEED,
    Case,
    Outcome,
    Target,
    _shorten,
    corrupt,
    fuzz,
    invoke,
    judge,
    judge_payload,
    refusal_outcome,
)
from tests.integration.test_performance_api import _case, _team, _today_period
from wfm_runtime import pagination

pytestmark = pytest.mark.integration

Code = grpc.StatusCode
SERVICE = pb.DESCRIPTOR.services_by_name["PerformanceService"]
TARGETS = {m.name: Target("performance", m) for m in SERVICE.methods}
STREAM = "RecordCases"
# The aggregates a caller's request may add events to (red flags are the service's own).
CHANGED_BY_CALLERS = ("case", "team_thresholds")
# What a batch may answer for one case: recorded, or refused for a reason the caller can fix.
CASE_RESULTS = frozenset(
    {
        code_pb2.OK,
        code_pb2.INVALID_ARGUMENT,
        code_pb2.NOT_FOUND,
        code_pb2.ALREADY_EXISTS,
        code_pb2.FAILED_PRECONDITION,
        code_pb2.ABORTED,
    }
)

PERIOD, RESOLVED = _today_period()
TEAM = "teams/night"


def _case_of(agent: str, minutes_ago: int = 0) -> pb.Case:
    case = _case(agent, RESOLVED - timedelta(minutes=minutes_ago), csat=4)
    case.pulse_score = 9
    return case


VALID: dict[str, Message] = {
    "RecordCase": pb.RecordCaseRequest(
        case_id="f-case", case=_case_of("a1"), idempotency_key="f-rec"
    ),
    "GetScorecard": pb.GetScorecardRequest(name="agents/a1/scorecard", period=PERIOD),
    "ListScorecards": pb.ListScorecardsRequest(
        team=TEAM, period=PERIOD, order_by="cases_resolved desc", page_size=1
    ),
    "GetTeamSummary": pb.GetTeamSummaryRequest(team=TEAM, period=PERIOD),
    "SetRedFlagThresholds": pb.SetRedFlagThresholdsRequest(
        thresholds=pb.RedFlagThresholds(
            name=f"{TEAM}/redFlagThresholds", min_sla_compliance_percent=90, max_late_logins=2
        ),
        idempotency_key="f-limits",
        expected_version=1,
    ),
    "GetRedFlagThresholds": pb.GetRedFlagThresholdsRequest(name=f"{TEAM}/redFlagThresholds"),
    "ListRedFlags": pb.ListRedFlagsRequest(team=TEAM, period=PERIOD),
    "ExplainMetric": pb.ExplainMetricRequest(
        name="agents/a1/scorecard", period=PERIOD, metric="csat_average"
    ),
    "GetTeamAdherence": pb.GetTeamAdherenceRequest(name=f"{TEAM}/adherence"),
}
UNARY = list(VALID)
MUTATING = {"RecordCase", "SetRedFlagThresholds"}
# One streamed case: a new case, and a correction of one the world recorded.
STREAMED = [
    pb.RecordCasesRequest(case_id="f-b1", case=_case_of("a2"), idempotency_key="f-b1"),
    pb.RecordCasesRequest(
        case_id="w-1", case=_case_of("a1", 5), idempotency_key="f-b2", expected_version=1
    ),
]
assert {*UNARY, STREAM} == set(TARGETS)

CALLERS = ["admin"] * 4 + ["agent", "other agent", "team_leader", "hr", "trainer", "no role"]
DAY = PERIOD.end_date
WORDS = [
    "a1", "a2", "a3", "ghost", "night", "day", "w-1", "f-case", "f-b1", "f-rec",
    "agents/a1", "agents/a3", "agents/ghost", "agents/a1/scorecard", "agents/a3/scorecard",
    "agents/ghost/scorecard", "agents//scorecard", TEAM, "teams/day", "teams/ghost",
    f"{TEAM}/redFlagThresholds", "teams/day/redFlagThresholds", f"{TEAM}/adherence",
    "teams/day/adherence", "cases/w-1", "agents/a1/adherence", "teams/night/scorecard",
    DAY, PERIOD.start_date, "2000-01-01", "2999-12-31", "0001-01-01", "9999-12-31",
    "2024-02-29", "2023-02-29", "2026-13-01", "20260101",
    "agent", "agent desc", "desc", "cases_resolved", "csat_average desc", "adherence_percent",
    "occupancy_percent", "scheduled_hours", "training_hours", "certification_expired",
    "PHONE", "$gt", "{'$ne': 1}", "*",
]  # fmt: skip
WORDS += [f.name for f in pb.Metrics.DESCRIPTOR.fields]


# --- the world -----------------------------------------------------------------------------
@dataclass
class World:
    """A team of two agents and a team of one, cases, thresholds; channels and callers."""

    system: System
    channel: grpc.aio.Channel
    tokens: dict[str, str]
    dictionary: list[str]
    problems: list[str] = field(default_factory=list)
    ok_changes: int = 0  # events the OK answers may have added
    stored: int = 0  # the events after the last answer (see `account`)
    client_races: int = 0  # see CLIENT_WRITE_RACE

    def auth(self, caller: str = "admin") -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.tokens[caller]}")]

    async def events(self) -> int:
        assert self.system.performance is not None
        events = self.system.performance.runtime.db["events"]
        return int(await events.count_documents({"aggregate_type": {"$in": CHANGED_BY_CALLERS}}))

    async def account(self, ok_changes: int) -> str | None:
        """Events the last answer added beyond its `ok_changes` (0 for a refusal), if any."""
        before, self.stored = self.stored, await self.events()
        if not 0 <= self.stored - before <= ok_changes:
            return f"events grew by {self.stored - before} with {ok_changes} OK changes"
        return None

    def note(self, problem: str | None, sent: str) -> None:
        if problem is not None and len(self.problems) < 20:
            self.problems.append(f"{problem}\n    for {sent[:600]}")

    def check_problems(self) -> None:
        if self.problems:
            pytest.fail(f"hypothesis seed {SEED}:\n" + "\n".join(self.problems), pytrace=False)

    async def check_unharmed(self, before: int) -> None:
        """Healthy, still recording, and no event beyond those of the OK answers."""
        grown = await self.events() - before
        assert 0 <= grown <= self.ok_changes, (grown, self.ok_changes)
        health = health_pb2_grpc.HealthStub(self.channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT_S)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert self.system.perf is not None
        after = pb.RecordCaseRequest(case_id="after", case=_case_of("a2"), idempotency_key="after")
        assert (await self.system.perf.RecordCase(after, timeout=CALL_TIMEOUT_S)).version == 1


async def _world(system: System) -> World:
    return await asyncio.wait_for(_build_world(system), 30)


async def _build_world(system: System) -> World:
    perf = system.perf
    assert perf is not None and system.performance is not None
    await _team(system, "night", ["a1", "a2"])
    await _team(system, "day", ["a3"])
    for n, agent in enumerate(("a1", "a1", "a2", "a3"), start=1):
        await perf.RecordCase(
            pb.RecordCaseRequest(case_id=f"w-{n}", case=_case_of(agent, n), idempotency_key=f"w{n}")
        )
    for team in ("night", "day"):
        await perf.SetRedFlagThresholds(
            pb.SetRedFlagThresholdsRequest(
                thresholds=pb.RedFlagThresholds(
                    name=f"teams/{team}/redFlagThresholds", min_csat_average=4.5
                ),
                idempotency_key=f"w-limits-{team}",
            )
        )
    # Real page tokens (this team's, another team's, another order's), so mutated tokens
    # start from something the API issued.
    tokens = []
    for team, order_by in ((TEAM, "cases_resolved desc"), ("teams/day", ""), (TEAM, "")):
        listed = await perf.ListScorecards(
            pb.ListScorecardsRequest(team=team, period=PERIOD, order_by=order_by, page_size=1)
        )
        tokens.append(listed.next_page_token)
    # And tokens forged for the ListScorecards template's filter (its hash is no secret), at odd
    # offsets.
    period = domain.Period(
        date.fromisoformat(PERIOD.start_date), date.fromisoformat(PERIOD.end_date)
    )
    filter_key = f"scorecards|night|{period}|cases_resolved|True"
    tokens += [pagination.encode(k, filter_key) for k in ("0", "2", "9" * 400, "-1", "²", "1e3")]
    minter = system.minter
    callers = {
        "admin": minter.token("admin-1", "admin"),
        "agent": minter.token("a1", "agent"),
        "other agent": minter.token("a3", "agent"),
        "team_leader": minter.token("tl-1", "team_leader", teams=("night",)),
        "hr": minter.token("hr-1", "hr"),
        "trainer": minter.token("tr-1", "trainer"),
        "no role": minter.token("nobody"),
    }
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{system.performance.port}")
    system.channels.append(channel)
    return World(system, channel, callers, [*WORDS, *(t for t in tokens if t)])


# --- unary RPCs ----------------------------------------------------------------------------
@pytest.mark.parametrize("method", UNARY)
async def test_hostile_performance_requests_get_well_formed_answers(
    perf_system: System, method: str
) -> None:
    world = await _world(perf_system)
    target = TARGETS[method]
    before = await world.events()
    template = Case("generated", target, VALID[method].SerializeToString(), world.auth())
    accepted = await invoke(world.channel, template)
    assert accepted.code is Code.OK, (method, accepted)  # the template is valid
    world.ok_changes += int(method in MUTATING)
    world.stored = await world.events()

    async def check(drawn: tuple[str, Message]) -> None:
        caller, request = drawn
        case = Case("generated", target, request.SerializeToString(), world.auth(caller))
        outcome = await invoke(world.channel, case)
        changes = int(outcome.code is Code.OK and method in MUTATING)
        world.ok_changes += changes
        world.note(judge_payload(case, outcome), case.describe())
        world.note(await world.account(changes), case.describe())

    requests = st.one_of(
        messages(target.method.input_type, world.dictionary),
        variants(VALID[method], world.dictionary),
    )
    await fuzz(st.tuples(st.sampled_from(CALLERS), requests), check, examples=40)
    world.check_problems()
    await world.check_unharmed(before)


# --- RecordCases: streams of hostile cases -------------------------------------------------
@dataclass(frozen=True)
class Batch:
    caller: str
    payloads: Sequence[bytes]  # one per streamed message, as sent (maybe undecodable)

    def decoded(self) -> list[pb.RecordCasesRequest | None]:
        out: list[pb.RecordCasesRequest | None] = []
        for payload in self.payloads:
            try:
                out.append(pb.RecordCasesRequest.FromString(payload))
            except DecodeError:
                out.append(None)
        return out

    def describe(self) -> str:
        sent = [
            text_format.MessageToString(m, as_one_line=True) if m else f"undecodable {p[:40]!r}"
            for m, p in zip(self.decoded(), self.payloads, strict=True)
        ]
        return _shorten(f"{self.caller}: [{' | '.join(sent)}]")


async def _send_batch(channel: grpc.aio.Channel, batch: Batch, metadata: Any) -> Outcome:
    """Streams the payloads as they are (no serializer) and reads the one answer."""
    call = channel.stream_unary(f"/{SERVICE.full_name}/{STREAM}")

    async def stream() -> AsyncIterator[bytes]:
        for payload in batch.payloads:
            yield payload

    try:
        answer = call(stream(), metadata=tuple(metadata), timeout=CALL_TIMEOUT_S)
        return Outcome(Code.OK, response=await asyncio.wait_for(answer, CALL_TIMEOUT_S + 1))
    except grpc.aio.AioRpcError as err:
        return refusal_outcome(err)
    except TimeoutError:
        return NO_ANSWER


def judge_batch(batch: Batch, outcome: Outcome) -> str | None:
    """`judge` for the call; an OK answer must account for every streamed case."""
    decoded = batch.decoded()
    problem = judge(Case("stream", TARGETS[STREAM], b"", []), outcome)
    if problem is not None or outcome.code is not Code.OK:
        return problem
    assert outcome.response is not None
    response = pb.RecordCasesResponse.FromString(outcome.response)
    if None in decoded:
        return "OK for a stream with an undecodable message"
    if len(response.results) != len(decoded):
        return f"{len(response.results)} results for {len(decoded)} cases"
    for sent, result in zip(decoded, response.results, strict=True):
        assert sent is not None
        # An id is echoed cut to 63 bytes (the longest valid one), so a reply stays bounded.
        if result.case_id != sent.case_id.encode()[:63].decode(errors="ignore"):
            return "a result out of order"
        if result.error_code not in CASE_RESULTS:
            return f"a case answered {code_pb2.Code.Name(result.error_code)}"
        if result.error_code and (result.HasField("case") or not result.error_message):
            return "a refused case without its reason, or with a case"
        if not result.error_code and not result.case.version:
            return "a recorded case without its version"
    if response.recorded_count + response.failed_count != len(decoded):
        return "counts that do not add up"
    return None


def batches(dictionary: Sequence[str]) -> st.SearchStrategy[Batch]:
    one = st.one_of(
        *(variants(m, dictionary) for m in STREAMED),
        messages(pb.RecordCasesRequest.DESCRIPTOR, dictionary),
    ).map(lambda m: m.SerializeToString())
    payload = st.one_of(
        one,
        one,
        one,
        st.builds(corrupt, one, st.integers(0, 2**20), st.integers(0, 255)),
        st.binary(max_size=64),
    )
    return st.builds(Batch, st.sampled_from(CALLERS), st.lists(payload, max_size=8))


# grpc-python's aio client (grpc/grpc#36066): when the server answers a client stream before
# the client has finished writing (a refusal before any message is read), a write that fails
# afterwards replaces the server's status with this one on the client. The server's own answer
# is then read from its audit record (RecordCases is a change, so every call is audited).
CLIENT_WRITE_RACE = "Internal error from Core"


async def _server_outcome(world: World, request_id: str, outcome: Outcome) -> Outcome | None:
    """The client's outcome; where the client lost it, None for a refusal the server audited,
    else the server's code."""
    if outcome.code is not Code.INTERNAL or outcome.details != CLIENT_WRITE_RACE:
        return outcome
    assert world.system.performance is not None
    runtime = world.system.performance.runtime
    await runtime.audit.flush()
    record = await runtime.views_db["audit"].find_one({"request_id": request_id})
    audited = Code[record["outcome"]] if record else Code.UNKNOWN
    if audited in REFUSALS:
        world.client_races += 1
        return None
    return Outcome(audited, f"the server answered {audited.name} (the client saw INTERNAL)")


async def test_hostile_case_batches_get_well_formed_answers(perf_system: System) -> None:
    world = await _world(perf_system)
    before = await world.events()
    valid = Batch("admin", [m.SerializeToString() for m in STREAMED])
    accepted = await _send_batch(world.channel, valid, world.auth())
    assert accepted.code is Code.OK and judge_batch(valid, accepted) is None, accepted
    world.ok_changes += len(STREAMED)
    world.stored = await world.events()
    serial = itertools.count()

    async def check(batch: Batch) -> None:
        request_id = f"fuzz-batch-{next(serial)}"
        metadata = [*world.auth(batch.caller), ("x-request-id", request_id)]
        outcome = await _send_batch(world.channel, batch, metadata)
        server = await _server_outcome(world, request_id, outcome)
        changes = 0
        if server is not None and server.code is Code.OK and server.response is not None:
            changes = pb.RecordCasesResponse.FromString(server.response).recorded_count
        world.ok_changes += changes
        world.note(await world.account(changes), batch.describe())  # a refusal adds none
        if server is not None:
            world.note(judge_batch(batch, server), batch.describe())

    explicit = [Batch("admin", []), Batch("admin", [b"\x0a\x05ab"]), Batch("agent", [b""])]
    await fuzz(batches(world.dictionary), check, examples=60, explicit=explicit)
    world.check_problems()
    await world.check_unharmed(before)
