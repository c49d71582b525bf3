"""PerformanceService edges over gRPC: corrections, batches, periods, paging, thresholds."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, time, timedelta
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2
from wfm.performance.v1 import performance_service_pb2 as pb

from tests.conftest import System
from tests.integration.test_performance_api import (
    _case,
    _record,
    _scorecard,
    _team,
    _today_period,
)
from wfm_runtime.testing import channel, eventually
from wfm_runtime.timefmt import utc_now

pytestmark = pytest.mark.integration


async def _code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value.code()


async def test_a_correction_moves_the_case_to_another_agent_and_day(perf_system: System) -> None:
    system, perf = perf_system, perf_system.perf
    assert perf is not None
    await _team(system, "night", ["a1", "a2"])
    period, resolved = _today_period()
    await perf.RecordCase(_record("m1", _case("a1", resolved)))
    await eventually(
        lambda: _scorecard(system, "a1", period), lambda c: c.metrics.cases_resolved == 1
    )

    moved = await perf.RecordCase(_record("m1", _case("a2", resolved), key="move"))
    assert (moved.agent, moved.version) == ("agents/a2", 2)
    await eventually(
        lambda: _scorecard(system, "a2", period), lambda c: c.metrics.cases_resolved == 1
    )
    old = await eventually(
        lambda: _scorecard(system, "a1", period), lambda c: c.metrics.cases_resolved == 0
    )
    assert not old.metrics.HasField("average_handle_time_seconds")
    explained = await perf.ExplainMetric(
        pb.ExplainMetricRequest(name="agents/a1/scorecard", period=period, metric="cases_resolved")
    )
    assert list(explained.cases) == []

    # A retry of the first recording answers its first result, and changes nothing.
    again = await perf.RecordCase(_record("m1", _case("a1", resolved)))
    assert (again.agent, again.version) == ("agents/a1", 1)
    summary = await perf.GetTeamSummary(pb.GetTeamSummaryRequest(team="teams/night", period=period))
    assert summary.metrics.cases_resolved == 1


async def test_case_ids_and_versions_at_their_limits(perf_system: System) -> None:
    system, perf = perf_system, perf_system.perf
    assert perf is not None
    await _team(system, "night", ["a1"])
    _, resolved = _today_period()
    longest = "c" * 63
    assert (await perf.RecordCase(_record(longest, _case("a1", resolved)))).version == 1
    for bad in ("c" * 64, "caseé", "", "a/b"):
        request = pb.RecordCaseRequest(case_id=bad, case=_case("a1", resolved), idempotency_key="x")
        assert await _code(perf.RecordCase(request)) == grpc.StatusCode.INVALID_ARGUMENT
    ahead = _record(longest, _case("a1", resolved, handle_s=700), key="ahead")
    ahead.expected_version = 5
    assert await _code(perf.RecordCase(ahead)) == grpc.StatusCode.ABORTED
    ahead.expected_version = 1
    assert (await perf.RecordCase(ahead)).version == 2


async def test_a_large_batch_with_a_bad_case_in_the_middle_and_an_empty_one(
    perf_system: System,
) -> None:
    system, perf = perf_system, perf_system.perf
    assert perf is not None
    await _team(system, "night", ["a1"])
    _, resolved = _today_period()
    count = 600

    async def batch() -> Any:
        for i in range(count):
            agent = "ghost" if i == count // 2 else "a1"
            yield pb.RecordCasesRequest(
                case_id=f"big{i}", case=_case(agent, resolved), idempotency_key=f"big{i}"
            )
        # The same request twice in one batch: the same first result.
        yield pb.RecordCasesRequest(
            case_id="big0", case=_case("a1", resolved), idempotency_key="big0"
        )

    response = await perf.RecordCases(batch(), timeout=120)
    assert (response.recorded_count, response.failed_count) == (count, 1)
    assert response.results[count // 2].error_code == code_pb2.NOT_FOUND
    assert response.results[-1].case.version == 1

    async def empty() -> Any:
        return
        yield

    nothing = await perf.RecordCases(empty())
    assert (nothing.recorded_count, nothing.failed_count, list(nothing.results)) == (0, 0, [])


async def test_periods_at_the_edges_of_the_calendar(perf_system: System) -> None:
    system, perf = perf_system, perf_system.perf
    assert perf is not None
    await _team(system, "night", ["a1"])
    for start, end in (("2999-12-01", "2999-12-31"), ("2000-01-01", "2000-01-31")):
        period = pb.Period(start_date=start, end_date=end)
        card = await _scorecard(system, "a1", period)
        assert not card.metrics.HasField("adherence_percent")
        await perf.ListScorecards(pb.ListScorecardsRequest(team="teams/night", period=period))
        await perf.GetTeamSummary(pb.GetTeamSummaryRequest(team="teams/night", period=period))
        await perf.ListRedFlags(pb.ListRedFlagsRequest(team="teams/night", period=period))
        await perf.ExplainMetric(
            pb.ExplainMetricRequest(
                name="agents/a1/scorecard", period=period, metric="adherence_percent"
            )
        )
    for start, end in (
        ("0001-01-01", "0001-01-02"),
        ("9999-12-30", "9999-12-31"),
        ("2026-1-1", "2026-01-02"),
        ("2026-01-01T00", "2026-01-02"),
        ("2026-01-01", ""),
    ):
        period = pb.Period(start_date=start, end_date=end)
        request = pb.GetTeamSummaryRequest(team="teams/night", period=period)
        assert await _code(perf.GetTeamSummary(request)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_unknown_team_or_agent_is_not_found(perf_system: System) -> None:
    system, perf = perf_system, perf_system.perf
    assert perf is not None
    await _team(system, "night", ["a1"])
    period, _ = _today_period()
    calls = [
        perf.ListScorecards(pb.ListScorecardsRequest(team="teams/nope", period=period)),
        perf.GetTeamSummary(pb.GetTeamSummaryRequest(team="teams/nope", period=period)),
        perf.ListRedFlags(pb.ListRedFlagsRequest(team="teams/nope", period=period)),
        perf.GetTeamAdherence(pb.GetTeamAdherenceRequest(name="teams/nope/adherence")),
        perf.GetRedFlagThresholds(
            pb.GetRedFlagThresholdsRequest(name="teams/nope/redFlagThresholds")
        ),
        perf.ExplainMetric(
            pb.ExplainMetricRequest(
                name="agents/nope/scorecard", period=period, metric="cases_resolved"
            )
        ),
    ]
    for call in calls:
        assert await _code(call) == grpc.StatusCode.NOT_FOUND


async def test_order_by_spacing_and_page_tokens(perf_system: System) -> None:
    system, perf = perf_system, perf_system.perf
    assert perf is not None
    await _team(system, "night", ["a1", "a2", "a3"])
    period, resolved = _today_period()
    for agent in ("a1", "a2", "a3"):
        await perf.RecordCase(_record(f"o-{agent}", _case(agent, resolved)))

    async def agents(order_by: str, page_size: int = 0, token: str = "") -> Any:
        response = await perf.ListScorecards(
            pb.ListScorecardsRequest(
                team="teams/night",
                period=period,
                order_by=order_by,
                page_size=page_size,
                page_token=token,
            )
        )
        return [c.agent for c in response.scorecards], response.next_page_token

    assert (await agents("  adherence_percent   desc "))[0] == [
        "agents/a1",
        "agents/a2",
        "agents/a3",
    ]
    assert (await agents("agent desc"))[0] == ["agents/a3", "agents/a2", "agents/a1"]
    first, token = await agents("cases_resolved", page_size=2)
    assert len(first) == 2 and token
    other = pb.Period(start_date=period.start_date, end_date=period.start_date)
    stolen = pb.ListScorecardsRequest(team="teams/night", period=other, page_token=token)
    assert await _code(perf.ListScorecards(stolen)) == grpc.StatusCode.INVALID_ARGUMENT
    other_metric = pb.ListScorecardsRequest(
        team="teams/night", period=period, order_by="csat_average", page_token=token
    )
    assert await _code(perf.ListScorecards(other_metric)) == grpc.StatusCode.INVALID_ARGUMENT
    for order_by in ("cases_resolved desc desc", "desc", "cases_resolved up"):
        request = pb.ListScorecardsRequest(team="teams/night", period=period, order_by=order_by)
        assert await _code(perf.ListScorecards(request)) == grpc.StatusCode.INVALID_ARGUMENT
    negative = pb.ListScorecardsRequest(team="teams/night", period=period, page_size=-1)
    assert await _code(perf.ListScorecards(negative)) == grpc.StatusCode.INVALID_ARGUMENT
    huge = await agents("", page_size=2**31 - 1)
    assert huge == (["agents/a1", "agents/a2", "agents/a3"], "")


async def test_thresholds_reject_odd_limits_and_replace_the_whole_set(perf_system: System) -> None:
    system, perf = perf_system, perf_system.perf
    assert perf is not None
    await _team(system, "night", ["a1"])
    name = "teams/night/redFlagThresholds"

    def setting(key: str, version: int | None = None, **limits: Any) -> Any:
        request = pb.SetRedFlagThresholdsRequest(
            thresholds=pb.RedFlagThresholds(name=name, **limits), idempotency_key=key
        )
        if version is not None:
            request.expected_version = version
        return perf.SetRedFlagThresholds(request)

    for limits in (
        {"min_adherence_percent": math.nan},
        {"min_adherence_percent": math.inf},
        {"max_late_logins": -1},
        {"min_csat_average": 5.5},
        {"max_absenteeism_percent": 100.0001},
    ):
        assert await _code(setting("bad", **limits)) == grpc.StatusCode.INVALID_ARGUMENT
    assert await _code(setting("bad", version=-1)) == grpc.StatusCode.INVALID_ARGUMENT
    first = await setting("t1", min_adherence_percent=80, max_late_logins=2)
    assert first.version == 1
    second = await setting("t2", version=1, min_adherence_percent=85)
    assert second.version == 2 and not second.HasField("max_late_logins")
    assert await _code(setting("t3", version=1, min_adherence_percent=90)) == (
        grpc.StatusCode.ABORTED
    )
    retried = await setting("t1", min_adherence_percent=80, max_late_logins=2)
    assert (retried.version, retried.max_late_logins) == (1, 2)
    read = await eventually(
        lambda: perf.GetRedFlagThresholds(pb.GetRedFlagThresholdsRequest(name=name)),
        lambda t: t.version == 2,
    )
    assert (read.min_adherence_percent, read.HasField("max_late_logins")) == (85, False)
    unchanged = await setting("t4", version=2, min_adherence_percent=85)
    assert unchanged.version == 2


async def test_a_future_period_has_no_figures(perf_system: System) -> None:
    system, perf = perf_system, perf_system.perf
    assert perf is not None
    await _team(system, "night", ["a1"])
    _, resolved = _today_period()
    day = (resolved + timedelta(days=40)).date()
    period = pb.Period(start_date=day.isoformat(), end_date=(day + timedelta(days=3)).isoformat())
    card = await _scorecard(system, "a1", period)
    figures = card.metrics
    assert not figures.HasField("absenteeism_percent")
    assert not figures.HasField("adherence_percent")
    assert not figures.HasField("occupancy_percent")
    assert not figures.HasField("cases_resolved_per_day")
    assert not figures.HasField("csat_average")
    assert card.active_days == 0


async def test_a_retry_of_a_no_change_answers_its_first_result_after_a_correction(
    perf_system: System,
) -> None:
    system, perf = perf_system, perf_system.perf
    assert perf is not None
    await _team(system, "night", ["a1"])
    _, resolved = _today_period()
    await perf.RecordCase(_record("n1", _case("a1", resolved)))
    same = await perf.RecordCase(_record("n1", _case("a1", resolved), key="same"))
    await perf.RecordCase(_record("n1", _case("a1", resolved, handle_s=900), key="fix"))
    retried = await perf.RecordCase(_record("n1", _case("a1", resolved), key="same"))
    assert retried == same
    fresh = _record("n2", _case("a1", resolved))
    fresh.expected_version = 0
    assert (await perf.RecordCase(fresh)).version == 1
    assert (await perf.RecordCase(fresh)).version == 1  # its retry
    borrowed = _record("n3", _case("a1", resolved), key="same")  # another case's key
    assert await _code(perf.RecordCase(borrowed)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_an_oversized_or_cancelled_batch_records_nothing(perf_system: System) -> None:
    system, perf = perf_system, perf_system.perf
    assert perf is not None
    await _team(system, "night", ["a1"])
    period, resolved = _today_period()

    async def oversized() -> Any:
        for i in range(10_001):
            yield pb.RecordCasesRequest(
                case_id=f"o{i}", case=_case("a1", resolved), idempotency_key=f"o{i}"
            )

    assert await _code(perf.RecordCases(oversized(), timeout=120)) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )

    call = perf.RecordCases()
    await call.write(
        pb.RecordCasesRequest(case_id="x1", case=_case("a1", resolved), idempotency_key="x1")
    )
    call.cancel()  # the client gives up before closing the stream
    assert await call.code() == grpc.StatusCode.CANCELLED
    await asyncio.sleep(0.2)
    for case_id in ("x1", "o0"):  # nothing of either batch was recorded
        probe = _record(case_id, _case("a1", resolved), key=f"probe-{case_id}")
        probe.expected_version = 0
        assert (await perf.RecordCase(probe)).version == 1
    card = await _scorecard(system, "a1", period)
    assert card.metrics.cases_resolved == 0


async def test_a_retry_of_unchanged_thresholds_answers_its_first_result(
    perf_system: System,
) -> None:
    system, perf = perf_system, perf_system.perf
    assert perf is not None
    await _team(system, "night", ["a1"])
    name = "teams/night/redFlagThresholds"

    def setting(key: str, **limits: Any) -> Any:
        return perf.SetRedFlagThresholds(
            pb.SetRedFlagThresholdsRequest(
                thresholds=pb.RedFlagThresholds(name=name, **limits), idempotency_key=key
            )
        )

    await setting("s1", min_adherence_percent=80)
    same = await setting("s2", min_adherence_percent=80)
    assert same.version == 1
    await setting("s3", min_adherence_percent=70)
    assert await setting("s2", min_adherence_percent=80) == same
    emptied = await setting("s4")
    assert (emptied.version, emptied.HasField("min_adherence_percent")) == (3, False)
    assert await _code(setting("s4", min_adherence_percent=1)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_correction_to_another_day_leaves_the_old_day(perf_system: System) -> None:
    system, perf = perf_system, perf_system.perf
    assert perf is not None
    await _team(system, "night", ["a1"])
    period, resolved = _today_period()
    day = pb.Period(start_date=period.end_date, end_date=period.end_date)
    await perf.RecordCase(_record("d1", _case("a1", resolved)))
    await eventually(lambda: _scorecard(system, "a1", day), lambda c: c.metrics.cases_resolved == 1)
    earlier = resolved - timedelta(days=3)
    await perf.RecordCase(_record("d1", _case("a1", earlier), key="d1-moved"))
    await eventually(lambda: _scorecard(system, "a1", day), lambda c: c.metrics.cases_resolved == 0)

    async def twice() -> Any:
        for key, handle_s in (("t-1", 300), ("t-2", 600)):
            yield pb.RecordCasesRequest(
                case_id="t1", case=_case("a1", resolved, handle_s=handle_s), idempotency_key=key
            )

    response = await perf.RecordCases(twice())
    assert [r.case.version for r in response.results] == [1, 2]


async def test_a_whole_month_period_follows_a_correction(perf_system: System) -> None:
    system, perf = perf_system, perf_system.perf
    assert perf is not None
    await _team(system, "night", ["a1", "a2"])
    now = utc_now()
    first_of_month = now.date().replace(day=1)
    last_month_end = first_of_month - timedelta(days=1)
    month = pb.Period(
        start_date=last_month_end.replace(day=1).isoformat(), end_date=last_month_end.isoformat()
    )
    wider = pb.Period(
        start_date=(last_month_end - timedelta(days=30)).isoformat(),
        end_date=last_month_end.isoformat(),
    )
    resolved = datetime.combine(last_month_end.replace(day=15), time(12), tzinfo=UTC)
    await perf.RecordCase(_record("w1", _case("a1", resolved)))
    for period in (month, wider):
        await eventually(
            lambda p=period: _scorecard(system, "a1", p),  # type: ignore[misc]
            lambda c: c.metrics.cases_resolved == 1,
        )
    await perf.RecordCase(_record("w1", _case("a2", resolved), key="w1-moved"))
    for period in (month, wider):
        await eventually(
            lambda p=period: _scorecard(system, "a1", p),  # type: ignore[misc]
            lambda c: c.metrics.cases_resolved == 0,
        )
        summary = await perf.GetTeamSummary(
            pb.GetTeamSummaryRequest(team="teams/night", period=period)
        )
        assert summary.metrics.cases_resolved == 1


def _raw_batch(system: System) -> Any:
    """RecordCases taking each streamed message as bytes, sent as they are."""
    assert system.performance is not None
    token = system.minter.token("admin-1", "admin")
    ch = channel(f"127.0.0.1:{system.performance.port}", token)
    system.channels.append(ch)
    return ch.stream_unary(
        "/wfm.performance.v1.PerformanceService/RecordCases",
        response_deserializer=pb.RecordCasesResponse.FromString,
    )


async def test_a_batch_with_a_message_that_does_not_decode_is_refused_whole(
    perf_system: System,
) -> None:
    system, perf = perf_system, perf_system.perf
    assert perf is not None
    await _team(system, "night", ["a1"])
    _, resolved = _today_period()
    good = pb.RecordCasesRequest(case_id="u1", case=_case("a1", resolved), idempotency_key="u1")

    async def stream() -> Any:
        yield good.SerializeToString()
        yield b"\x0a\x05ab"  # case_id: a length past the end

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _raw_batch(system)(stream())
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # was INTERNAL
    assert "requests: message 2 of the stream" in (caught.value.details() or "")
    probe = _record("u1", _case("a1", resolved), key="probe-u1")
    probe.expected_version = 0  # the good case before it was not recorded
    assert (await perf.RecordCase(probe)).version == 1


async def test_a_full_batch_of_refusals_with_huge_ids_fits_the_reply(perf_system: System) -> None:
    system, perf = perf_system, perf_system.perf
    assert perf is not None
    await _team(system, "night", ["a1"])
    _, resolved = _today_period()
    # Long ids and names in four-byte characters, echoed into each refusal, once 10,000 times
    # (each refusal's reason quotes the agent's name) and once three ids of 2 MB.
    emoji = "\U0001f600"
    bad = pb.RecordCasesRequest(
        case_id=emoji * 200, case=_case("a1", resolved), idempotency_key="h"
    )
    bad.case.agent = "agents/" + emoji * 200

    async def full() -> Any:
        for _ in range(10_000):
            yield bad.SerializeToString()

    async def huge() -> Any:
        for n in range(3):
            yield pb.RecordCasesRequest(
                case_id=f"{n}" + "é" * 1_000_000, case=_case("a1", resolved), idempotency_key="h"
            ).SerializeToString()

    send = _raw_batch(system)
    response = await send(full(), timeout=120)  # was RESOURCE_EXHAUSTED: 'Sent message larger'
    assert (response.recorded_count, response.failed_count) == (0, 10_000)
    assert response.ByteSize() <= 4 * 1024 * 1024
    first = response.results[0]
    assert (first.case_id, first.error_code) == (emoji * 15, code_pb2.INVALID_ARGUMENT)
    assert first.error_message.startswith("invalid request: ")
    response = await send(huge())
    assert [r.case_id for r in response.results] == [f"{n}" + "é" * 31 for n in range(3)]
    assert [r.error_code for r in response.results] == [code_pb2.INVALID_ARGUMENT] * 3


async def test_a_batch_over_64_mib_is_refused_whole(perf_system: System) -> None:
    system, perf = perf_system, perf_system.perf
    assert perf is not None
    await _team(system, "night", ["a1"])
    _, resolved = _today_period()
    good = pb.RecordCasesRequest(case_id="g1", case=_case("a1", resolved), idempotency_key="g1")
    # 4 MiB messages are each within the transport's limit; 17 of them pass 64 MiB.
    padded = pb.RecordCasesRequest(case_id="p" * (4 * 1024 * 1024 - 100), idempotency_key="p")

    async def stream() -> Any:
        yield good.SerializeToString()
        for _ in range(17):
            yield padded.SerializeToString()

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _raw_batch(system)(stream(), timeout=60)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # was OK: all held at once
    assert "at most 67108864 bytes" in (caught.value.details() or "")
    probe = _record("g1", _case("a1", resolved), key="probe-g1")
    probe.expected_version = 0  # the good case before them was not recorded
    assert (await perf.RecordCase(probe)).version == 1
