"""PerformanceService servicer: proto <-> domain; the rules live in domain.py and metrics.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo

import grpc
from google.rpc import code_pb2
from wfm.performance.v1 import performance_service_pb2 as pb
from wfm.performance.v1 import performance_service_pb2_grpc as pb_grpc

from services.performance import domain, metrics, store, views
from wfm_runtime import pagination
from wfm_runtime.commands import Behaviour, Command, CommandRunner, fingerprint
from wfm_runtime.errors import (
    Aborted,
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    Violations,
)
from wfm_runtime.grpcserver import bind, request_id
from wfm_runtime.timefmt import localized, to_timestamp, utc_now
from wfm_runtime.validation import check_page_size, parse_name

Ctx: TypeAlias = grpc.aio.ServicerContext
MAX_BATCH = 10_000
# A batch is read whole before any case is recorded (so a refused one records nothing); each
# message may be up to 4 MiB, so without this bound one batch could hold 40 GiB in memory.
# 10,000 ordinary cases take about 2.5 MB.
MAX_BATCH_BYTES = 64 * 1024 * 1024
BATCH_CONCURRENCY = 32
# What a batch's answer echoes of each refused case, in UTF-8 bytes: a full batch of refusals
# must still fit the 4 MiB a reply may hold (a valid case id is at most 63 bytes anyway).
MAX_ECHOED_ID_BYTES = 63
MAX_ERROR_MESSAGE_BYTES = 300
_CODES: dict[type[DomainError], int] = {
    InvalidArgument: code_pb2.INVALID_ARGUMENT,
    NotFound: code_pb2.NOT_FOUND,
    Aborted: code_pb2.ABORTED,
    AlreadyExists: code_pb2.ALREADY_EXISTS,
    FailedPrecondition: code_pb2.FAILED_PRECONDITION,
}


@dataclass(frozen=True)
class CaseRequest:
    """The fields RecordCaseRequest and RecordCasesRequest share."""

    case_id: str
    case: pb.Case
    idempotency_key: str
    expected_version: int | None


class PerformanceApi(pb_grpc.PerformanceServiceServicer):
    def __init__(
        self,
        commands: CommandRunner,
        repo: store.Repository,
        directory: views.Directory,
        book: views.DayBook,
    ) -> None:
        self._commands = commands
        self._cases = store.case_behaviour()
        self._repo = repo
        self._directory = directory
        self._book = book

    # --- cases -----------------------------------------------------------------------------
    async def RecordCase(self, request: pb.RecordCaseRequest, context: Ctx) -> pb.Case:
        return await self._record(_case_request(request))

    async def RecordCases(
        self, request_iterator: AsyncIterator[pb.RecordCasesRequest], context: Ctx
    ) -> pb.RecordCasesResponse:
        requests: list[CaseRequest] = []
        size = 0
        async for request in request_iterator:
            if len(requests) == MAX_BATCH:
                raise InvalidArgument(
                    [_violation("requests", f"a batch holds at most {MAX_BATCH} cases")]
                )
            size += request.ByteSize()
            if size > MAX_BATCH_BYTES:
                raise InvalidArgument(
                    [_violation("requests", f"a batch holds at most {MAX_BATCH_BYTES} bytes")]
                )
            requests.append(_case_request(request))
        gate = asyncio.Semaphore(BATCH_CONCURRENCY)

        async def one(item: CaseRequest) -> pb.RecordCaseResult:
            async with gate:
                try:
                    recorded = await self._record(item)
                except DomainError as err:
                    return pb.RecordCaseResult(
                        case_id=_clipped(item.case_id, MAX_ECHOED_ID_BYTES),
                        error_code=_CODES.get(type(err), code_pb2.UNKNOWN),
                        error_message=_clipped(err.message, MAX_ERROR_MESSAGE_BYTES),
                    )
                return pb.RecordCaseResult(case_id=item.case_id, case=recorded)

        results = await asyncio.gather(*(one(r) for r in requests))
        failed = sum(1 for r in results if r.error_code)
        return pb.RecordCasesResponse(
            results=results, recorded_count=len(results) - failed, failed_count=failed
        )

    async def _record(self, request: CaseRequest) -> pb.Case:
        v = Violations()
        agent_id = parse_name(v, request.case.agent, "case.agent", "agents")
        domain.validate_command(request.idempotency_key, request.expected_version, v)
        record = store.case_from_request(v, request.case_id, request.case, agent_id, now=utc_now())
        v.raise_if_any()
        assert record is not None
        bind(case_id=record.case_id)
        await self._known_agent(agent_id)
        outcome = await self._commands.execute(
            self._cases,
            Command(
                store.CASE,
                record.case_id,
                request.idempotency_key,
                fingerprint(record, request.expected_version),
                request.expected_version,
                request_id(),
            ),
            lambda state, version: _encoded_case(
                domain.decide_record_case(state, record), version + 1
            ),
        )
        assert outcome.state is not None
        return store.case_to_proto(replace(outcome.state, version=outcome.version))

    # --- scorecards ------------------------------------------------------------------------
    async def GetScorecard(self, request: pb.GetScorecardRequest, context: Ctx) -> pb.Scorecard:
        v = Violations()
        agent_id = parse_name(v, request.name, "name", "agents", "scorecard")
        period = _period(v, request)
        v.raise_if_any()
        agent = await self._known_agent(agent_id)
        sums = await views.agent_period_sums(self._repo, agent.team_id, agent_id, period, utc_now())
        return _scorecard(agent_id, agent.team_id, period, sums)

    async def ListScorecards(
        self, request: pb.ListScorecardsRequest, context: Ctx
    ) -> pb.ListScorecardsResponse:
        v = Violations()
        team_id = parse_name(v, request.team, "team", "teams")
        period = _period(v, request)
        metric, descending = domain.parse_order_by(v, request.order_by)
        page_size = check_page_size(v, request.page_size)
        v.raise_if_any()
        await self._known_team(team_id)
        filter_key = f"scorecards|{team_id}|{period}|{metric}|{descending}"
        offset = _offset(pagination.decode(request.page_token, filter_key))
        totals = await self._team_totals(team_id, period)
        rows = [(a, metrics.derive(s), s) for a, s in sorted(totals.items())]
        if metric:
            rows = _sorted_by(rows, metric, descending)
        elif descending:  # `agent desc`: accepted by parse_order_by, so honour it
            rows.reverse()
        page = [
            _scorecard(a, team_id, period, sums, figures)
            for a, figures, sums in rows[offset : offset + page_size]
        ]
        more = offset + page_size < len(rows)
        return pb.ListScorecardsResponse(
            scorecards=page,
            next_page_token=pagination.encode(str(offset + page_size), filter_key) if more else "",
        )

    async def GetTeamSummary(
        self, request: pb.GetTeamSummaryRequest, context: Ctx
    ) -> pb.TeamSummary:
        v = Violations()
        team_id = parse_name(v, request.team, "team", "teams")
        period = _period(v, request)
        v.raise_if_any()
        await self._known_team(team_id)
        totals = await self._team_totals(team_id, period)
        pooled = metrics.empty_sums()
        for sums in totals.values():
            metrics.add_sums(pooled, sums)
        return pb.TeamSummary(
            team=f"teams/{team_id}",
            period=_period_proto(period),
            metrics=_metrics(metrics.derive(pooled)),
            agent_count=len(totals),
        )

    async def _team_totals(self, team_id: str, period: domain.Period) -> dict[str, metrics.Sums]:
        totals = await views.team_period_sums(self._repo, team_id, period, utc_now())
        for agent_id in self._directory.members(team_id):
            totals.setdefault(agent_id, metrics.empty_sums())
        return totals

    # --- red flags -------------------------------------------------------------------------
    async def SetRedFlagThresholds(
        self, request: pb.SetRedFlagThresholdsRequest, context: Ctx
    ) -> pb.RedFlagThresholds:
        v = Violations()
        team_id = parse_name(
            v, request.thresholds.name, "thresholds.name", "teams", "redFlagThresholds"
        )
        expected = request.expected_version if request.HasField("expected_version") else None
        domain.validate_command(request.idempotency_key, expected, v)
        wanted = store.thresholds_from_proto(team_id, request.thresholds)
        domain.validate_thresholds(wanted, v)
        v.raise_if_any()
        await self._known_team(team_id)
        current = await views.thresholds_of(self._repo, team_id)
        outcome = await self._commands.execute(
            store_thresholds_behaviour(current),
            Command(
                store.THRESHOLDS,
                team_id,
                request.idempotency_key,
                fingerprint(replace(wanted, version=0), expected),
                expected,
                request_id(),
            ),
            lambda state, version: _encoded_thresholds(
                domain.decide_thresholds(state, wanted), version + 1
            ),
        )
        return store.thresholds_to_proto(replace(outcome.state, version=outcome.version))

    async def GetRedFlagThresholds(
        self, request: pb.GetRedFlagThresholdsRequest, context: Ctx
    ) -> pb.RedFlagThresholds:
        v = Violations()
        team_id = parse_name(v, request.name, "name", "teams", "redFlagThresholds")
        v.raise_if_any()
        await self._known_team(team_id)
        return store.thresholds_to_proto(await views.thresholds_of(self._repo, team_id))

    async def ListRedFlags(
        self, request: pb.ListRedFlagsRequest, context: Ctx
    ) -> pb.ListRedFlagsResponse:
        v = Violations()
        team_id = parse_name(v, request.team, "team", "teams")
        period = _period(v, request)
        v.raise_if_any()
        await self._known_team(team_id)
        thresholds = await views.thresholds_of(self._repo, team_id)
        totals = await self._team_totals(team_id, period)
        flags = [
            flag
            for agent_id, sums in sorted(totals.items())
            for flag in domain.red_flags(agent_id, metrics.derive(sums), thresholds)
        ]
        members = sorted(set(self._directory.members(team_id)) | set(totals))
        expired = await views.expired_certifications(
            self._repo, members, views.period_end(period.end)
        )
        flags = sorted(flags + views.certification_flags(expired), key=lambda f: f.agent_id)
        return pb.ListRedFlagsResponse(
            red_flags=[
                pb.RedFlag(
                    agent=f"agents/{f.agent_id}",
                    metric=f.metric,
                    value=f.value,
                    threshold=f.threshold,
                    bound=f.bound,
                )
                for f in flags
            ]
        )

    # --- explanations ----------------------------------------------------------------------
    async def ExplainMetric(
        self, request: pb.ExplainMetricRequest, context: Ctx
    ) -> pb.ExplainMetricResponse:
        v = Violations()
        agent_id = parse_name(v, request.name, "name", "agents", "scorecard")
        period = _period(v, request)
        metric = domain.check_metric(v, request.metric)
        v.raise_if_any()
        agent = await self._known_agent(agent_id)
        response = pb.ExplainMetricResponse(metric=metric)
        sums = metrics.empty_sums()
        now = utc_now()
        client_zone = await self._directory.client_zone_of(agent.team_id)
        zones = (self._directory.zone_of(agent_id), client_zone)
        for day in metrics.dates(period.start, period.end):
            inputs = await self._book.inputs_for(agent_id, [day], keep=False)
            time_part, tail = metrics.time_part(inputs, day)
            day_sums = metrics.combined_sums(time_part, metrics.work_sums(inputs, day))
            metrics.add_sums(sums, metrics.so_far_sums(day_sums, tail, now))
            await self._explain_day(response, metric, agent_id, inputs, day, now=now, zones=zones)
        value = metrics.derive(sums)[metric]
        if value is not None:
            response.value = value
        bind(team=agent.team_id)
        return response

    async def GetTeamAdherence(
        self, request: pb.GetTeamAdherenceRequest, context: Ctx
    ) -> pb.TeamAdherence:
        v = Violations()
        team_id = parse_name(v, request.name, "name", "teams", "adherence")
        v.raise_if_any()
        await self._known_team(team_id)
        now = utc_now()
        members = self._directory.members(team_id)
        # A night shift that started on the agent's yesterday may still be going.
        days = {a: _local_days_around(now, self._directory.zone_of(a)) for a in members}
        inputs = await self._book.inputs_of_agents(days, kinds=(views.STATUS, views.SCHEDULE))
        client_zone = await self._directory.client_zone_of(team_id)
        rows = [
            _adherence_row(a, metrics.adherence_now(inputs[a], now), inputs[a].zone, client_zone)
            for a in members
        ]
        return pb.TeamAdherence(
            name=request.name,
            as_of_time=to_timestamp(now),
            agents=rows,
            out_of_adherence_count=sum(
                1 for r in rows if r.state == pb.ADHERENCE_STATE_OUT_OF_ADHERENCE
            ),
        )

    async def _explain_day(
        self,
        response: pb.ExplainMetricResponse,
        metric: str,
        agent_id: str,
        inputs: metrics.AgentInputs,
        day: Any,
        *,
        now: datetime,
        zones: tuple[str, str],
    ) -> None:
        """The day's part of the explanation; `zones` are the agent's and the client's."""
        zone, client_zone = zones
        if metric in metrics.STATUS_METRICS:
            day_pieces = metrics.pieces(inputs, day)
            # The schedule's own hours count whole; everything else only up to now.
            for piece in (
                day_pieces if metric == "scheduled_hours" else metrics.trimmed(day_pieces, now)
            ):
                response.segments.append(
                    pb.ExplainedSegment(
                        roster_date=day.isoformat(),
                        start_time=to_timestamp(piece.start),
                        end_time=to_timestamp(piece.end),
                        status=piece.status,
                        scheduled_activity=piece.activity.kind if piece.activity else "",
                        on_approved_leave=piece.on_leave,
                        counted=metrics.counted(metric, piece),
                        start_agent_local=localized(piece.start, zone),
                        end_agent_local=localized(piece.end, zone),
                        start_client_local=localized(piece.start, client_zone),
                        end_client_local=localized(piece.end, client_zone),
                    )
                )
        elif metric in metrics.TRAINING_METRICS:
            for training in metrics.trainings_of_day(inputs, day):
                response.trainings.append(
                    pb.ExplainedTraining(
                        completion_id=training.completion_id,
                        roster_date=day.isoformat(),
                        hours=round(training.minutes / 60, 4),
                        technical=training.technical,
                    )
                )
        else:
            ids = {c.case_id for c in metrics.cases_of_day(inputs, day)}
            for record in await views.case_records(self._book, agent_id, day, ids):
                response.cases.append(store.case_to_proto(record))

    # --- helpers ---------------------------------------------------------------------------
    async def _known_agent(self, agent_id: str) -> views.AgentEntry:
        bind(agent_id=agent_id)
        agent = await self._directory.agent(agent_id)
        if agent is None:
            raise NotFound(
                "agent",
                f"agents/{agent_id}",
                f"agent {agent_id!r} is not in the directory (register it first)",
            )
        return agent

    async def _known_team(self, team_id: str) -> None:
        bind(team=team_id)
        if not await self._directory.has_team(team_id):
            raise NotFound("team", f"teams/{team_id}", f"team {team_id!r} is not in the directory")


def store_thresholds_behaviour(current: domain.Thresholds) -> Behaviour[domain.Thresholds]:
    """The thresholds' write model: the projected view is the hint, the event store the truth."""

    async def load(_team_id: str) -> tuple[domain.Thresholds, int]:
        return current, current.version

    return Behaviour(
        aggregate_type=store.THRESHOLDS,
        initial=domain.Thresholds,
        load=load,
        evolve=lambda _state, envelope: store.decode_thresholds(envelope),
    )


def _case_request(request: pb.RecordCaseRequest | pb.RecordCasesRequest) -> CaseRequest:
    return CaseRequest(
        request.case_id,
        request.case,
        request.idempotency_key,
        request.expected_version if request.HasField("expected_version") else None,
    )


def _encoded_case(change: domain.CaseRecorded | None, version: int) -> Any:
    return store.encode_case(change, version) if change is not None else None


def _encoded_thresholds(change: domain.ThresholdsSet | None, version: int) -> Any:
    return store.encode_thresholds(change, version) if change is not None else None


def _violation(field: str, description: str) -> FieldViolation:
    return FieldViolation(field, description)


def _clipped(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` of UTF-8, at a character boundary."""
    return text.encode()[:max_bytes].decode(errors="ignore")


def _period(v: Violations, request: Any) -> domain.Period:
    return domain.parse_period(v, request.period.start_date, request.period.end_date)


def _period_proto(period: domain.Period) -> pb.Period:
    return pb.Period(start_date=period.start.isoformat(), end_date=period.end.isoformat())


def _offset(key: str) -> int:
    if not key:
        return 0
    if not (key.isascii() and key.isdigit()):  # "²".isdigit() holds, but int() refuses it
        raise InvalidArgument([_violation("page_token", "is not a token from this API")])
    return int(key)


def _metrics(figures: dict[str, float | None]) -> pb.Metrics:
    return pb.Metrics(**{k: v for k, v in figures.items() if v is not None})


def _scorecard(
    agent_id: str,
    team_id: str,
    period: domain.Period,
    sums: metrics.Sums,
    figures: dict[str, float | None] | None = None,
) -> pb.Scorecard:
    return pb.Scorecard(
        name=f"agents/{agent_id}/scorecard",
        agent=f"agents/{agent_id}",
        team=f"teams/{team_id}" if team_id else "",
        period=_period_proto(period),
        metrics=_metrics(figures if figures is not None else metrics.derive(sums)),
        active_days=sums.get("active_days", 0),
    )


Row = tuple[str, dict[str, float | None], metrics.Sums]


def _sorted_by(rows: list[Row], metric: str, descending: bool) -> list[Row]:
    """By the metric (rows without the figure last, whichever the direction), then agent."""
    present = [r for r in rows if r[1][metric] is not None]
    absent = [r for r in rows if r[1][metric] is None]
    present.sort(key=lambda r: float(r[1][metric] or 0.0), reverse=descending)
    return present + absent


def _local_days_around(now: datetime, zone: str) -> list[date]:
    today = now.astimezone(ZoneInfo(zone)).date()
    return [today - timedelta(days=1), today]


def _adherence_row(
    agent_id: str, now: metrics.AdherenceNow, zone: str, client_zone: str
) -> pb.AgentAdherence:
    row = pb.AgentAdherence(
        agent=f"agents/{agent_id}",
        status=now.status,
        state=pb.AdherenceState.Value(f"ADHERENCE_STATE_{now.state}"),
        state_since=to_timestamp(now.state_since),
        state_since_agent_local=localized(now.state_since, zone),
        state_since_client_local=localized(now.state_since, client_zone),
    )
    if now.status_since is not None:
        row.status_since.CopyFrom(to_timestamp(now.status_since))
    if now.scheduled is not None:
        row.scheduled_activity = now.scheduled.kind
        row.scheduled_start_time.CopyFrom(to_timestamp(now.scheduled.start))
        row.scheduled_end_time.CopyFrom(to_timestamp(now.scheduled.end))
        row.scheduled_end_agent_local.CopyFrom(localized(now.scheduled.end, zone))
        row.scheduled_end_client_local.CopyFrom(localized(now.scheduled.end, client_zone))
    return row
