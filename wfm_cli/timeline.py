"""Pictures drawn with text: a roster as a timeline across days, coverage as a chart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.markup import escape
from rich.table import Table
from rich.text import Text
from wfm.scheduling.v1 import roster_service_pb2 as roster_pb

from wfm_cli.render import local_time

CELLS_PER_HOUR = 2  # half-hour cells: 48 across a day
WORK, ACTIVITY, FREE = "█", "▒", "·"
SKIPPED = "┄"  # a half hour the clocks skip (spring forward): no time to draw
SHORT_DAY_NOTE = f"{SKIPPED} time the clocks skip"
LONG_DAY_NOTE = "the hour the clocks repeat is drawn once: work in either shows"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def day_bar(day: datetime, shifts: list[roster_pb.Shift], zone: ZoneInfo) -> Text:
    """48 half-hour cells of one local day in `zone`, each where its time stands on the wall
    clock, so every row lines up under the hours, clock change or not: work, breaks/lunch
    (activities), free. A cell the clocks skip is SKIPPED; one they show twice (fall back) is
    drawn from both times, or the second hour's work would never show."""
    text = Text()
    for wall in _walls(day):
        char = _drawn(_instants(wall, zone), shifts)
        text.append(char, style={WORK: "green", ACTIVITY: "yellow"}.get(char, "dim"))
    return text


def day_hours(day: datetime, zone: ZoneInfo) -> float:
    """How long the local day lasts in `zone`: 24, or 23 and 25 on the days the clocks change."""
    half_hours = sum(len(_instants(wall, zone)) for wall in _walls(day))
    return half_hours / CELLS_PER_HOUR


def _walls(day: datetime) -> list[datetime]:
    """The wall-clock times the cells of `day` start at (naive: a time on the clock)."""
    midnight = datetime(day.year, day.month, day.day)
    return [
        midnight + timedelta(minutes=cell * 60 // CELLS_PER_HOUR)
        for cell in range(24 * CELLS_PER_HOUR)
    ]


def _instants(wall: datetime, zone: ZoneInfo) -> list[datetime]:
    """Every instant the clocks of `zone` show `wall`: none in a gap they skip, two in an hour
    they repeat, else one. (Aware arithmetic from midnight would map a skipped 02:00 onto
    03:00 and never reach the repeated hour's second pass.)"""
    found: list[datetime] = []
    for fold in (0, 1):
        moment = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if moment.astimezone(zone).replace(tzinfo=None) == wall and moment not in found:
            found.append(moment)
    return found


def _drawn(moments: list[datetime], shifts: list[roster_pb.Shift]) -> str:
    if not moments:
        return SKIPPED
    return next((c for c in (_cell(m, shifts) for m in moments) if c != FREE), FREE)


def _cell(moment: datetime, shifts: list[roster_pb.Shift]) -> str:
    for shift in shifts:
        start = shift.start_time.ToDatetime(tzinfo=UTC)
        end = shift.end_time.ToDatetime(tzinfo=UTC)
        if start <= moment < end:
            offset = (moment - start).total_seconds() / 60
            for activity in shift.activities:
                begin = activity.offset_minutes
                if begin <= offset < begin + activity.length_minutes:
                    return ACTIVITY
            return WORK
    return FREE


def roster_timeline(
    roster: roster_pb.AgentRoster,
    zone_name: str,
    client_zone: str,
    *,
    first: str = "",
    last: str = "",
) -> Table:
    """One row per roster date from `first`: a 24-hour bar on the agent's clock, then the
    shift's times on the agent's and on the client's clock. Shifts of earlier days still draw
    on the bars (a night shift runs into the next day). A day the agent's clocks change is
    dated with its length (`Sun 14 Mar 23h`) and keeps the wall-clock bar of every other day,
    as calendars do: a shift stands under the hour its start shows on the agent's clock."""
    zone = _zone(zone_name)
    # A cancelled shift is no work: it stays listed (with why) but draws nothing on the bars.
    everything = [shift for day in roster.days for shift in day.shifts if _live(shift)]
    on_leave = _leave_days(roster)
    table = Table(title=f"{roster.agent.removeprefix('agents/')} (bar: 00-24 {zone_name})")
    table.add_column("date", no_wrap=True)
    table.add_column(
        "".join(f"{hour:02d}".ljust(4 * CELLS_PER_HOUR) for hour in range(0, 24, 4)), no_wrap=True
    )
    table.add_column(f"agent ({zone_name})", no_wrap=True)
    table.add_column(f"client ({client_zone or '?'})", no_wrap=True)
    table.add_column("paid", no_wrap=True, justify="right")
    by_date = {day.roster_date: list(day.shifts) for day in roster.days}
    dates = sorted(by_date)
    start = datetime.fromisoformat(first or (dates[0] if dates else "2000-01-01"))
    end = datetime.fromisoformat(last or (dates[-1] if dates else start.date().isoformat()))
    notes: set[str] = set()
    date = start
    while date <= end:
        day = date.date().isoformat()
        shifts = by_date.get(day, [])
        hours = day_hours(date, zone)
        if hours != 24:
            notes.add(SHORT_DAY_NOTE if hours < 24 else LONG_DAY_NOTE)
        table.add_row(
            date.strftime("%a %d %b") + ("" if hours == 24 else f" {hours:g}h"),
            day_bar(date, everything, zone),
            "\n".join(_agent_span(s) for s in shifts) or on_leave.get(day, "off"),
            "\n".join(_span(s.start_client_local, s.end_client_local) for s in shifts),
            "\n".join(f"{s.paid_minutes / 60:.1f}h" if _live(s) else "-" for s in shifts),
        )
        date += timedelta(days=1)
    table.caption = "; ".join(sorted(notes, reverse=True)) or None
    return table


def _live(shift: roster_pb.Shift) -> bool:
    return shift.state != roster_pb.SHIFT_STATE_CANCELLED


def _agent_span(shift: roster_pb.Shift) -> str:
    span = _span(shift.start_agent_local, shift.end_agent_local)
    if _live(shift):
        return span
    why = f": {escape(shift.cancel_reason)}" if shift.cancel_reason else ""
    return f"[strike]{span}[/] cancelled{why}"


def _leave_days(roster: roster_pb.AgentRoster) -> dict[str, str]:
    """Date -> `leave (annual)` for every day of approved or requested leave shown."""
    days: dict[str, str] = {}
    for leave in roster.leave_requests:
        if leave.state not in (roster_pb.LEAVE_STATE_APPROVED, roster_pb.LEAVE_STATE_REQUESTED):
            continue
        kind = roster_pb.LeaveKind.Name(leave.kind).removeprefix("LEAVE_KIND_").lower()
        asked = "" if leave.state == roster_pb.LEAVE_STATE_APPROVED else ", asked"
        day = datetime.fromisoformat(leave.start_date)
        while day <= datetime.fromisoformat(leave.end_date):
            days[day.date().isoformat()] = f"leave ({kind}{asked})"
            day += timedelta(days=1)
    return days


def _span(start: object, end: object) -> str:
    return f"{local_time(start)}-{local_time(end)}"  # type: ignore[arg-type]


def coverage_chart(coverage: roster_pb.GetCoverageResponse, *, width: int = 40) -> Table:
    """Scheduled against required per interval on the client's clock; short intervals red."""
    peak = max(
        [max(i.required, i.scheduled) for i in coverage.intervals] + [1.0],
    )
    table = Table(title=f"coverage of {coverage.team.removeprefix('teams/')} (client time)")
    for column in ("interval", "required", "scheduled", "gap", "scheduled ■ / required │"):
        table.add_column(column, no_wrap=True, justify="right" if column != "interval" else "left")
    for interval in coverage.intervals:
        if not interval.required and not interval.scheduled:
            continue
        short = interval.gap > 0  # required - scheduled: positive means understaffed
        table.add_row(
            local_time(interval.start_client_local, with_date=True),
            str(interval.required),
            f"{interval.scheduled:g}",
            Text(
                f"{interval.gap:+g}" if interval.gap else "0",
                style="bold red" if short else "green",
            ),
            _bar(interval.scheduled, interval.required, peak / width, short),
        )
    return table


def _bar(scheduled: float, required: int, per_cell: float, short: bool) -> Text:
    filled = round(scheduled / per_cell)
    mark = round(required / per_cell)
    text = Text(justify="left")
    for cell in range(max(filled, mark + 1)):
        if cell == mark:
            text.append("│", style="bold")
        elif cell < filled:
            text.append("■", style="red" if short else "green")
        else:
            text.append(" ")
    return text
