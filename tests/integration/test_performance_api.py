"""PerformanceService over gRPC against the real servers: cases, scorecards, flags, bad input."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, status_pb2
from wfm.availability.v1 import availability_service_pb2 as apb
from wfm.performance.v1 import performance_service_pb2 as pb

from services.performance import metrics
from tests.conftest import System
from wfm_runtime.testing import eventually, unpack_details
from wfm_runtime.timefmt import to_timestamp, utc_now

pytestmark = pytest.mark.integration

PUNE = ZoneInfo("Asia/Kolkata")


def _seconds(value: float) -> Duration:
    duration = Duration()
    duration.FromMilliseconds(int(value * 1000))
    return duration


def _case(
    agent: str,
    resolved: datetime,
    *,
    handle_s: int = 300,
    sla_met: bool = True,
    fcr: bool = True,
    csat: int | None = None,
) -> pb.Case:
    case = pb.Case(
        agent=f"agents/{agent}",
        channel=pb.CHANNEL_PHONE,
        open_time=to_timestamp(resolved - timedelta(minutes=20)),
        resolve_time=to_timestamp(resolved),
        talk_duration=_seconds(handle_s - 60),
        hold_duration=_seconds(20),
        after_contact_duration=_seconds(40),
        first_contact_resolution=fcr,
        sla_target=_seconds(3600),
        sla_met=sla_met,
    )
    if csat is not None:
        case.csat_score = csat
    return case


def _record(case_id: str, case: pb.Case, key: str = "") -> pb.RecordCaseRequest:
    return pb.RecordCaseRequest(case_id=case_id, case=case, idempotency_key=key or f"k-{case_id}")


def _today_period() -> tuple[pb.Period, datetime]:
    """A period around the local date (Pune) of an instant two hours ago."""
    resolved = utc_now() - timedelta(hours=2)
    day = resolved.astimezone(PUNE).date()
    period = pb.Period(start_date=(day - timedelta(days=1)).isoformat(), end_date=day.isoformat())
    return period, resolved


async def _limits(perf: Any, team: str, **limits: Any) -> None:
    """The team's red-flag thresholds, set and in the view (the watch reads them there)."""
    await perf.SetRedFlagThresholds(
        pb.SetRedFlagThresholdsRequest(
            thresholds=pb.RedFlagThresholds(name=f"teams/{team}/redFlagThresholds", **limits),
            idempotency_key=f"limits-{team}",
        )
    )
    await eventually(
        lambda: perf.GetRedFlagThresholds(
            pb.GetRedFlagThresholdsRequest(name=f"teams/{team}/redFlagThresholds")
        ),
        lambda t: t.version >= 1,
    )


async def _team(system: System, team: str, agents: list[str]) -> None:
    assert system.performance is not None
    await system.add_team(team)
    for agent in agents:
        await system.add_agent(agent, team)
    directory = system.performance.directory
    for agent in agents:
        await eventually(lambda a=agent: directory.agent(a))  # type: ignore[misc]


async def _scorecard(system: System, agent: str, period: pb.Period) -> pb.Scorecard:
    assert system.perf is not None
    return await system.perf.GetScorecard(
        pb.GetScorecardRequest(name=f"agents/{agent}/scorecard", period=period)
    )


def _status(err: grpc.aio.AioRpcError) -> list[Any]:
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            return unpack_details(status_pb2.Status.FromString(value))
    return []


async def test_cases_make_the_process_figures_and_a_correction_replaces_the_record(
    perf_system: System,
) -> None:
    system, perf = perf_system, perf_system.perf
    assert perf is not None
    await _team(system, "night", ["a1"])
    period, resolved = _today_period()
    first = await perf.RecordCase(_record("c1", _case("a1", resolved, handle_s=300, csat=5)))
    assert (first.name, first.version) == ("cases/c1", 1)
    await perf.RecordCase(_record("c2", _case("a1", resolved, handle_s=600, sla_met=False)))
    # The same content again under another key is no change: still version 1.
    again = await perf.RecordCase(_record("c1", _case("a1", resolved, csat=5), key="other"))
    assert again.version == 1

    card = await eventually(
        lambda: _scorecard(system, "a1", period), lambda c: c.metrics.cases_resolved == 2
    )
    assert card.metrics.average_handle_time_seconds == 450.0
    assert card.metrics.sla_compliance_percent == 50.0
    assert card.metrics.csat_average == 5.0
    assert card.metrics.average_time_to_resolution_seconds == 1200.0

    fixed = await perf.RecordCase(_record("c2", _case("a1", resolved, handle_s=600), key="fix"))
    assert fixed.version == 2
    card = await eventually(
        lambda: _scorecard(system, "a1", period),
        lambda c: c.metrics.sla_compliance_percent == 100.0,
    )
    assert card.metrics.cases_resolved == 2  # replaced, not added

    explained = await perf.ExplainMetric(
        pb.ExplainMetricRequest(
            name="agents/a1/scorecard", period=period, metric="sla_compliance_percent"
        )
    )
    assert explained.value == 100.0
    assert sorted((c.name, c.version) for c in explained.cases) == [
        ("cases/c1", 1),
        ("cases/c2", 2),
    ]


async def test_a_batch_reports_every_case_and_records_the_good_ones(perf_system: System) -> None:
    system, perf = perf_system, perf_system.perf
    assert perf is not None
    await _team(system, "night", ["a1"])
    _, resolved = _today_period()
    future = utc_now() + timedelta(days=2)

    async def batch() -> Any:
        yield pb.RecordCasesRequest(case_id="b1", case=_case("a1", resolved), idempotency_key="b1")
        yield pb.RecordCasesRequest(case_id="b2", case=_case("a1", future), idempotency_key="b2")
        yield pb.RecordCasesRequest(
            case_id="b3", case=_case("nobody", resolved), idempotency_key="b3"
        )

    response = await perf.RecordCases(batch())
    assert (response.recorded_count, response.failed_count) == (1, 2)
    codes = {r.case_id: r.error_code for r in response.results}
    assert codes == {"b1": 0, "b2": code_pb2.INVALID_ARGUMENT, "b3": code_pb2.NOT_FOUND}
    assert "resolve_time" in response.results[1].error_message


async def test_status_changes_become_logged_in_time_and_occupancy(perf_system: System) -> None:
    system, perf = perf_system, perf_system.perf
    assert perf is not None
    await _team(system, "night", ["a1"])
    await system.known_to_availability("a1")
    for i, status in enumerate(
        [apb.AGENT_STATUS_AVAILABLE, apb.AGENT_STATUS_ON_CONTACT, apb.AGENT_STATUS_OFFLINE]
    ):
        await system.avail.SetStatus(
            apb.SetStatusRequest(
                name="agents/a1/availability", status=status, idempotency_key=f"s{i}"
            )
        )
        await asyncio.sleep(0.05)  # so each status lasts a measurable time
    day = utc_now().astimezone(PUNE).date()
    period = pb.Period(start_date=day.isoformat(), end_date=day.isoformat())

    async def explained() -> pb.ExplainMetricResponse:
        return await perf.ExplainMetric(
            pb.ExplainMetricRequest(
                name="agents/a1/scorecard", period=period, metric="occupancy_percent"
            )
        )

    # Until the OFFLINE arrives the last status seen is carried on (hours logged in): wait for
    # the time on contact too (the AVAILABLE alone gives hours and 0% occupancy).
    card = await eventually(
        lambda: _scorecard(system, "a1", period),
        lambda c: 0 < c.metrics.logged_in_hours < 1 and c.metrics.occupancy_percent > 0,
    )
    assert 0 < card.metrics.occupancy_percent < 100
    result = await explained()
    statuses = [s.status for s in result.segments]
    assert "AVAILABLE" in statuses and "ON_CONTACT" in statuses
    assert [s.status for s in result.segments if s.counted] == ["ON_CONTACT"]
    assert result.value == card.metrics.occupancy_percent
    # Each stretch also on the agent's clock (Pune) and the client's (the team's, New York).
    contact = next(s for s in result.segments if s.status == "ON_CONTACT")
    start = contact.start_time.ToDatetime(UTC)
    for shown, zone in (
        (contact.start_agent_local, "Asia/Kolkata"),
        (contact.start_client_local, "America/New_York"),
    ):
        assert shown.time_zone == zone
        assert datetime.fromisoformat(shown.local_time) == start.replace(microsecond=0)
        assert (
            datetime.fromisoformat(shown.local_time).utcoffset()
            == start.astimezone(ZoneInfo(zone)).utcoffset()
        )
    assert contact.end_agent_local.abbreviation == "IST"
    assert contact.end_client_local.abbreviation in ("EST", "EDT")


async def test_team_lists_sort_page_and_raise_red_flags(perf_system: System) -> None:
    system, perf = perf_system, perf_system.perf
    assert perf is not None
    await _team(system, "night", ["a1", "a2", "a3"])
    period, resolved = _today_period()
    thresholds = await perf.SetRedFlagThresholds(
        pb.SetRedFlagThresholdsRequest(
            thresholds=pb.RedFlagThresholds(
                name="teams/night/redFlagThresholds", min_sla_compliance_percent=95
            ),
            idempotency_key="th1",
        )
    )
    assert thresholds.version == 1
    await eventually(
        lambda: perf.GetRedFlagThresholds(
            pb.GetRedFlagThresholdsRequest(name="teams/night/redFlagThresholds")
        ),
        lambda t: t.version == 1,
    )
    # a1 breaches the SLA on 1 of 2 cases, a2 on none; a3 has no cases.
    await perf.RecordCase(_record("x1", _case("a1", resolved, sla_met=False)))
    await perf.RecordCase(_record("x2", _case("a1", resolved)))
    await perf.RecordCase(_record("x3", _case("a2", resolved, csat=3)))

    async def listing(order_by: str, token: str = "") -> pb.ListScorecardsResponse:
        return await perf.ListScorecards(
            pb.ListScorecardsRequest(
                team="teams/night",
                period=period,
                order_by=order_by,
                page_size=2,
                page_token=token,
            )
        )

    await eventually(
        lambda: perf.GetTeamSummary(pb.GetTeamSummaryRequest(team="teams/night", period=period)),
        lambda s: s.metrics.cases_resolved == 3,
    )
    first = await listing("sla_compliance_percent")
    assert [c.agent for c in first.scorecards] == ["agents/a1", "agents/a2"]
    rest = await listing("sla_compliance_percent", first.next_page_token)
    assert [c.agent for c in rest.scorecards] == ["agents/a3"] and not rest.next_page_token
    descending = await listing("sla_compliance_percent desc")
    assert [c.agent for c in descending.scorecards] == ["agents/a2", "agents/a1"]

    flags = await perf.ListRedFlags(pb.ListRedFlagsRequest(team="teams/night", period=period))
    assert [(f.agent, f.metric, f.value, f.bound) for f in flags.red_flags] == [
        ("agents/a1", "sla_compliance_percent", 50.0, "min")
    ]
    # One RedFlagRaised event, for a1 only, however many batches it took to get there; and
    # a limit set after the figures flags them too (a2's CSAT of 3 is below 4.5).
    await perf.SetRedFlagThresholds(
        pb.SetRedFlagThresholdsRequest(
            thresholds=pb.RedFlagThresholds(
                name="teams/night/redFlagThresholds",
                min_sla_compliance_percent=95,
                min_csat_average=4.5,
            ),
            idempotency_key="th2",
        )
    )
    assert system.performance is not None
    events = system.performance.runtime.store
    month = period.end_date[:7]
    raised = await eventually(
        lambda: events.get("red_flag", f"a1--{month}--sla_compliance_percent", 1)
    )
    assert raised is not None and raised.event_type == "wfm.performance.v1.RedFlagRaised"
    assert await events.get("red_flag", f"a1--{month}--sla_compliance_percent", 2) is None
    assert await events.get("red_flag", f"a2--{month}--sla_compliance_percent", 1) is None
    await eventually(lambda: events.get("red_flag", f"a2--{month}--csat_average", 1))
    summary = await perf.GetTeamSummary(pb.GetTeamSummaryRequest(team="teams/night", period=period))
    assert summary.agent_count == 3
    assert summary.metrics.cases_resolved == 3
    assert round(summary.metrics.sla_compliance_percent, 2) == 66.67


async def test_bad_input_is_rejected_with_every_field_named(perf_system: System) -> None:
    system, perf = perf_system, perf_system.perf
    assert perf is not None
    await _team(system, "night", ["a1"])
    bad = pb.Case(
        agent="agents/a1",
        channel=99,  # type: ignore[arg-type]
        open_time=to_timestamp(datetime(2026, 1, 2, tzinfo=UTC)),
        resolve_time=to_timestamp(datetime(2026, 1, 1, tzinfo=UTC)),
        talk_duration=Duration(seconds=-5),
        csat_score=9,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await perf.RecordCase(pb.RecordCaseRequest(case_id="bad id!", case=bad))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for d in _status(caught.value) if hasattr(d, "field_violations")
              for v in d.field_violations}  # fmt: skip
    assert fields >= {
        "case_id",
        "idempotency_key",
        "case.channel",
        "case.open_time",
        "case.talk_duration",
        "case.csat_score",
    }

    for period, field in [
        (pb.Period(start_date="2026-01-01", end_date="2026-03-01"), "period.end_date"),
        (pb.Period(start_date="yesterday", end_date="2026-01-01"), "period.start_date"),
        (pb.Period(start_date="2026-01-02", end_date="2026-01-01"), "period.end_date"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await perf.GetScorecard(
                pb.GetScorecardRequest(name="agents/a1/scorecard", period=period)
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in (caught.value.details() or "")

    period, resolved = _today_period()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await perf.ListScorecards(
            pb.ListScorecardsRequest(team="teams/night", period=period, order_by="height desc")
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await perf.GetScorecard(
            pb.GetScorecardRequest(name="agents/ghost/scorecard", period=period)
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await perf.SetRedFlagThresholds(
            pb.SetRedFlagThresholdsRequest(
                thresholds=pb.RedFlagThresholds(
                    name="teams/night/redFlagThresholds", max_absenteeism_percent=150
                ),
                idempotency_key="t",
            )
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    await perf.RecordCase(_record("v1", _case("a1", resolved)))
    stale = _record("v1", _case("a1", resolved, handle_s=900), key="stale")
    stale.expected_version = 0
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await perf.RecordCase(stale)
    assert caught.value.code() == grpc.StatusCode.ABORTED
    reused = _record("v1", _case("a1", resolved, handle_s=901), key="k-v1")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await perf.RecordCase(reused)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_who_may_read_and_record(perf_system: System) -> None:
    system = perf_system
    await _team(system, "night", ["a1", "a2"])
    await system.add_team("day")
    period, resolved = _today_period()
    agent = system.perf_as("a1", "agent")
    await agent.GetScorecard(pb.GetScorecardRequest(name="agents/a1/scorecard", period=period))
    denied = [
        agent.GetScorecard(pb.GetScorecardRequest(name="agents/a2/scorecard", period=period)),
        agent.RecordCase(_record("z1", _case("a1", resolved))),
        system.perf_as("tl", "team_leader", teams=("day",)).ListScorecards(
            pb.ListScorecardsRequest(team="teams/night", period=period)
        ),
    ]
    for call in denied:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED

    async def one_case() -> Any:
        yield pb.RecordCasesRequest(case_id="z2", case=_case("a1", resolved), idempotency_key="z")

    # Client streaming goes through the same authorization as every other call.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await system.perf_as("a1", "agent").RecordCases(one_case())
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    leader = system.perf_as("tl", "team_leader", teams=("night",))
    await leader.ListScorecards(pb.ListScorecardsRequest(team="teams/night", period=period))
    hr = system.perf_as("hr-1", "hr")
    await hr.GetScorecard(pb.GetScorecardRequest(name="agents/a2/scorecard", period=period))


def test_metric_names_match_the_proto() -> None:
    assert [f.name for f in pb.Metrics.DESCRIPTOR.fields] == list(metrics.METRICS)
