"""Rosters and leave: agents `wfm roster`, `wfm leave request|list|balance`; schedulers
`wfm shifts assign|bulk-assign|publish|cancel`, `wfm leave approve|deny`, `wfm coverage`."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from google.protobuf import json_format
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table
from wfm.scheduling.v1 import roster_service_pb2 as roster_pb

from wfm_cli import exitcodes
from wfm_cli.context import (
    ExpectedVersionOption,
    JsonOption,
    KeyOption,
    bad_input,
    client,
    console,
    handle_errors,
    options,
    print_json,
    read_file,
    to_dict,
    token_subject,
    token_team,
)
from wfm_cli.groups import DefaultGroup
from wfm_cli.render import local_time
from wfm_cli.schedule_syntax import WEEKDAYS, parse_clock
from wfm_cli.timeline import coverage_chart, roster_timeline
from wfm_sdk import names
from wfm_sdk.calls import next_page_token

shifts_app = typer.Typer(
    help="Shifts: assign, bulk-assign, update, publish, cancel.", no_args_is_help=True
)
leave_app = typer.Typer(
    help="Leave: request, list, balance, approve, deny, cancel.", no_args_is_help=True
)
coverage_app = typer.Typer(
    cls=DefaultGroup,
    help="Coverage: show (the default: `wfm coverage TEAM`) and set the requirement.",
    no_args_is_help=True,
)

Override = Annotated[
    list[str] | None,
    typer.Option(
        "--override", help="A rule this shift may break: PUBLIC_HOLIDAY or APPROVED_LEAVE."
    ),
]
DryRun = Annotated[bool, typer.Option(help="Check the rules, change nothing.")]
BULK_BATCH = 25  # agents per BulkAssignShifts call: the progress bar moves in these steps
LEAVE_KINDS = {"annual": 1, "sick": 2, "unpaid": 3, "other": 4}
LEAVE_STATES = {"requested": 1, "approved": 2, "denied": 3, "cancelled": 4}


def _date(value: str, field: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise typer.BadParameter(f"{field}: a date YYYY-MM-DD, got {value!r}") from None


def _me(ctx: typer.Context, agent: str) -> str:
    """The agent given, or the caller (the token's subject)."""
    if agent:
        return agent
    subject = options(ctx).as_subject or token_subject(options(ctx).config().token)
    if not subject:
        raise typer.BadParameter("give an agent id (the token names no one)")
    return subject


def _leave_name(agent: str, leave: str) -> str:
    if leave.startswith("agents/"):
        return leave
    return f"{names.agent_name(agent)}/leaveRequests/{leave}"


# --- wfm roster ----------------------------------------------------------------------------
@handle_errors
def roster(
    ctx: typer.Context,
    *,
    agent: Annotated[str, typer.Argument(help="Agent id (default: you).")] = "",
    start: Annotated[str, typer.Option("--from", help="First date (default: today).")] = "",
    days: Annotated[int, typer.Option(help="How many days.", min=1, max=62)] = 14,
    team: Annotated[str, typer.Option(help="A team's week instead (with --week).")] = "",
    week: Annotated[str, typer.Option(help="With --team: the Monday (default: this week).")] = "",
    page_size: Annotated[
        int, typer.Option(help="With --team: agents per call (pages are all fetched).", min=1)
    ] = 200,
    json_out: JsonOption = False,
) -> None:
    """An agent's roster as a timeline across days, in the agent's and the client's time;
    with --team, every agent of a team for one week (one row per agent).

    Agents see their own published shifts; schedulers and team leaders see drafts too.

    Examples: wfm --as a-1001 roster --from 2026-11-23 --days 7

    wfm roster --team pune-night --week 2026-11-23
    """
    if team:
        _team_roster(ctx, team=team, week=week, page_size=min(page_size, 1000), json_out=json_out)
        return
    first = date.fromisoformat(_date(start, "--from")) if start else datetime.now(UTC).date()
    last = first + timedelta(days=days - 1)
    who = _me(ctx, agent)
    with client(ctx) as wfm:
        # From the day before: a night shift of that day runs into the first day's bar.
        found = wfm.roster.get_agent_roster(
            agent=names.agent_name(who),
            start_date=(first - timedelta(days=1)).isoformat(),
            end_date=last.isoformat(),
        )
    if json_out:
        print_json(to_dict(_from(found, first.isoformat())))
        return
    shown = [day for day in found.days if day.roster_date >= first.isoformat()]
    shifts = [shift for day in shown for shift in day.shifts]
    every = [shift for day in found.days for shift in day.shifts]
    zone = every[0].start_agent_local.time_zone if every else "UTC"
    client_zone = every[0].start_client_local.time_zone if every else ""
    console().print(
        roster_timeline(found, zone, client_zone, first=first.isoformat(), last=last.isoformat())
    )
    live = [s for s in shifts if s.state != roster_pb.SHIFT_STATE_CANCELLED]
    cancelled = f" ({len(shifts) - len(live)} cancelled)" if len(live) < len(shifts) else ""
    console().print(
        f"{len(live)} shifts{cancelled}, {sum(s.paid_minutes for s in live) / 60:.1f} paid "
        f"hours; █ work  ▒ break/lunch  · off"
    )


def _team_roster(
    ctx: typer.Context, *, team: str, week: str, page_size: int, json_out: bool
) -> None:
    monday = _date(week, "--week") if week else week_start_of(datetime.now(UTC).date())
    with client(ctx) as wfm:
        weeks = _team_pages(wfm, team=names.team_name(team), week=monday, page_size=page_size)
    if json_out:
        print_json({"team": names.team_name(team), "week_start": monday,
                    "agents": [to_dict(w) for w in weeks]})  # fmt: skip
        return
    table = Table(title=f"{team}, week of {monday}")
    for column in ("agent", "shifts", "paid", "contract", "agent time / client time"):
        table.add_column(column, no_wrap=True)
    for item in weeks:
        table.add_row(
            item.agent.removeprefix("agents/"),
            str(len(item.shifts)),
            f"{item.paid_minutes / 60:.1f}h",
            f"{item.weekly_minutes / 60:.1f}h",
            "\n".join(
                f"{s.roster_date} {_hm(s.start_agent_local)}-{_hm(s.end_agent_local)} / "
                f"{_hm(s.start_client_local)}-{_hm(s.end_client_local)} "
                f"{roster_pb.ShiftState.Name(s.state).removeprefix('SHIFT_STATE_').lower()}"
                for s in item.shifts
            )
            or "[yellow]not scheduled[/]",
        )
    console().print(table)
    unscheduled = sum(1 for w in weeks if not w.shifts)
    typer.echo(
        f"{len(weeks)} agents, {sum(len(w.shifts) for w in weeks)} shifts"
        + (f"; {unscheduled} not scheduled" if unscheduled else "")
    )


def _team_pages(wfm: Any, *, team: str, week: str, page_size: int) -> list[roster_pb.AgentWeek]:
    """Every page of the team's week, `page_size` agents per call."""
    weeks: list[roster_pb.AgentWeek] = []
    token, seen = "", set[str]()
    while True:
        page = wfm.roster.get_team_roster(
            team=team, week_start=week, page_size=page_size, page_token=token
        )
        weeks.extend(page.agents)
        token = next_page_token(page.next_page_token, seen)
        if not token:
            return weeks


def week_start_of(day: date) -> str:
    return (day - timedelta(days=day.weekday())).isoformat()


def _from(found: roster_pb.AgentRoster, first: str) -> roster_pb.AgentRoster:
    """The roster without the days before `first` (fetched only to draw the bars)."""
    trimmed = roster_pb.AgentRoster()
    trimmed.CopyFrom(found)
    del trimmed.days[:]
    trimmed.days.extend(day for day in found.days if day.roster_date >= first)
    return trimmed


# --- wfm shifts ----------------------------------------------------------------------------
@shifts_app.command("assign")
@handle_errors
def assign(
    ctx: typer.Context,
    *,
    agent: Annotated[str, typer.Argument(help="Agent id.")],
    roster_date: Annotated[str, typer.Option("--date", help="Roster date YYYY-MM-DD.")],
    pattern: Annotated[str, typer.Option(help="Shift pattern id.")] = "",
    start: Annotated[str, typer.Option(help="Local start HH:MM (instead of a pattern).")] = "",
    hours: Annotated[float, typer.Option(help="Length in hours (with --start).", min=0)] = 0,
    client_clock: Annotated[
        bool, typer.Option("--client-clock", help="--start is on the client's clock.")
    ] = False,
    shift_id: Annotated[str, typer.Option(help="Shift id (default: generated).")] = "",
    override: Override = None,
    dry_run: DryRun = False,
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Assign one shift to an agent (a draft until the week is published).

    Examples: wfm shifts assign a-1001 --date 2026-11-24 --pattern us-day

    wfm shifts assign a-1001 --date 2026-11-24 --start 18:30 --hours 9 --dry-run
    """
    spec = _spec(
        roster_date=roster_date,
        pattern=pattern,
        start=start,
        hours=hours,
        client_clock=client_clock,
        overrides=override or [],
    )
    with client(ctx) as wfm:
        change = wfm.roster.assign_shift(
            agent=names.agent_name(agent),
            shift_id=shift_id or _new_id("s", spec.roster_date, idempotency_key),
            shift=spec,
            dry_run=dry_run,
            idempotency_key=idempotency_key,
        )
    if json_out:
        print_json(to_dict(change))
        return
    _print_change(change)


def _spec(
    *,
    roster_date: str,
    pattern: str,
    start: str,
    hours: float,
    client_clock: bool,
    overrides: list[str],
) -> roster_pb.ShiftSpec:
    spec = roster_pb.ShiftSpec(
        roster_date=_date(roster_date, "--date"),
        shift_pattern=f"shiftPatterns/{pattern}" if pattern else "",
        start_local_time=start,
        length_minutes=round(hours * 60),
        anchor=roster_pb.ANCHOR_CLIENT if client_clock else roster_pb.ANCHOR_AGENT,
        overrides=overrides,
    )
    if pattern and not start:
        spec.ClearField("anchor")
    return spec


@shifts_app.command("update")
@handle_errors
def update(
    ctx: typer.Context,
    *,
    shift: Annotated[str, typer.Argument(help="Shift name, agents/{agent}/shifts/{shift}.")],
    roster_date: Annotated[str, typer.Option("--date", help="Roster date YYYY-MM-DD.")],
    pattern: Annotated[str, typer.Option(help="Shift pattern id.")] = "",
    start: Annotated[str, typer.Option(help="Local start HH:MM (instead of a pattern).")] = "",
    hours: Annotated[float, typer.Option(help="Length in hours (with --start).", min=0)] = 0,
    client_clock: Annotated[
        bool, typer.Option("--client-clock", help="--start is on the client's clock.")
    ] = False,
    override: Override = None,
    version: ExpectedVersionOption = 0,
    dry_run: DryRun = False,
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Move or change a shift: its new date and times in full (a pattern, or --start and
    --hours). With --dry-run, the rules the change would break are listed and nothing changes.

    Examples: wfm shifts update agents/a-1001/shifts/s-1 --date 2026-11-25 --pattern us-day

    wfm shifts update agents/a-1001/shifts/s-1 --date 2026-11-24 --start 20:00 --hours 8 --dry-run
    """
    spec = _spec(
        roster_date=roster_date,
        pattern=pattern,
        start=start,
        hours=hours,
        client_clock=client_clock,
        overrides=override or [],
    )
    with client(ctx) as wfm:
        change = wfm.roster.update_shift(
            name=shift,
            shift=spec,
            dry_run=dry_run,
            expected_version=version,
            idempotency_key=idempotency_key,
        )
    if json_out:
        print_json(to_dict(change))
    else:
        _print_change(change)
    if change.dry_run and change.violations:
        raise typer.Exit(exitcodes.FAILED_PRECONDITION)


def _print_change(change: roster_pb.ShiftChange) -> None:
    table = _shift_table(list(change.shifts))
    console().print(table)
    for rule in change.violations:
        typer.echo(f"  {rule.type} ({rule.subject}): {rule.description}")
    if change.dry_run:
        verdict = "would be refused" if change.violations else "would be accepted"
        typer.echo(f"dry run: nothing changed; the shift {verdict}")


def _shift_table(shifts: list[roster_pb.Shift]) -> Table:
    table = Table()
    for column in ("shift", "date", "agent time", "client time", "paid", "state"):
        table.add_column(column, no_wrap=True)
    for shift in shifts:
        table.add_row(
            shift.name,
            shift.roster_date,
            f"{_hm(shift.start_agent_local)}-{_hm(shift.end_agent_local)}",
            f"{_hm(shift.start_client_local)}-{_hm(shift.end_client_local)}",
            f"{shift.paid_minutes / 60:.1f}h",
            roster_pb.ShiftState.Name(shift.state).removeprefix("SHIFT_STATE_").lower(),
        )
    return table


def _hm(value: Any) -> str:
    return local_time(value)


@shifts_app.command("bulk-assign")
@handle_errors
def bulk_assign(
    ctx: typer.Context,
    *,
    pattern: Annotated[str, typer.Option(help="Shift pattern id.")],
    start: Annotated[str, typer.Option("--from", help="First roster date.")],
    end: Annotated[str, typer.Option("--to", help="Last roster date.")],
    agents: Annotated[
        list[str] | None, typer.Option("--agent", help="Agent id (repeatable).")
    ] = None,
    team: Annotated[str, typer.Option(help="Every agent of this team.")] = "",
    override: Override = None,
    dry_run: DryRun = False,
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Assign a pattern's shifts over a date range to many agents, with a progress bar and a
    result per agent (each agent's shifts go in whole or not at all).

    Example: wfm shifts bulk-assign --pattern us-day --team pune-night --from 2026-11-23
    --to 2026-12-06
    """
    first, last = _date(start, "--from"), _date(end, "--to")
    with client(ctx) as wfm:
        who = list(agents or [])
        if team:
            who += [a.name for a in wfm.directory.all_agents(team=team)]
        if not who:
            raise typer.BadParameter("give --agent or --team")
        results = _bulk(
            wfm,
            who,
            pattern=pattern,
            first=first,
            last=last,
            overrides=override or [],
            dry_run=dry_run,
            key=idempotency_key,
        )
    reply = roster_pb.BulkAssignShiftsResponse(
        assignments=[a for r in results for a in r.assignments],
        assigned_shifts=sum(r.assigned_shifts for r in results),
        refused_agents=sum(r.refused_agents for r in results),
    )
    if json_out:
        print_json(to_dict(reply))
    else:
        _print_bulk(reply, dry_run)
    if reply.refused_agents:
        raise typer.Exit(7)


def _bulk(
    wfm: Any,
    agents: list[str],
    *,
    pattern: str,
    first: str,
    last: str,
    overrides: list[str],
    dry_run: bool,
    key: str,
) -> list[roster_pb.BulkAssignShiftsResponse]:
    results = []
    batches = [agents[i : i + BULK_BATCH] for i in range(0, len(agents), BULK_BATCH)]
    with Progress(console=console(), transient=True, disable=not console().is_terminal) as bar:
        task = bar.add_task("assigning", total=len(agents))
        for number, batch in enumerate(batches):
            results.append(
                wfm.roster.bulk_assign_shifts(
                    shift_pattern=f"shiftPatterns/{pattern}",
                    agents=[names.agent_name(a) for a in batch],
                    start_date=first,
                    end_date=last,
                    overrides=overrides,
                    dry_run=dry_run,
                    idempotency_key=f"{key}-{number}" if key else "",
                )
            )
            bar.advance(task, len(batch))
    return results


def _print_bulk(reply: roster_pb.BulkAssignShiftsResponse, dry_run: bool) -> None:
    table = Table()
    for column in ("agent", "result", "shifts", "why"):
        table.add_column(column, no_wrap=column != "why")
    for item in reply.assignments:
        refused = bool(item.violations or item.error)
        why = "; ".join(f"{v.type} {v.subject}: {v.description}" for v in item.violations)
        table.add_row(
            item.agent.removeprefix("agents/"),
            "[red]refused[/]" if refused else "[green]ok[/]",
            str(len(item.shifts)),
            item.error or why,
        )
    console().print(table)
    prefix = "dry run, nothing changed: " if dry_run else ""
    typer.echo(
        f"{prefix}{reply.assigned_shifts} shifts for "
        f"{len(reply.assignments) - reply.refused_agents} agents; "
        f"{reply.refused_agents} agents refused"
    )


@shifts_app.command("publish")
@handle_errors
def publish(
    ctx: typer.Context,
    *,
    team: Annotated[str, typer.Argument(help="Team id.")],
    week: Annotated[str, typer.Option(help="The Monday of the week.")],
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Publish a team's draft shifts of one week (agents then see them).

    Example: wfm shifts publish pune-night --week 2026-11-23
    """
    with client(ctx) as wfm:
        reply = wfm.roster.publish_week(
            team=names.team_name(team),
            week_start=_date(week, "--week"),
            idempotency_key=idempotency_key,
        )
    if json_out:
        print_json(to_dict(reply))
        return
    typer.echo(f"published {reply.published_shifts} shifts for {len(reply.agents)} agents")


@shifts_app.command("cancel")
@handle_errors
def cancel(
    ctx: typer.Context,
    *,
    shift: Annotated[str, typer.Argument(help="Shift name, agents/{agent}/shifts/{shift}.")],
    reason: Annotated[str, typer.Option(help="Why (shown to the agent).")] = "",
    version: ExpectedVersionOption = 0,
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Cancel a shift. Example: wfm shifts cancel agents/a-1001/shifts/s-1 --reason "sick cover" """
    with client(ctx) as wfm:
        found = wfm.roster.cancel_shift(
            name=shift, reason=reason, expected_version=version, idempotency_key=idempotency_key
        )
    if json_out:
        print_json(to_dict(found))
        return
    console().print(_shift_table([found]))


# --- wfm leave -----------------------------------------------------------------------------
@leave_app.command("request")
@handle_errors
def request_leave(
    ctx: typer.Context,
    *,
    start: Annotated[str, typer.Option("--from", help="First day YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--to", help="Last day (default: --from).")] = "",
    kind: Annotated[str, typer.Option(help="annual, sick, unpaid or other.")] = "annual",
    note: Annotated[str, typer.Option(help="A note for the scheduler.")] = "",
    agent: Annotated[str, typer.Option(help="For this agent (default: you).")] = "",
    leave_id: Annotated[str, typer.Option(help="Request id (default: generated).")] = "",
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Ask for whole days off. Example: wfm --as a-1001 leave request --from 2026-12-24 --to
    2026-12-26 --note "family wedding"
    """
    if kind not in LEAVE_KINDS:
        raise typer.BadParameter(f"--kind: one of {', '.join(LEAVE_KINDS)}")
    first = _date(start, "--from")
    last = _date(end, "--to") if end else first
    with client(ctx) as wfm:
        found = wfm.roster.request_leave(
            agent=names.agent_name(_me(ctx, agent)),
            leave_request_id=leave_id or _new_id("l", first, idempotency_key),
            leave_request=roster_pb.LeaveRequest(
                kind=LEAVE_KINDS[kind],  # type: ignore[arg-type]
                start_date=first,
                end_date=last,
                note=note,
            ),
            idempotency_key=idempotency_key,
        )
    _show_leave([found], json_out, single=True)


def _new_id(prefix: str, day: str, idempotency_key: str) -> str:
    """`l-2026-12-24-3f9a1c`: the kind, the day, then a suffix from the idempotency key when one
    is given (a retry names the same shift or request), else a random one."""
    suffix = uuid.uuid5(uuid.NAMESPACE_URL, idempotency_key) if idempotency_key else uuid.uuid4()
    return f"{prefix}-{day}-{suffix.hex[:6]}"


@leave_app.command("list")
@handle_errors
def list_leave(
    ctx: typer.Context,
    *,
    team: Annotated[str, typer.Option(help="A team's requests.")] = "",
    agent: Annotated[str, typer.Option(help="One agent's requests.")] = "",
    state: Annotated[str, typer.Option(help="requested, approved or denied.")] = "",
    json_out: JsonOption = False,
) -> None:
    """Leave requests (state: requested, approved, denied or cancelled). Without --team or
    --agent: the team your token names (a team leader's), else your own.

    Example: wfm leave list --team pune-night --state requested
    """
    if state and state not in LEAVE_STATES:
        raise typer.BadParameter(f"--state: one of {', '.join(LEAVE_STATES)}")
    if team and agent:
        raise typer.BadParameter("give --team or --agent, not both")
    if not team and not agent:
        team = token_team(options(ctx).config().token)
        agent = "" if team else _me(ctx, "")
    whose = {"team": names.team_name(team)} if team else {"agent": names.agent_name(agent)}
    with client(ctx) as wfm:
        found = wfm.roster.all_pages(
            "list_leave_requests", "leave_requests", state=LEAVE_STATES.get(state, 0), **whose
        )
    _show_leave(found, json_out)


def _show_leave(found: list[roster_pb.LeaveRequest], json_out: bool, single: bool = False) -> None:
    if json_out:
        print_json(to_dict(found[0]) if single else {"leave_requests": [to_dict(r) for r in found]})
        return
    table = Table()
    # Days off the annual allowance: sick, unpaid and other leave take none.
    for column in ("leave request", "kind", "from", "to", "allowance days", "state", "note"):
        table.add_column(column, no_wrap=column != "note")
    for item in found:
        state = roster_pb.LeaveState.Name(item.state).removeprefix("LEAVE_STATE_").lower()
        table.add_row(
            item.name,
            roster_pb.LeaveKind.Name(item.kind).removeprefix("LEAVE_KIND_").lower(),
            item.start_date or _hm(item.start_agent_local),
            item.end_date or _hm(item.end_agent_local),
            f"{item.allowance_days:g}",
            {"approved": "[green]approved[/]", "denied": "[red]denied[/]"}.get(state, state),
            escape(item.decision_reason or item.note),  # typed text, not markup
        )
    console().print(table)


@leave_app.command("balance")
@handle_errors
def balance(
    ctx: typer.Context,
    *,
    agent: Annotated[str, typer.Argument(help="Agent id (default: you).")] = "",
    year: Annotated[int, typer.Option(help="Year (default: this one).", min=0, max=9999)] = 0,
    json_out: JsonOption = False,
) -> None:
    """Leave days allowed, taken, pending and remaining. Example: wfm --as a-1001 leave balance"""
    with client(ctx) as wfm:
        found = wfm.roster.get_leave_balance(
            agent=names.agent_name(_me(ctx, agent)), year=year or datetime.now(UTC).year
        )
    if json_out:
        print_json(to_dict(found))
        return
    typer.echo(
        f"{found.agent.removeprefix('agents/')} {found.year}: {found.allowance_days} days "
        f"allowed, {found.taken_days:g} taken, {found.pending_days:g} pending, "
        f"{found.remaining_days:g} remaining ({found.public_holidays} public holidays)"
    )


@leave_app.command("approve")
@handle_errors
def approve(
    ctx: typer.Context,
    *,
    leave: Annotated[str, typer.Argument(help="agents/{agent}/leaveRequests/{id}.")],
    version: ExpectedVersionOption = 0,
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Approve a leave request. Example: wfm leave approve agents/a-1001/leaveRequests/xmas"""
    with client(ctx) as wfm:
        found = wfm.roster.approve_leave(
            name=leave, expected_version=version, idempotency_key=idempotency_key
        )
    _show_leave([found], json_out, single=True)


@leave_app.command("deny")
@handle_errors
def deny(
    ctx: typer.Context,
    *,
    leave: Annotated[str, typer.Argument(help="agents/{agent}/leaveRequests/{id}.")],
    reason: Annotated[str, typer.Option(help="Why (shown to the agent).")],
    version: ExpectedVersionOption = 0,
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Deny a leave request. Example: wfm leave deny agents/a-1001/leaveRequests/xmas --reason
    "peak week"
    """
    with client(ctx) as wfm:
        found = wfm.roster.deny_leave(
            name=leave, reason=reason, expected_version=version, idempotency_key=idempotency_key
        )
    _show_leave([found], json_out, single=True)


@leave_app.command("cancel")
@handle_errors
def cancel_leave(
    ctx: typer.Context,
    *,
    leave: Annotated[str, typer.Argument(help="agents/{agent}/leaveRequests/{id}, or the id.")],
    reason: Annotated[str, typer.Option(help="Why (at most 500 characters).")] = "",
    agent: Annotated[str, typer.Option(help="Whose request, when only an id is given.")] = "",
    version: ExpectedVersionOption = 0,
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Withdraw a leave request (an agent their own; schedulers anyone's).

    Examples: wfm --as a-1001 leave cancel xmas --reason "plans changed"

    wfm leave cancel agents/a-1001/leaveRequests/xmas
    """
    name = leave if leave.startswith("agents/") else _leave_name(_me(ctx, agent), leave)
    with client(ctx) as wfm:
        found = wfm.roster.cancel_leave(
            name=name, reason=reason, expected_version=version, idempotency_key=idempotency_key
        )
    _show_leave([found], json_out, single=True)


# --- wfm coverage --------------------------------------------------------------------------
@handle_errors
def coverage(
    ctx: typer.Context,
    *,
    team: Annotated[str, typer.Argument(help="Team id.")],
    day: Annotated[str, typer.Option("--date", help="Date (default: today).")] = "",
    days: Annotated[int, typer.Option(help="How many days.", min=1, max=14)] = 1,
    json_out: JsonOption = False,
) -> None:
    """Scheduled against required agents per interval; understaffed intervals in red.

    Example: wfm coverage pune-night --date 2026-11-24
    """
    first = date.fromisoformat(_date(day, "--date")) if day else datetime.now(UTC).date()
    with client(ctx) as wfm:
        found = wfm.roster.get_coverage(
            team=names.team_name(team),
            start_date=first.isoformat(),
            end_date=(first + timedelta(days=days - 1)).isoformat(),
        )
    if json_out:
        print_json(to_dict(found))
        return
    if not any(i.required or i.scheduled for i in found.intervals):
        last = first + timedelta(days=days - 1)
        span = f"on {first}" if days == 1 else f"from {first} to {last}"
        typer.echo(f"{team}: nobody required or scheduled {span} (client time)")
        return
    console().print(coverage_chart(found))
    short = [i for i in found.intervals if i.gap > 0]
    typer.echo(f"{len(short)} of {len(found.intervals)} intervals understaffed")


@handle_errors
def set_coverage(
    ctx: typer.Context,
    *,
    team: Annotated[str, typer.Argument(help="Team id.")],
    day: Annotated[str, typer.Option("--date", help="One date YYYY-MM-DD.")] = "",
    weekday: Annotated[str, typer.Option(help="Or a weekday template: mon..sun.")] = "",
    interval: Annotated[int, typer.Option(help="Interval minutes: 15 or 30.")] = 30,
    values: Annotated[
        Path | None,
        typer.Option("--file", help="Agents per interval from 00:00: numbers, or a JSON list."),
    ] = None,
    value: Annotated[
        int | None, typer.Option(help="A flat number of agents for --from..--to.", min=0)
    ] = None,
    start: Annotated[str, typer.Option("--from", help="With --value: local HH:MM.")] = "00:00",
    end: Annotated[str, typer.Option("--to", help="With --value: local HH:MM (24:00).")] = "24:00",
    forecast: Annotated[
        Path | None,
        typer.Option(
            help="A JSON forecast for Erlang C: contacts (per interval), "
            "average_handle_seconds, service_level, target_answer_seconds."
        ),
    ] = None,
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Set the agents a team needs per interval of a local day (client clock), for one date or
    a weekday template: from a file, as a flat value for a time range (0 outside it), or from a
    contact forecast (Erlang C sizes each interval).

    Examples: wfm coverage set pune-night --weekday mon --value 12 --from 18:00 --to 03:00

    wfm coverage set pune-night --date 2026-11-24 --interval 15 --file required.txt

    wfm coverage set pune-night --date 2026-11-24 --forecast forecast.json
    """
    if bool(day) == bool(weekday):
        raise typer.BadParameter("give exactly one of --date and --weekday")
    if weekday and weekday.lower() not in WEEKDAYS:
        raise typer.BadParameter(f"--weekday: one of {', '.join(WEEKDAYS)}")
    if [values, value, forecast].count(None) != 2:
        raise typer.BadParameter("give exactly one of --file, --value and --forecast")
    request = roster_pb.SetCoverageRequirementRequest(
        team=names.team_name(team),
        date=_date(day, "--date") if day else "",
        weekday=weekday.lower(),
        interval_minutes=interval,
        idempotency_key=idempotency_key,
    )
    if values is not None:
        request.required.extend(_numbers(values))
    elif value is not None:
        request.required.extend(flat_requirement(value, start=start, end=end, interval=interval))
    elif forecast is not None:
        request.forecast.CopyFrom(_forecast(forecast))
    with client(ctx) as wfm:
        found = wfm.roster.set_coverage_requirement(request)
    if json_out:
        print_json(to_dict(found))
        return
    peak = max(found.required, default=0)
    staffed = sum(1 for n in found.required if n)
    typer.echo(
        f"{found.name}: {len(found.required)} intervals of {found.interval_minutes} min, "
        f"{staffed} staffed, peak {peak} agents (version {found.version})"
    )


def flat_requirement(value: int, *, start: str, end: str, interval: int) -> list[int]:
    """`value` for the intervals starting in [start, end) of the day, 0 elsewhere; an end at or
    before the start runs past midnight (a night team: 18:00-03:00)."""
    if interval <= 0 or 1440 % interval:
        raise typer.BadParameter("--interval: 15 or 30")
    with bad_input("--from"):
        first = parse_clock(start, end_of_day=True)
    with bad_input("--to"):
        last = parse_clock(end, end_of_day=True)
    starts = range(0, 1440, interval)
    if first < last:
        return [value if first <= m < last else 0 for m in starts]
    return [value if m >= first or m < last else 0 for m in starts]


def _numbers(path: Path) -> list[int]:
    text = read_file(path, "--file").strip()
    try:
        parsed = json.loads(text) if text.startswith("[") else text.replace(",", " ").split()
        return [int(item) for item in parsed]
    except (ValueError, TypeError):
        raise typer.BadParameter(
            f"{path}: whole numbers (one per interval), or a JSON list of them"
        ) from None


def _forecast(path: Path) -> roster_pb.Forecast:
    try:
        return json_format.Parse(read_file(path, "--forecast"), roster_pb.Forecast())
    except json_format.ParseError as exc:
        raise typer.BadParameter(f"{path}: not a forecast ({exc})") from None


def register(app: typer.Typer) -> None:
    app.command("roster")(roster)
    coverage_app.command("show")(coverage)
    coverage_app.command("set")(set_coverage)
    app.add_typer(coverage_app, name="coverage")
    app.add_typer(shifts_app, name="shifts")
    app.add_typer(leave_app, name="leave")
