"""`wfm explain`'s tables: each status stretch on the agent's clock and the client's."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console
from wfm.performance.v1 import performance_service_pb2 as pb

from wfm_cli.commands.performance import _explained
from wfm_runtime.timefmt import localized, to_timestamp


def _text(found: pb.ExplainMetricResponse) -> str:
    console = Console(width=200, record=True)
    for table in _explained(found):
        console.print(table)
    return console.export_text()


def _segment(start: datetime, end: datetime, client_zone: str) -> pb.ExplainedSegment:
    return pb.ExplainedSegment(
        roster_date="2026-03-09",
        start_time=to_timestamp(start),
        end_time=to_timestamp(end),
        status="ON_CONTACT",
        counted=True,
        start_agent_local=localized(start, "Asia/Kolkata"),
        end_agent_local=localized(end, "Asia/Kolkata"),
        start_client_local=localized(start, client_zone),
        end_client_local=localized(end, client_zone),
    )


def test_a_stretch_shows_on_both_clocks_across_midnight_and_us_dst() -> None:
    # 13:00-14:00 UTC on the day after New York moved to daylight time.
    start, end = datetime(2026, 3, 9, 13, 0, tzinfo=UTC), datetime(2026, 3, 9, 14, 0, tzinfo=UTC)
    shown = _text(pb.ExplainMetricResponse(segments=[_segment(start, end, "America/New_York")]))
    assert "2026-03-09 18:30 IST" in shown and "2026-03-09 19:30 IST" in shown
    assert "09:00 EDT-10:00 EDT" in shown
    night = datetime(2026, 3, 9, 18, 0, tzinfo=UTC)  # 23:30 IST to 00:30 IST the next day
    crossing = _segment(night, night.replace(hour=19), "America/New_York")
    shown = _text(pb.ExplainMetricResponse(segments=[crossing]))
    assert "2026-03-09 23:30 IST" in shown and "2026-03-10 00:30 IST" in shown


def test_a_stretch_of_a_team_not_yet_known_shows_no_client_clock() -> None:
    start = datetime(2026, 3, 9, 13, 0, tzinfo=UTC)
    shown = _text(pb.ExplainMetricResponse(segments=[_segment(start, start, "")]))
    row = next(line for line in shown.splitlines() if "ON_CONTACT" in line)
    assert "18:30 IST" in row and " - " in row
