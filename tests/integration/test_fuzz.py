"""Hostile input over gRPC against the real servers, generated with hypothesis.

Every RPC of AvailabilityService, DirectoryService and AuditService (which both services
serve) gets requests generated from its protobuf descriptor (tests/fuzz_strategies.py), raw
payloads (random bytes, truncated and corrupted encodings, sizes at and over the 4 MiB receive
limit) and garbage `authorization` metadata. Every answer must be a well-formed status, never
INTERNAL, UNKNOWN, a hang or a dead server; afterwards both servers must still be healthy and
the event stores may have grown by at most one event per OK answer of a mutating RPC (and not
at all where every request was refused).

How hypothesis runs here: each test is an ordinary async test on the session loop (the one the
in-process servers run on). It seeds the system once, then runs a hypothesis-decorated *sync*
function in a worker thread (`asyncio.to_thread`); each example hands its gRPC call back to the
loop with `run_coroutine_threadsafe(...).result(timeout)`, so the loop keeps serving while
hypothesis generates. This keeps the expensive fixture to one per test, lets a test check the
stores before and after all its examples, and turns a hung call into a failure instead of a
hung test. (pytest-asyncio's own `@given` support runs each example as a separate coroutine,
which needs the function-scoped-fixture health check suppressed and has no place for the
before/after checks.) Examples record problems instead of raising, so a test reports every
distinct problem with samples; shrinking is off. Each run draws a new seed, printed with the
totals and with any failure (WFM_FUZZ_SEED=... draws that run's cases again; WFM_FUZZ_SCALE=10
runs ten times as many examples). The whole module takes under a minute.

Known bugs: each had a strict-xfail test at the end of this file with a minimal request. The
fuzz tests recognise exactly those failures (KNOWN_BUGS), count them in the summary and keep
failing on anything else; when a bug is fixed its xfail test passes, which fails the run until
the xfail mark and the KNOWN_BUGS entry are removed. The four it found are fixed; their tests
stay as regression tests.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf import field_mask_pb2, message_factory, text_format
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from hypothesis import HealthCheck, Phase, example, given, seed, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm
from wfm.audit.v1 import audit_service_pb2 as audit_pb
from wfm.availability.v1 import availability_service_pb2 as pb
from wfm.scheduling.v1 import directory_service_pb2 as dpb

from services.availability.policy import POLICY as AVAILABILITY_POLICY
from services.scheduling.policy import POLICY as SCHEDULING_POLICY
from tests.conftest import System
from tests.fuzz_strategies import NOW_S, messages, variants
from wfm_runtime.auth import Role, issue_token
from wfm_runtime.service import AUDIT_POLICY
from wfm_runtime.testing import TokenMinter, eventually

pytestmark = pytest.mark.integration

Code = grpc.StatusCode
T = TypeVar("T")

CALL_TIMEOUT_S = 5.0  # a healthy call answers in milliseconds; 5 s without an answer is a hang
MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # the servers' grpc.max_receive_message_length
MAX_METADATA_BYTES = 8 * 1024  # grpc core's default (soft) grpc.max_metadata_size
HEADER_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0x7E)  # legal metadata values
SCALE = float(os.environ.get("WFM_FUZZ_SCALE", "1"))
SEED = int(os.environ.get("WFM_FUZZ_SEED") or random.randrange(2**32))

# Answers our interceptor gives to requests it refuses (each with a google.rpc.Status that
# carries an ErrorInfo), plus OK. UNAUTHENTICATED and RESOURCE_EXHAUSTED are left out where the
# caller's token is valid and rate limits are off (isolated_settings), so they would be wrong
# there. DEADLINE_EXCEEDED is never allowed: no request may take 5 s, so it means a hang.
# UNAVAILABLE is not allowed either: the store and the bus stay up throughout.
REFUSALS = frozenset(
    {
        Code.INVALID_ARGUMENT,
        Code.NOT_FOUND,
        Code.ALREADY_EXISTS,
        Code.FAILED_PRECONDITION,
        Code.ABORTED,
        Code.PERMISSION_DENIED,
    }
)
ANSWERS = REFUSALS | {Code.OK}


# --- the RPCs ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """One RPC on one server (AuditService is served by both)."""

    server: str  # "availability" or "scheduling"
    method: MethodDescriptor

    @property
    def path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def label(self) -> str:
        audit = self.method.containing_service.name == "AuditService"
        return f"{self.method.name}@{self.server}" if audit else self.method.name

    @property
    def request_type(self) -> Any:
        return message_factory.GetMessageClass(self.method.input_type)

    @property
    def response_type(self) -> Any:
        return message_factory.GetMessageClass(self.method.output_type)

    @property
    def streaming(self) -> bool:
        return bool(self.method.server_streaming)

    @property
    def mutating(self) -> bool:
        return {**AVAILABILITY_POLICY, **SCHEDULING_POLICY, **AUDIT_POLICY}[self.path].mutating


def _service(module: Any, name: str) -> Any:
    return module.DESCRIPTOR.services_by_name[name]


AUDIT = _service(audit_pb, "AuditService")
TARGETS = [
    *(Target("availability", m) for m in _service(pb, "AvailabilityService").methods),
    *(Target("scheduling", m) for m in _service(dpb, "DirectoryService").methods),
    *(Target(s, AUDIT.methods_by_name["ListAuditRecords"]) for s in ("availability", "scheduling")),
]
BY_LABEL = {t.label: t for t in TARGETS}
MUTATING = {"SetStatus", "CreateTeam", "UpdateTeam", "CreateAgent", "UpdateAgent"}
assert {t.method.name for t in TARGETS if t.mutating} == MUTATING

# A valid request per RPC (an admin gets OK): the templates for field-by-field mutation, and
# what the token tests send (so a token that slipped through would change something).
DAY = Timestamp(seconds=NOW_S - NOW_S % 86_400)
NEXT_DAY = Timestamp(seconds=DAY.seconds + 86_400)
VALID: dict[str, Message] = {
    "SetStatus": pb.SetStatusRequest(
        name="agents/a1/availability",
        status=pb.AGENT_STATUS_BREAK,
        reason_code="COACHING",
        idempotency_key="fuzz-set",
    ),
    "GetAvailability": pb.GetAvailabilityRequest(name="agents/a1/availability"),
    "ListAvailability": pb.ListAvailabilityRequest(
        page_size=10, team="teams/night", status=pb.AGENT_STATUS_AVAILABLE
    ),
    "WatchAvailability": pb.WatchAvailabilityRequest(team="teams/night"),
    "GetStatusHistory": pb.GetStatusHistoryRequest(
        name="agents/a1/availability", start_time=DAY, end_time=NEXT_DAY
    ),
    "CreateTeam": dpb.CreateTeamRequest(
        team_id="fuzz-team",
        team=dpb.Team(display_name="Fuzz", client_time_zone="Europe/London", client="acme"),
        idempotency_key="fuzz-team",
    ),
    "GetTeam": dpb.GetTeamRequest(name="teams/night"),
    "UpdateTeam": dpb.UpdateTeamRequest(
        team=dpb.Team(
            name="teams/night",
            min_rest_minutes=600,
            operating_hours=[
                dpb.OperatingWindow(iso_weekday=1, open_local_time="18:30", length_minutes=540)
            ],
        ),
        update_mask=field_mask_pb2.FieldMask(paths=["min_rest_minutes", "operating_hours"]),
        idempotency_key="fuzz-team-update",
    ),
    "ListTeams": dpb.ListTeamsRequest(page_size=1),
    "CreateAgent": dpb.CreateAgentRequest(
        agent_id="F1",
        agent=dpb.Agent(
            display_name="Fuzz",
            team="teams/night",
            site="pune",
            time_zone="Asia/Kolkata",
            contract_type=dpb.CONTRACT_TYPE_PART_TIME,
            weekly_minutes=1200,
        ),
        idempotency_key="fuzz-agent",
    ),
    "UpdateAgent": dpb.UpdateAgentRequest(
        agent=dpb.Agent(name="agents/a2", site="uk-wfh", weekly_minutes=1800),
        update_mask=field_mask_pb2.FieldMask(paths=["site", "weekly_minutes"]),
        idempotency_key="fuzz-update",
    ),
    "GetAgent": dpb.GetAgentRequest(name="agents/a1"),
    "ListAgents": dpb.ListAgentsRequest(page_size=1, team="teams/night"),
    "ListAuditRecords@availability": audit_pb.ListAuditRecordsRequest(
        subject="admin-1", target="agents/a1", page_size=5
    ),
    "ListAuditRecords@scheduling": audit_pb.ListAuditRecordsRequest(
        start_time=DAY, end_time=NEXT_DAY
    ),
}
assert set(VALID) == set(BY_LABEL)


# --- cases, answers and what is wrong with them --------------------------------------------
@dataclass
class Case:
    """One request as sent."""

    kind: str  # which test: generated, raw, token, claims, watch
    target: Target
    payload: bytes
    metadata: Sequence[tuple[str, Any]]

    @cached_property
    def request(self) -> Message | None:
        try:
            message: Message = self.target.request_type.FromString(self.payload)
        except DecodeError:
            return None
        return message

    def token(self) -> str:
        header = str(dict(self.metadata).get("authorization", ""))
        return header.partition(" ")[2].strip()

    def describe(self) -> str:
        if self.request is not None:
            sent = text_format.MessageToString(self.request, as_one_line=True) or "{}"
        else:
            sent = f"undecodable {self.payload[:60]!r} ({len(self.payload)} bytes)"
        if len(self.payload) > 2_000:
            sent = f"{len(self.payload)} bytes: {sent}"
        meta = [(k, v if len(v) <= 120 else f"{v[:100]!r}…({len(v)})") for k, v in self.metadata]
        return _shorten(f"{self.target.label} {{{sent}}} metadata={meta}")


_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


def _shorten(text: str) -> str:
    """Long quoted strings cut to their start and length."""
    return _QUOTED.sub(
        lambda m: m[0] if len(m[0]) <= 80 else f'{m[0][:60]}…"({len(m[0])} chars)', text
    )


@dataclass(frozen=True)
class Outcome:
    code: grpc.StatusCode
    details: str = ""
    status: status_pb2.Status | None = None
    response: bytes | None = None  # OK: the (first) response message, still encoded
    malformed_status: bool = False  # grpc-status-details-bin did not match the call


async def invoke(channel: grpc.aio.Channel, case: Case) -> Outcome:
    """Sends the payload as is (no serializer) and reads the answer, or the first message."""
    target, metadata = case.target, tuple(case.metadata)
    try:
        if target.streaming:
            stream = channel.unary_stream(target.path)(
                case.payload, metadata=metadata, timeout=CALL_TIMEOUT_S
            )
            try:
                first = await asyncio.wait_for(stream.read(), CALL_TIMEOUT_S + 1)
                if first is grpc.aio.EOF:
                    return Outcome(await stream.code(), await stream.details() or "")
                return Outcome(Code.OK, response=first)
            finally:
                stream.cancel()
        call = channel.unary_unary(target.path)(
            case.payload, metadata=metadata, timeout=CALL_TIMEOUT_S
        )
        return Outcome(Code.OK, response=await asyncio.wait_for(call, CALL_TIMEOUT_S + 1))
    except grpc.aio.AioRpcError as err:
        return refusal_outcome(err)
    except TimeoutError:
        return NO_ANSWER


NO_ANSWER = Outcome(Code.DEADLINE_EXCEEDED, "no answer at all (client-side timeout)")


def refusal_outcome(err: grpc.aio.AioRpcError) -> Outcome:
    """A refused call as the judges read it: its code, message and google.rpc.Status."""
    try:
        status = rpc_status.from_call(err)
    except ValueError:
        return Outcome(err.code(), err.details() or "", malformed_status=True)
    return Outcome(err.code(), err.details() or "", status)


def error_infos(status: status_pb2.Status | None) -> list[error_details_pb2.ErrorInfo]:
    infos = []
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            infos.append(info)
    return infos


def judge(
    case: Case, outcome: Outcome, allowed: frozenset[grpc.StatusCode] = ANSWERS
) -> str | None:
    """What is wrong with the answer, or None when it is well-formed and allowed."""
    if outcome.code not in allowed:
        if outcome.code is Code.DEADLINE_EXCEEDED:
            return f"hang: no answer within {CALL_TIMEOUT_S}s"
        return f"{outcome.code.name}: {outcome.details[:160]}"
    if outcome.code is Code.OK:
        if outcome.response is None:
            return "OK stream ended before its first message"
        try:
            case.target.response_type.FromString(outcome.response)
        except DecodeError:
            return "OK with an undecodable response"
        return None
    if outcome.malformed_status:
        return f"{outcome.code.name} whose google.rpc.Status does not match the call"
    infos = error_infos(outcome.status)
    if len(infos) != 1 or not infos[0].reason or not infos[0].domain.endswith(".wfm"):
        return f"{outcome.code.name} without one ErrorInfo of a *.wfm domain"
    return None


# grpc-python decodes the request with the handler's request_deserializer (the message's
# FromString) before any of our code runs; when that raises DecodeError, grpc's aio server
# answers UNKNOWN "Unexpected <class 'google.protobuf.message.DecodeError'>: ..." by itself
# (cygrpc's _handle_exceptions). That, exactly, is allowed, and only for payloads that do not
# decode here either. Likewise grpc answers RESOURCE_EXHAUSTED "Received message larger than
# max" for a payload over the servers' 4 MiB limit, before any handler runs.
GRPC_DECODE_ERROR = "Unexpected <class 'google.protobuf.message.DecodeError'>"


def judge_payload(case: Case, outcome: Outcome) -> str | None:
    """`judge`, plus what grpc itself answers for payloads that are too big or undecodable."""
    if len(case.payload) > MAX_MESSAGE_BYTES:
        if outcome.code is Code.RESOURCE_EXHAUSTED and "larger than max" in outcome.details:
            return None
        return f"{outcome.code.name} for {len(case.payload)} bytes: {outcome.details[:120]}"
    if case.request is None:
        if outcome.code is Code.UNKNOWN and outcome.details.startswith(GRPC_DECODE_ERROR):
            return None
        return f"{outcome.code.name} for an undecodable payload: {outcome.details[:120]}"
    return judge(case, outcome)


# --- known bugs ---------------------------------------------------------------------------
# Bugs this suite found and that were fixed (each keeps a regression test at the end of the
# file): a forged RS256 header and an `exp` beyond float range gave INTERNAL; huge request
# values echoed into errors overflowed the status trailers; audit kept unbounded target names.
KNOWN_BUGS: dict[str, Callable[[Case, Outcome], bool]] = {}


# --- tallies -------------------------------------------------------------------------------
CASES: Counter[str] = Counter()  # "kind RPC" -> fuzz cases sent
KNOWN_HITS: Counter[str] = Counter()  # known bug -> cases that hit it


@pytest.fixture(scope="module", autouse=True)
def _report_totals(request: pytest.FixtureRequest) -> Iterator[None]:
    """Prints the cases per RPC and kind after the module's tests (also without -s)."""
    yield
    if not CASES:
        return
    kinds = sorted({k.split(" ")[0] for k in CASES})
    lines = [f"fuzz cases per RPC (hypothesis seed {SEED}, scale {SCALE}):"]
    lines.append(f"{'RPC':30}" + "".join(f"{k:>10}" for k in kinds) + f"{'all':>8}")
    for target in TARGETS:
        counts = [CASES[f"{k} {target.label}"] for k in kinds]
        lines.append(
            f"{target.label:30}" + "".join(f"{c:>10}" for c in counts) + f"{sum(counts):>8}"
        )
    totals = [sum(v for key, v in CASES.items() if key.startswith(f"{k} ")) for k in kinds]
    lines.append(f"{'total':30}" + "".join(f"{c:>10}" for c in totals) + f"{sum(totals):>8}")
    lines += [f"known bug hit {n}x: {bug}" for bug, n in KNOWN_HITS.items()]
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None:
        with capture.global_and_fixture_disabled() if capture else nullcontext():
            reporter.write_line("")
            for line in lines:
                reporter.write_line(line)


# --- the rig: a seeded system, channels and callers ----------------------------------------
_REQUEST_ID = re.compile(r"\(request id .*\)$")


@dataclass
class Rig:
    system: System
    channels: dict[str, grpc.aio.Channel]
    tokens: dict[str, str]  # caller -> a valid token
    dictionary: list[str]
    problems: dict[str, list[str]] = field(default_factory=dict)  # problem -> samples
    ok_mutations: Counter[str] = field(default_factory=Counter)  # server -> OK changes

    @classmethod
    async def create(cls, system: System) -> Rig:
        """Two teams, two agents, a status; bounded, so a hang fails instead of stalling."""
        return await asyncio.wait_for(cls._create(system), 30)

    @classmethod
    async def _create(cls, system: System) -> Rig:
        await system.add_team("night")
        await system.add_team("day", zone="Europe/London")
        await system.add_agent("a1", "night")
        await system.add_agent("a2", "day", zone="America/New_York")
        await system.known_to_availability("a1")
        await system.known_to_availability("a2")
        await system.avail.SetStatus(
            pb.SetStatusRequest(
                name="agents/a1/availability",
                status=pb.AGENT_STATUS_AVAILABLE,
                idempotency_key="seed-1",
            )
        )
        # Real page tokens, so mutated tokens start from something the API issued.
        page_tokens = [
            (await system.directory.ListTeams(dpb.ListTeamsRequest(page_size=1))).next_page_token,
            (await system.directory.ListAgents(dpb.ListAgentsRequest(page_size=1))).next_page_token,
        ]
        minter = system.minter
        tokens = {
            "admin": minter.token("admin-1", "admin"),
            "agent": minter.token("a1", "agent"),
            "team_leader": minter.token("tl-1", "team_leader", teams=("night",)),
            "scheduler": minter.token("s-1", "scheduler"),
            "hr": minter.token("hr-1", "hr"),
            "trainer": minter.token("tr-1", "trainer"),
            "no role": minter.token("nobody"),
        }
        channels = {
            "availability": grpc.aio.insecure_channel(f"127.0.0.1:{system.availability.port}"),
            "scheduling": grpc.aio.insecure_channel(f"127.0.0.1:{system.scheduling.port}"),
        }
        system.channels.extend(channels.values())
        return cls(system, channels, tokens, domain_words(page_tokens))

    def auth(self, caller: str = "admin") -> list[tuple[str, Any]]:
        return [("authorization", f"Bearer {self.tokens[caller]}")]

    async def send(
        self, case: Case, judged: Callable[[Case, Outcome], str | None] = judge
    ) -> Outcome:
        """Sends the case, tallies it, and records what is wrong with the answer."""
        outcome = await invoke(self.channels[case.target.server], case)
        CASES[f"{case.kind} {case.target.label}"] += 1
        if outcome.code is Code.OK and case.target.mutating:
            self.ok_mutations[case.target.server] += 1
        problem = judged(case, outcome)
        if problem is None:
            return outcome
        bug = next((name for name, hit in KNOWN_BUGS.items() if hit(case, outcome)), None)
        if bug is not None:
            KNOWN_HITS[bug] += 1
            return outcome
        key = f"{case.kind} {case.target.label}: {_REQUEST_ID.sub('(request id …)', problem)}"
        samples = self.problems.setdefault(key, [])
        if len(samples) < 3:
            samples.append(case.describe())
        return outcome

    def check_problems(self) -> None:
        if self.problems:
            report = "\n".join(
                f"{problem}\n    e.g. " + "\n    e.g. ".join(samples)
                for problem, samples in self.problems.items()
            )
            pytest.fail(f"hypothesis seed {SEED}:\n{report}", pytrace=False)

    async def event_counts(self) -> dict[str, int]:
        return {
            s: await stored_events(getattr(self.system, s)) for s in ("availability", "scheduling")
        }

    async def harm(self, before: dict[str, int]) -> list[str]:
        """What the fuzzing broke: unexplained events, dead servers, a stuck audit log."""
        found = []
        after = await self.event_counts()
        for server, count in after.items():
            grown, allowed = count - before[server], self.ok_mutations[server]
            if not 0 <= grown <= allowed:
                found.append(f"{server} events grew by {grown} with {allowed} OK changes")
        for server, channel in self.channels.items():
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT_S)
            if reply.status != health_pb2.HealthCheckResponse.SERVING:
                found.append(f"{server} health is {reply.status}")
        for service in (self.system.availability, self.system.scheduling):
            try:  # a record the store refuses would block every later audit record
                await service.runtime.audit.flush()
            except Exception as exc:
                found.append(f"audit log of {service.runtime.settings.service} stuck: {exc!r}")
        normal = await self.system.avail.SetStatus(
            pb.SetStatusRequest(
                name="agents/a1/availability",
                status=pb.AGENT_STATUS_MEETING,
                idempotency_key=f"after-fuzz-{time.monotonic_ns()}",
            ),
            timeout=CALL_TIMEOUT_S,
        )
        if normal.status != pb.AGENT_STATUS_MEETING:
            found.append(f"a normal SetStatus answered {normal}")
        return found


async def stored_events(service: Any) -> int:
    """The documents of a service's event store: its events and the keys spent by requests
    that changed nothing (`noop/...`). A refused request may add neither."""
    return int(await service.runtime.db["events"].count_documents({}))


def domain_words(page_tokens: Sequence[str]) -> list[str]:
    """Values the APIs know, for strings that get past validation (see fuzz_strategies)."""
    ids = ["a1", "a2", "ghost", "night", "day", "admin-1", "tl-1", "F1", "fuzz-team"]
    names = [f"agents/{i}/availability" for i in ids[:3]]
    names += [f"agents/{i}" for i in ids[:3]] + [f"teams/{i}" for i in ("night", "day", "ghost")]
    names += ["agents/", "teams/", "agents//availability", "teams/night/x"]
    zones = ["Asia/Kolkata", "America/New_York", "Europe/London", "UTC", "Etc/GMT+14"]
    zones += ["localtime", "Factory", "posixrules", "posix/Asia/Kolkata", "right/UTC"]
    zones += ["../../../../etc/passwd", "/usr/share/zoneinfo/UTC", "asia/kolkata"]
    other = ["COACHING", "SYSTEM_ISSUE", "AVAILABLE", "k-1", "fuzz-key", "seed-1", "pune"]
    other += ["uk-wfh", "acme", "Ravi", "CONTRACT_TYPE_FULL_TIME", "$gt", "{'$ne': 1}", "*"]
    fields = [*dpb.Agent.DESCRIPTOR.fields_by_name, "agent.site", "team_id", "agent"]
    methods = [t.path for t in TARGETS]
    return [*ids, *names, *zones, *other, *fields, *methods, *(t for t in page_tokens if t)]


# --- running hypothesis --------------------------------------------------------------------
async def fuzz(
    strategy: st.SearchStrategy[T],
    check: Callable[[T], Coroutine[Any, Any, Any]],
    *,
    examples: int,
    explicit: Sequence[T] = (),
) -> None:
    """Runs `check` on the `explicit` values, then on `examples` generated ones.

    See the module docstring: hypothesis in a worker thread, the calls on this loop.
    """
    loop = asyncio.get_running_loop()

    @seed(SEED)
    @settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        database=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )
    @given(strategy)
    def run(value: T) -> None:
        future = asyncio.run_coroutine_threadsafe(check(value), loop)
        try:
            future.result(timeout=4 * CALL_TIMEOUT_S)
        except TimeoutError:
            future.cancel()
            raise AssertionError("a check did not finish: the client itself hung") from None

    for value in reversed(explicit):
        run = example(value)(run)
    await asyncio.to_thread(run)


# --- 1. generated requests, every RPC ------------------------------------------------------
CALLERS = ["admin"] * 4 + ["agent", "team_leader", "scheduler", "hr", "trainer", "no role"]


@pytest.mark.parametrize("label", list(BY_LABEL))
async def test_generated_requests_get_well_formed_answers(system: System, label: str) -> None:
    target = BY_LABEL[label]
    rig = await Rig.create(system)
    before = await rig.event_counts()
    # The template is valid, so its variants reach past validation.
    valid = await rig.send(Case("generated", target, VALID[label].SerializeToString(), rig.auth()))
    assert valid.code is Code.OK, (label, valid)
    requests = st.one_of(
        messages(target.method.input_type, rig.dictionary),
        variants(VALID[label], rig.dictionary),
    )
    request_ids = st.one_of(st.none(), st.text(HEADER_CHARS, max_size=200))

    async def check(drawn: tuple[str, Message, str | None]) -> None:
        caller, request, request_id = drawn
        metadata = rig.auth(caller) + ([("x-request-id", request_id)] if request_id else [])
        case = Case("generated", target, request.SerializeToString(), metadata)
        await rig.send(case, judge_payload)  # a rare draw goes over 4 MiB

    await fuzz(st.tuples(st.sampled_from(CALLERS), requests, request_ids), check, examples=100)
    harm = await rig.harm(before)
    rig.check_problems()
    assert not harm, harm


# --- 2. raw payloads -----------------------------------------------------------------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def sized(total: int) -> bytes:
    """Field 1, length-delimited, padded so the whole payload is exactly `total` bytes."""
    for header in range(2, 12):
        body = total - header
        if len(b"\x0a" + _varint(body)) == header:
            return b"\x0a" + _varint(body) + b"A" * body
    raise AssertionError(total)


NASTY_PAYLOADS = [
    b"",
    b"\x0a",  # a tag without its length
    b"\x0a\x05ab",  # a length past the end
    b"\x0a\xff\xff\xff\xff\x0f",  # a 4 GiB length
    b"\x08" + b"\xff" * 10 + b"\x01",  # a varint of 11 bytes
    b"\x0a\x02\xff\xfe",  # a string that is not UTF-8
    b"\x0b" * 5_000 + b"\x0c" * 5_000,  # groups nested 5000 deep
    b"\x12" + _varint(20_000) + b"\x12\x80\x01" * 6_666 + b"\x12",  # nested lengths
    b"\xfa\xff\xff\xff\x0f\x00",  # field number 2^29 - 1
    b"\x00",  # field number 0
    b"\x0f",  # wire type 7
    bytes(range(256)),
]


def corrupt(encoded: bytes, where: int, byte: int) -> bytes:
    if not encoded:
        return bytes([byte])
    where %= len(encoded)
    return encoded[:where] + bytes([byte]) + encoded[where + 1 :]


def payloads(label: str, dictionary: Sequence[str]) -> st.SearchStrategy[bytes]:
    target = BY_LABEL[label]
    encoded = st.one_of(
        messages(target.method.input_type, dictionary), variants(VALID[label], dictionary)
    ).map(lambda m: m.SerializeToString())
    return st.one_of(
        st.binary(max_size=512),
        st.builds(lambda e, n: e[: n % (len(e) + 1)], encoded, st.integers(0, 2**20)),  # cut
        st.builds(corrupt, encoded, st.integers(0, 2**20), st.integers(0, 255)),
        st.builds(lambda e, tail: e + tail, encoded, st.binary(min_size=1, max_size=32)),
        st.sampled_from(NASTY_PAYLOADS),
    )


async def test_raw_payloads_get_well_formed_answers(system: System) -> None:
    rig = await Rig.create(system)
    before = await rig.event_counts()

    async def check(drawn: tuple[str, bytes]) -> None:
        label, payload = drawn
        await rig.send(Case("raw", BY_LABEL[label], payload, rig.auth()), judge_payload)

    per_rpc = {
        label: st.tuples(st.just(label), payloads(label, rig.dictionary)) for label in BY_LABEL
    }
    by_rpc = st.sampled_from(list(BY_LABEL)).flatmap(per_rpc.__getitem__)
    explicit = [(label, p) for label in BY_LABEL for p in NASTY_PAYLOADS]
    await fuzz(by_rpc, check, examples=300, explicit=explicit)
    # At the limit the transport takes it (and our handlers answer); one byte over, grpc
    # refuses it. Once per RPC, outside hypothesis (which does not draw 4 MiB values).
    for label in BY_LABEL:
        for size in (MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES + 1):
            await check((label, sized(size)))
    harm = await rig.harm(before)
    rig.check_problems()
    assert not harm, harm


# --- 3. tokens -----------------------------------------------------------------------------
def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def jws(header: Any, claims: Any, sign: Callable[[bytes], bytes] | None = None) -> str:
    """A compact JWS of any JSON header and claims (NaN and huge numbers included)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{b64(signature)}"


def good_claims(subject: str = "admin-1", **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": subject, "roles": ["admin"], "iss": "wfm", "aud": "wfm", "iat": now}
    return {**claims, "exp": now + 3600, **changes}


def signed_by(minter: TokenMinter) -> Callable[[bytes], bytes]:
    """ES256 with the minter's (trusted) key, for claims that PyJWT would not encode."""
    key = minter._key  # private to tests: the key the servers trust
    return lambda data: ECAlgorithm(ECAlgorithm.SHA256).sign(data, key)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
ALGORITHMS = ["ES256", "RS256", "HS256", "none", "PS256", "EdDSA", "ES256K", ""]
B64_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def bad_authorizations(minter: TokenMinter, foreign: TokenMinter) -> Any:
    """Metadata without a usable bearer token, as lists of (key, value) pairs."""
    good = minter.token("admin-1", "admin")
    pem = minter.public_key_file.read_bytes()
    now = time.time()

    def header(value: str) -> list[tuple[str, Any]]:
        return [("authorization", value)]

    def flip(at: int, char: str) -> str:
        at %= len(good) - 1  # not the last character: its low bits are padding, ignored
        if good[at] == char:
            char = "B" if char == "A" else "A"
        return good[:at] + char + good[at + 1 :]

    fixed = [
        minter.token("admin-1", "admin", ttl_s=-100),  # expired, past the 30 s leeway
        minter.token("admin-1", "admin", now=now - 7200),  # expired an hour ago
        minter.token("admin-1", "admin", now=now + 3600),  # issued in the future
        foreign.token("admin-1", "admin"),  # signed by a key the servers do not trust
        issue_token(minter._key, "ES256", "admin-1", ["admin"], issuer="evil"),
        issue_token(minter._key, "ES256", "admin-1", ["admin"], audience="evil"),
        jws({"alg": "none", "typ": "JWT"}, good_claims()),
        jws({"alg": "ES256", "typ": "JWT"}, good_claims()),  # no signature
        # algorithm confusion: HS256 keyed with the public key the servers trust
        jws({"alg": "HS256"}, good_claims(), lambda d: hmac.new(pem, d, hashlib.sha256).digest()),
        good + good,
        good.replace(".", ".."),
        ".".join(good.split(".")[::-1]),
    ]
    random_jwts = st.builds(
        lambda alg, kid, claims, signature: jws(
            {"alg": alg, **({"kid": kid} if kid is not None else {})}, claims, lambda _: signature
        ),
        st.one_of(st.sampled_from(ALGORITHMS), json_values),
        st.one_of(st.none(), json_values),
        st.one_of(st.builds(good_claims), json_values),
        st.binary(max_size=80),
    )
    schemes = st.sampled_from(["Basic", "Token", "JWT", "Bearer:", "Bearer=", "Beare", "Bearerx"])
    values = st.one_of(
        st.sampled_from(fixed),
        st.builds(lambda n: good[:n], st.integers(0, len(good) - 1)),  # truncated
        st.builds(flip, st.integers(0, 10**6), st.sampled_from(B64_CHARS + ".=!~")),
        random_jwts,
        st.text(HEADER_CHARS, max_size=300),
    )
    return st.one_of(
        st.just([]),  # no authorization at all
        values.map(lambda v: header(f"Bearer {v}")),
        st.builds(lambda s, v: header(f"{s} {v}"), schemes, st.sampled_from([good, *fixed])),
        st.builds(lambda v: header(f"Bearer{v}"), st.sampled_from([good, ""])),  # no space
        st.text(HEADER_CHARS, max_size=300).map(header),
        st.builds(lambda n: header("Bearer " + "A" * n), st.integers(1_000, 20_000)),
        st.binary(max_size=64).map(lambda b: [("authorization-bin", b)]),
        st.just([("x-authorization", f"Bearer {good}"), ("authorisation", f"Bearer {good}")]),
    )


def judge_unauthenticated(case: Case, outcome: Outcome) -> str | None:
    size = sum(len(k) + len(v) for k, v in case.metadata)  # plus ~1 KiB of grpc's own headers
    if size > MAX_METADATA_BYTES - 1024 and outcome.code is Code.RESOURCE_EXHAUSTED:
        return None  # grpc core's own metadata limit, before any of our code
    return judge(case, outcome, frozenset({Code.UNAUTHENTICATED}))


async def test_bad_tokens_are_unauthenticated_and_change_nothing(
    system: System, tmp_path: Path
) -> None:
    rig = await Rig.create(system)
    metadata = bad_authorizations(system.minter, TokenMinter(tmp_path / "foreign.pub.pem"))
    before = await rig.event_counts()

    async def check(drawn: tuple[str, list[tuple[str, Any]]]) -> None:
        label, sent = drawn
        case = Case("token", BY_LABEL[label], VALID[label].SerializeToString(), sent)
        await rig.send(case, judge_unauthenticated)

    await fuzz(st.tuples(st.sampled_from(list(BY_LABEL)), metadata), check, examples=300)
    # Every request above was refused, so not one event may have been recorded...
    assert rig.ok_mutations == Counter()
    assert await rig.event_counts() == before
    # ...although with a valid token the same requests are answered.
    for label, request in VALID.items():
        if label.split("@")[0] not in MUTATING:
            case = Case("control", BY_LABEL[label], request.SerializeToString(), rig.auth())
            outcome = await invoke(rig.channels[case.target.server], case)
            assert outcome.code is Code.OK, (label, outcome)
    harm = await rig.harm(before)
    rig.check_problems()
    assert not harm, harm


def hostile_claims() -> st.SearchStrategy[Any]:
    times = st.one_of(
        st.integers(NOW_S - 7200, NOW_S + 7200),
        st.integers(-(2**80), 2**80),
        st.sampled_from([10**400, -(10**400), 2**63, 2**64, 1e308, -1e308, 0]),
        st.floats(),
        json_values,
    )
    roles = st.one_of(
        st.lists(st.sampled_from([r.value for r in Role]) | st.text(max_size=12), max_size=6),
        json_values,
    )
    return st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "sub": st.one_of(st.sampled_from(["admin-1", "a1", ""]), json_values),
                "roles": roles,
                "teams": st.one_of(st.lists(st.text(max_size=12), max_size=4), json_values),
                "iss": st.one_of(st.just("wfm"), json_values),
                "aud": st.one_of(st.sampled_from(["wfm", ["wfm"], ["x", "wfm"]]), json_values),
                "iat": times,
                "exp": times,
                "nbf": times,
                "jti": json_values,
            },
        ),
        st.builds(
            lambda extra: {**good_claims(), **extra},
            st.dictionaries(
                st.sampled_from(["sub", "roles", "teams", "iat", "exp", "nbf"]),
                st.one_of(times, json_values),
                max_size=2,
            ),
        ),
        json_values,
    )


async def test_signed_tokens_with_hostile_claims_are_refused_cleanly(system: System) -> None:
    """Tokens signed with the trusted key, with claims of any shape: no INTERNAL either."""
    rig = await Rig.create(system)
    sign = signed_by(system.minter)
    readers = [label for label in BY_LABEL if label.split("@")[0] not in MUTATING]
    before = await rig.event_counts()

    async def check(drawn: tuple[str, Any]) -> None:
        label, claims = drawn
        token = jws({"alg": "ES256", "typ": "JWT"}, claims, sign)
        metadata = [("authorization", f"Bearer {token}")]
        case = Case("claims", BY_LABEL[label], VALID[label].SerializeToString(), metadata)
        await rig.send(case, lambda c, o: judge(c, o, ANSWERS | {Code.UNAUTHENTICATED}))

    await fuzz(st.tuples(st.sampled_from(readers), hostile_claims()), check, examples=120)
    harm = await rig.harm(before)
    rig.check_problems()
    assert not harm, harm


# --- 4. streams left behind ----------------------------------------------------------------
async def test_cancelled_watches_leave_no_subscriptions(system: System) -> None:
    """Fuzzed Watches, each read once and cancelled: none may stay subscribed to the bus."""
    rig = await Rig.create(system)
    bus = system.availability.runtime.bus

    async def subscriptions() -> int:
        return len(bus.nc._subs)  # nats-py keeps no public count

    baseline = await subscriptions()
    target = BY_LABEL["WatchAvailability"]

    async def check(request: Message) -> None:
        await rig.send(Case("watch", target, request.SerializeToString(), rig.auth()))

    await fuzz(variants(VALID["WatchAvailability"], rig.dictionary), check, examples=40)
    await eventually(subscriptions, lambda n: n <= baseline, timeout=5)
    rig.check_problems()


# --- regression tests for the bugs this suite found (all fixed) ----------------------------
async def answer(rig: Rig, label: str, request: Message, metadata: Any = None) -> Outcome:
    case = Case("bug", BY_LABEL[label], request.SerializeToString(), metadata or rig.auth())
    return await invoke(rig.channels[case.target.server], case)


async def test_known_bug_rs256_header_is_internal(system: System) -> None:
    rig = await Rig.create(system)
    token = jws({"alg": "RS256", "typ": "JWT"}, good_claims())
    outcome = await answer(
        rig, "GetAgent", VALID["GetAgent"], [("authorization", f"Bearer {token}")]
    )
    assert outcome.code is Code.UNAUTHENTICATED, outcome


async def test_known_bug_exp_beyond_float_range(system: System) -> None:
    rig = await Rig.create(system)
    token = jws({"alg": "ES256", "typ": "JWT"}, good_claims(exp=10**400), signed_by(system.minter))
    outcome = await answer(
        rig, "GetAgent", VALID["GetAgent"], [("authorization", f"Bearer {token}")]
    )
    assert outcome.code in {Code.OK, Code.UNAUTHENTICATED}, outcome


async def test_known_bug_huge_values_echoed_into_errors(system: System) -> None:
    rig = await Rig.create(system)
    team = dpb.CreateTeamRequest.FromString(VALID["CreateTeam"].SerializeToString())
    team.team_id = "x" * 10_000  # "team_leader may not call CreateTeam for teams/xxx…"
    update = dpb.UpdateAgentRequest.FromString(VALID["UpdateAgent"].SerializeToString())
    update.update_mask.paths.append("x" * 10_000)  # "'xxx…' cannot be changed"
    codes = [
        (await answer(rig, "CreateTeam", team, rig.auth("team_leader"))).code,
        (await answer(rig, "UpdateAgent", update)).code,
    ]
    assert codes == [Code.PERMISSION_DENIED, Code.INVALID_ARGUMENT], codes


async def test_known_bug_audit_keeps_unbounded_targets(system: System) -> None:
    rig = await Rig.create(system)
    for n in range(2):
        huge = dpb.CreateTeamRequest(team_id=f"{n}" * 2_500_000, idempotency_key=f"k-{n}")
        refused = await answer(rig, "CreateTeam", huge, [("authorization", "Bearer nonsense")])
        assert refused.code is Code.UNAUTHENTICATED
    audit = system.scheduling.runtime.views_db["audit"]
    await eventually(
        lambda: audit.count_documents({"outcome": "UNAUTHENTICATED"}), lambda n: n >= 2
    )
    listed = await answer(rig, "ListAuditRecords@scheduling", audit_pb.ListAuditRecordsRequest())
    assert listed.code is Code.OK, listed
