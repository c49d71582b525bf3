"""Performance rules other than the metrics: cases, periods, ordering, thresholds, codecs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from services.performance import domain, metrics, store
from wfm_runtime.errors import Violations

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def _record(**changes: object) -> domain.CaseRecord:
    base = domain.CaseRecord(
        "c-1", "a-1", "EMAIL", NOW - timedelta(hours=3), NOW - timedelta(hours=1),
        120_000, 30_000, 45_000, True, 86_400_000, True, 4, 8, 0,
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def _violations(record: domain.CaseRecord) -> set[str]:
    v = Violations()
    domain.validate_case(record, now=NOW, v=v)
    return {item.field for item in v.items}


def test_a_good_case_passes_and_every_bad_field_is_named() -> None:
    assert _violations(_record()) == set()
    bad = _record(
        case_id="no spaces",
        channel="FAX",
        resolved=NOW + timedelta(days=1),
        talk_ms=-1,
        csat=6,
        pulse=11,
        sla_target_ms=None,
    )
    assert _violations(bad) == {
        "case_id",
        "case.channel",
        "case.resolve_time",
        "case.talk_duration",
        "case.csat_score",
        "case.pulse_score",
        "case.sla_met",
    }
    assert _violations(_record(opened=NOW)) == {"case.open_time"}
    assert _violations(_record(opened=NOW - timedelta(days=400))) == {"case.open_time"}


def test_recording_the_same_case_again_changes_nothing_and_a_correction_moves_it() -> None:
    first = domain.decide_record_case(None, _record())
    assert first is not None and first.previous_agent == ""
    stored = replace(_record(), version=1)
    assert domain.decide_record_case(stored, _record()) is None
    moved = domain.decide_record_case(stored, _record(agent_id="a-2"))
    assert moved is not None
    assert (moved.previous_agent, moved.previous_resolved) == ("a-1", stored.resolved)


def test_periods_are_dates_at_most_31_days_apart() -> None:
    v = Violations()
    assert domain.parse_period(v, "2026-11-01", "2026-12-01") == domain.Period(
        date(2026, 11, 1), date(2026, 12, 1)
    )
    assert not v.items
    for start, end, field in [
        ("2026-11-01", "2026-12-02", "period.end_date"),
        ("", "2026-11-01", "period.start_date"),
        ("2026-11-1", "2026-11-02", "period.start_date"),
        ("1999-12-31", "2000-01-01", "period.start_date"),
        ("2026-11-02", "2026-11-01", "period.end_date"),
    ]:
        v = Violations()
        domain.parse_period(v, start, end)
        assert [i.field for i in v.items] == [field], (start, end)


def test_order_by_names_a_metric_and_a_direction() -> None:
    v = Violations()
    assert domain.parse_order_by(v, "adherence_percent desc") == ("adherence_percent", True)
    assert domain.parse_order_by(v, "agent") == ("", False)
    assert domain.parse_order_by(v, "") == ("", False)
    assert not v.items
    for text in ("height", "adherence_percent sideways", "a b c"):
        v = Violations()
        domain.parse_order_by(v, text)
        assert [i.field for i in v.items] == ["order_by"]


def test_red_flags_fire_strictly_past_a_limit_and_never_without_a_figure() -> None:
    thresholds = domain.Thresholds(
        "night", max_absenteeism_percent=5, min_adherence_percent=90, min_csat_average=4
    )
    figures: dict[str, float | None] = {
        "absenteeism_percent": 5.5,
        "adherence_percent": 90.0,
        "csat_average": None,
    }
    assert domain.red_flags("a-1", figures, thresholds) == [
        domain.RedFlag("a-1", "absenteeism_percent", 5.5, 5.0, "max")
    ]


def test_thresholds_out_of_range_are_rejected() -> None:
    v = Violations()
    domain.validate_thresholds(
        domain.Thresholds("night", max_absenteeism_percent=101, min_csat_average=float("nan")), v
    )
    assert {i.field for i in v.items} == {
        "thresholds.max_absenteeism_percent",
        "thresholds.min_csat_average",
    }


def test_case_codecs_round_trip() -> None:
    record = replace(_record(csat=None), version=3)
    assert store.case_from_proto(store.case_to_proto(record)) == record
    entry = store.case_entry(record)
    packed = store.unpack_doc(store.pack_doc({"_id": "x", "cases": {"c-1": entry}}))
    assert store.case_record_from_entry("a-1", "c-1", packed["cases"]["c-1"]) == record


def test_sums_pack_and_unpack() -> None:
    sums = metrics.empty_sums()
    sums.update(cases=3, handle_ms=123_456, active_days=1)
    assert store.unpack_sums(store.pack_sums(sums)) == sums
