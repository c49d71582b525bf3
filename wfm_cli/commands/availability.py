"""Agents' statuses: `wfm status set|get|list`, the live `wfm board`, and `wfm history`."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Generator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.live import Live
from rich.table import Table
from wfm.availability.v1 import availability_service_pb2 as availability_pb

from wfm_cli import render
from wfm_cli.board import Board, follow
from wfm_cli.context import (
    JsonOption,
    KeyOption,
    OptionalVersionOption,
    client,
    console,
    handle_errors,
    options,
    print_json,
    to_dict,
    token_claims,
    token_subject,
)
from wfm_sdk import names

WatchMessage = availability_pb.WatchAvailabilityResponse
status_app = typer.Typer(help="Set and see agents' statuses.", no_args_is_help=True)


def _status(value: str) -> str:
    try:
        names.parse_status(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


def _complete_status(incomplete: str) -> list[str]:
    return [s for s in names.STATUSES if s.startswith(incomplete)]


def _one_agent(named: str, option: str) -> str:
    """The agent given first or with --agent (the same one if both)."""
    if named and option and named != option:
        raise typer.BadParameter(f"two agents given: {named} and --agent {option}")
    return named or option


def _agent_or_me(ctx: typer.Context, agent: str) -> str:
    """The agent named, else the subject of the caller's token (an agent's own status)."""
    if agent:
        return agent
    subject = options(ctx).as_subject or token_subject(options(ctx).config().token)
    if not subject:
        raise typer.BadParameter("give --agent (no token subject to default to)")
    return subject


def reason_code(words: str) -> str:
    """What an agent types (`team huddle`, `system-down`) as the code the service keeps
    (`TEAM_HUDDLE`, `SYSTEM_DOWN`); anything else is left for the service to judge."""
    return re.sub(r"[\s-]+", "_", words.strip()).upper()


def _team_or_mine(ctx: typer.Context, team: str) -> str:
    """The team named, else a team leader's one team (from the token): a team leader may see
    only their own teams, and `wfm board` alone should show theirs. Others see every team."""
    if team:
        return team
    claims = token_claims(options(ctx).config().token)
    roles, teams = set(claims.get("roles") or ()), list(claims.get("teams") or ())
    if "team_leader" in roles and not roles & {"admin", "scheduler"} and len(teams) == 1:
        return str(teams[0])
    return ""


AgentOption = Annotated[
    str, typer.Option("--agent", "-a", help="Agent id (default: you, from your token).")
]
# `wfm history a-1001` as `wfm roster a-1001`: the agent may also come first, unnamed.
AgentArgument = Annotated[
    str,
    typer.Argument(
        help="Agent id, as --agent (default: you).", metavar="AGENT", show_default=False
    ),
]
TeamOption = Annotated[
    str,
    typer.Option(
        "--team", "-t", help="Team id, e.g. pune-night (default: a team leader's own team)."
    ),
]
StatusArgument = Annotated[
    str,
    typer.Argument(
        help=f"One of: {', '.join(names.STATUSES)} (also acw, ready).",
        callback=_status,
        autocompletion=_complete_status,
        show_default=False,
        metavar="STATUS",
    ),
]


@status_app.command("set")
@handle_errors
def set_status(
    ctx: typer.Context,
    *,
    status: StatusArgument,
    agent: AgentOption = "",
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            "-r",
            help="Reason code, e.g. SCHEDULED_BREAK ('team huddle' is sent as TEAM_HUDDLE).",
        ),
    ] = "",
    expected_version: OptionalVersionOption = None,
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Set a status: your own (from your token), or --agent's.

    Examples:

      wfm status set break --reason SCHEDULED_BREAK

      wfm status set available --agent a-1001
    """
    who = _agent_or_me(ctx, agent)
    with client(ctx) as wfm:
        result = wfm.availability.set_status(
            who,
            status,
            reason_code=reason_code(reason),
            idempotency_key=idempotency_key or None,
            expected_version=expected_version,
        )
    if json_out:
        print_json(to_dict(result))
        return
    _print_one(result)


def _print_one(row: availability_pb.Availability) -> None:
    out = console()
    out.print(
        f"{row.agent_id} is [bold]{names.status_words(row.status)}[/bold]"
        + (f" ({row.reason_code})" if row.reason_code else "")
        + f" since {render.local_time(row.since_agent_local)} agent time"
        + f", {render.local_time(row.since_client_local)} client time"
        + f" (version {row.version})",
        highlight=False,
    )


@status_app.command("get")
@handle_errors
def get_status(
    ctx: typer.Context,
    named: AgentArgument = "",
    agent: AgentOption = "",
    json_out: JsonOption = False,
) -> None:
    """Show one agent's current status (yours by default).

    Example: wfm status get a-1001
    """
    who = _agent_or_me(ctx, _one_agent(named, agent))
    with client(ctx) as wfm:
        result = wfm.availability.get_availability(who)
    if json_out:
        print_json(to_dict(result))
        return
    _print_one(result)


@status_app.command("list")
@handle_errors
def list_statuses(
    ctx: typer.Context,
    *,
    team: TeamOption = "",
    status: Annotated[
        str | None,
        typer.Option("--status", "-s", help="Only this status.", autocompletion=_complete_status),
    ] = None,
    page_size: Annotated[int, typer.Option(help="At most this many (0: the server's 50).")] = 0,
    page_token: Annotated[str, typer.Option(help="Continue from a previous page.")] = "",
    all_pages: Annotated[bool, typer.Option("--all", help="Every page, not just one.")] = False,
    json_out: JsonOption = False,
) -> None:
    """List current statuses, by team and status.

    Example: wfm status list --team pune-night --status break
    """
    if status is not None:
        _status(status)
    team = _team_or_mine(ctx, team)
    with client(ctx) as wfm:
        if all_pages:
            found = wfm.availability.all_availability(team=team, status=status)
            page = availability_pb.ListAvailabilityResponse(availabilities=found)
        else:
            page = wfm.availability.list_availability(
                team=team, status=status, page_size=page_size, page_token=page_token
            )
    if json_out:
        print_json(to_dict(page))
        return
    rows = list(page.availabilities)
    out = console()
    out.print(render.board_table(rows))
    out.print(render.board_summary(rows), highlight=False)
    if page.next_page_token:
        out.print(f"more: --page-token {page.next_page_token}", highlight=False)


def board(
    ctx: typer.Context,
    *,
    team: TeamOption = "",
    once: Annotated[bool, typer.Option("--once", help="Print the board once and exit.")] = False,
    json_out: JsonOption = False,
) -> None:
    """The live status board of a team (every team if none): the board as it stands, then
    updated on every change until Ctrl-C. With --json: one JSON object per line (the snapshot,
    then each change).

    Examples:

      wfm board --team pune-night

      wfm board --team uk-wfh --once --json
    """
    team = _team_or_mine(ctx, team)
    title = f"board: {names.team_name(team) or 'every team'}"
    with client(ctx) as wfm:

        def watch() -> Generator[WatchMessage, None, None]:
            return wfm.availability.watch_availability(team=team)

        with contextlib.closing(watch()) as stream:
            first = next(stream)  # a refusal (bad team, no permission) ends here, with its code
            if once:
                _print_board(list(first.snapshot.availabilities), title, json_out)
            elif json_out:
                _stream_json(first, stream)
            else:
                _live_board(first, stream, watch, title)


def _print_board(rows: list[availability_pb.Availability], title: str, json_out: bool) -> None:
    if json_out:
        print_json({"availabilities": [to_dict(r) for r in sorted(rows, key=_board_order)]})
        return
    out = console()
    out.print(render.board_table(rows, title))
    out.print(render.board_summary(rows), highlight=False)


def _board_order(row: availability_pb.Availability) -> tuple[str, str]:
    return (row.team, row.agent_id)


def _stream_json(first: WatchMessage, stream: Iterator[WatchMessage]) -> None:
    typer.echo(json.dumps(to_dict(first)))
    try:
        for message in stream:
            typer.echo(json.dumps(to_dict(message)))
    except KeyboardInterrupt:
        return


def _live_board(
    first: WatchMessage,
    stream: Iterator[WatchMessage],
    reopen: Callable[[], Iterator[WatchMessage]],
    title: str,
) -> None:
    """Redrawn four times a second (so "for" keeps counting) and on every change; reconnects
    when the service goes away and comes back."""
    state = Board()
    state.apply(first)

    def table() -> Table:
        rows, note = state.current()
        heading = f"{title} - {render.board_summary(rows)}" + (f" - {note}" if note else "")
        return render.board_table(rows, heading)

    try:
        with Live(get_renderable=table, console=console(), refresh_per_second=4) as live:
            follow(state, stream, reopen, redraw=live.refresh)
    except KeyboardInterrupt:
        return


def history(
    ctx: typer.Context,
    named: AgentArgument = "",
    *,
    agent: AgentOption = "",
    hours: Annotated[
        float, typer.Option(help="How far back from now (at most 31 days).", min=0, max=744)
    ] = 12.0,
    start: Annotated[
        datetime | None,
        typer.Option(help="Start (UTC unless it has an offset); beats --hours."),
    ] = None,
    end: Annotated[datetime | None, typer.Option(help="End (default: now).")] = None,
    json_out: JsonOption = False,
) -> None:
    """An agent's status history: each segment on the agent's and the client's clock, time
    per status, productive time.

    Examples:

      wfm history                       # your last 12 hours

      wfm history a-1001 --start 2026-11-23T00:00 --end 2026-11-24T00:00
    """
    who = _agent_or_me(ctx, _one_agent(named, agent))
    now = datetime.now(UTC)
    # Without --end the range runs a minute past now, so the current status shows as ongoing.
    until = _utc(end) if end else now + timedelta(minutes=1)
    since = _utc(start) if start else now - timedelta(hours=hours)
    with client(ctx) as wfm:
        result = wfm.availability.get_status_history(who, start=since, end=until)
    if json_out:
        print_json(to_dict(result))
        return
    out = console()
    out.print(render.history_table(result, f"history of {names.agent_id(who)}"))
    totals = ", ".join(
        f"{names.status_words(t.status)} {render.duration(t.duration)}" for t in result.totals
    )
    out.print(
        f"productive {render.duration(result.productive_duration)} of "
        f"{render.duration(result.covered_duration)} covered; {totals or 'no time recorded'}",
        highlight=False,
    )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def register(app: typer.Typer) -> None:
    app.add_typer(status_app, name="status")
    app.command("board")(handle_errors(board))
    app.command("history")(handle_errors(history))
