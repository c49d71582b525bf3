"""The workforce directory: `wfm teams create|update|list|get`,
`wfm agents create|update|list|get`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from wfm.scheduling.v1 import directory_service_pb2 as directory_pb

from wfm_cli.context import (
    AllPagesOption,
    ExpectedVersionOption,
    JsonOption,
    KeyOption,
    PageSizeOption,
    PageTokenOption,
    bad_input,
    client,
    console,
    handle_errors,
    print_json,
    print_more,
    to_dict,
)
from wfm_cli.schedule_syntax import (
    opening_words,
    parse_operating_hours,
    parse_weekdays,
    weekday_words,
)
from wfm_sdk import names

teams_app = typer.Typer(help="Teams: a group of agents serving one client.", no_args_is_help=True)
agents_app = typer.Typer(help="Agents in the directory.", no_args_is_help=True)

NameOption = Annotated[str | None, typer.Option("--name", help="Display name.")]


def _contract(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        names.parse_contract(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


def _minutes(hours: float | None) -> int | None:
    return None if hours is None else round(hours * 60)


def _working_days(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return parse_weekdays(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


# --- teams ---------------------------------------------------------------------------------
OpenOption = Annotated[
    list[str] | None,
    typer.Option(
        "--open",
        help="Operating hours on the client's clock (repeatable): DAYS like mon-fri, mon,wed,sat "
        "or thu-mon; an end before the start runs past midnight ('mon-fri 18:30-03:30'), "
        "24:00 ends the day. Days not given are closed.",
        metavar="'DAYS HH:MM-HH:MM'",
    ),
]
RestOption = Annotated[
    float | None,
    typer.Option(
        help="Minimum rest between two shifts of an agent, hours (0: the default, 11).",
        min=0,
        max=24,
    ),
]


@teams_app.command("create")
@handle_errors
def create_team(
    ctx: typer.Context,
    *,
    team_id: Annotated[str, typer.Argument(help="1-63 of a-z, 0-9 and '-', e.g. pune-night.")],
    name: Annotated[str, typer.Option("--name", help="Display name.")],
    client_zone: Annotated[
        str, typer.Option(help="IANA zone of the client, e.g. America/New_York.")
    ],
    client_name: Annotated[str, typer.Option("--client", help="Client served.")] = "",
    opening: OpenOption = None,
    min_rest_hours: RestOption = None,
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Create a team. Without --open its shifts are not limited to operating hours.

    Example: wfm teams create pune-night --name "Pune US night" --client-zone America/New_York
    --client acme-telecom --open "mon-fri 08:00-17:00" --min-rest-hours 12
    """
    with bad_input("--open"):
        windows = parse_operating_hours(opening or [])
    with client(ctx) as wfm:
        team = wfm.directory.create_team(
            team_id,
            display_name=name,
            client_time_zone=client_zone,
            client=client_name,
            operating_hours=windows,
            min_rest_minutes=_minutes(min_rest_hours) or 0,
            idempotency_key=idempotency_key or None,
        )
    _show_teams([team], json_out, single=True)


@teams_app.command("update")
@handle_errors
def update_team(
    ctx: typer.Context,
    *,
    team_id: Annotated[str, typer.Argument(help="Team id.")],
    name: NameOption = None,
    client_name: Annotated[str | None, typer.Option("--client", help="Client served.")] = None,
    opening: OpenOption = None,
    no_hours: Annotated[
        bool,
        typer.Option("--no-hours", help="Clear the operating hours: shifts are not limited."),
    ] = False,
    min_rest_hours: RestOption = None,
    expected_version: ExpectedVersionOption = 0,
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Change a team's name, client, operating hours or minimum rest (only those given; --open
    replaces the whole week). Shifts already assigned are not checked again.

    Examples: wfm teams update uk-wfh --open "mon-sun 08:00-23:00" --version 3

    wfm teams update pune-night --open "mon-fri 18:30-03:30" --min-rest-hours 12

    wfm teams update pune-night --no-hours
    """
    if opening and no_hours:
        raise typer.BadParameter("give --open or --no-hours, not both")
    with bad_input("--open"):
        windows = parse_operating_hours(opening) if opening else None
    given = (name, client_name, windows, min_rest_hours)
    if not no_hours and all(value is None for value in given):
        raise typer.BadParameter("nothing to change: give at least one of the field options")
    with client(ctx) as wfm:
        team = wfm.directory.update_team(
            team_id,
            display_name=name,
            client=client_name,
            operating_hours=[] if no_hours else windows,
            min_rest_minutes=_minutes(min_rest_hours),
            expected_version=expected_version,
            idempotency_key=idempotency_key or None,
        )
    _show_teams([team], json_out, single=True)


@teams_app.command("get")
@handle_errors
def get_team(
    ctx: typer.Context,
    *,
    team: Annotated[str, typer.Argument(help="Team id.")],
    json_out: JsonOption = False,
) -> None:
    """Show one team. Example: wfm teams get pune-night"""
    with client(ctx) as wfm:
        found = wfm.directory.get_team(team)
    _show_teams([found], json_out, single=True)


@teams_app.command("list")
@handle_errors
def list_teams(
    ctx: typer.Context,
    *,
    page_size: PageSizeOption = 0,
    page_token: PageTokenOption = "",
    all_pages: AllPagesOption = False,
    json_out: JsonOption = False,
) -> None:
    """List teams. Example: wfm teams list --all --json"""
    with client(ctx) as wfm:
        if all_pages:
            page = directory_pb.ListTeamsResponse(teams=wfm.directory.all_teams())
        else:
            page = wfm.directory.list_teams(page_size=page_size, page_token=page_token)
    if json_out:
        print_json(to_dict(page))
        return
    _show_teams(list(page.teams), False)
    print_more(page.next_page_token)


def _show_teams(teams: list[directory_pb.Team], json_out: bool, single: bool = False) -> None:
    if json_out:
        print_json(to_dict(teams[0]) if single else {"teams": [to_dict(t) for t in teams]})
        return
    table = Table()
    columns = ("team", "name", "client", "client zone", "open (client clock)", "min rest")
    for column in (*columns, "version"):
        table.add_column(column, no_wrap=True)
    for team in teams:
        table.add_row(
            team.name.removeprefix("teams/"),
            escape(team.display_name),
            team.client,
            team.client_time_zone,
            "\n".join(opening_words(team.operating_hours)) or "any time",
            f"{team.min_rest_minutes / 60:g}h" if team.min_rest_minutes else "11h (default)",
            str(team.version),
        )
    console().print(table)


# --- agents --------------------------------------------------------------------------------
TeamOption = Annotated[str | None, typer.Option("--team", "-t", help="Team id.")]
SiteOption = Annotated[str | None, typer.Option(help="Site, e.g. pune, uk-wfh.")]
ZoneOption = Annotated[
    str | None, typer.Option("--zone", help="Agent's home IANA zone, e.g. Asia/Kolkata.")
]
ContractOption = Annotated[
    str | None,
    typer.Option(
        help="full-time or part-time.",
        callback=_contract,
        autocompletion=lambda: list(names.CONTRACTS),
    ),
]
WorkingDaysOption = Annotated[
    str | None,
    typer.Option(
        help="The contract's working days, e.g. mon-fri, sun-thu or mon,wed,fri (default "
        "mon-fri): whole days of annual leave take only these from the allowance.",
        metavar="DAYS",
    ),
]
HoursOption = Annotated[
    float | None,
    typer.Option(
        help="Contracted weekly hours (full time) or the weekly cap (part time).", min=0, max=168
    ),
]


@agents_app.command("create")
@handle_errors
def create_agent(
    ctx: typer.Context,
    *,
    agent_id: Annotated[str, typer.Argument(help="Employee id, e.g. a-1001.")],
    name: Annotated[str, typer.Option("--name", help="Display name.")],
    team: Annotated[str, typer.Option("--team", "-t", help="Team id.")],
    zone: Annotated[str, typer.Option("--zone", help="Home IANA zone, e.g. Asia/Kolkata.")],
    site: Annotated[str, typer.Option(help="Site, e.g. pune, uk-wfh.")] = "",
    weekly_hours: Annotated[
        float,
        typer.Option(
            help="Contracted weekly hours (full time) or the weekly cap (part time).",
            min=0,
            max=168,
        ),
    ],
    contract: ContractOption = "full-time",
    working_days: WorkingDaysOption = None,
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Register an agent.

    Example: wfm agents create a-1001 --name "Asha Patil" --team pune-night --zone Asia/Kolkata
    --site pune --contract full-time --weekly-hours 45 --working-days mon-fri
    """
    days = _working_days(working_days)
    with client(ctx) as wfm:
        agent = wfm.directory.create_agent(
            agent_id,
            display_name=name,
            team=team,
            time_zone=zone,
            site=site,
            contract_type=contract or "full-time",
            weekly_minutes=round(weekly_hours * 60),
            working_days=days or (),
            idempotency_key=idempotency_key or None,
        )
    _show_agents([agent], json_out, single=True)


@agents_app.command("update")
@handle_errors
def update_agent(
    ctx: typer.Context,
    *,
    agent_id: Annotated[str, typer.Argument(help="Employee id.")],
    name: NameOption = None,
    team: TeamOption = None,
    site: SiteOption = None,
    zone: ZoneOption = None,
    contract: ContractOption = None,
    weekly_hours: HoursOption = None,
    working_days: WorkingDaysOption = None,
    expected_version: ExpectedVersionOption = 0,
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Change an agent's directory fields (only those given).

    Example: wfm agents update a-1001 --team uk-wfh --zone Europe/London --expected-version 1
    """
    given = (name, team, site, zone, contract, weekly_hours, working_days)
    if all(value is None for value in given):
        raise typer.BadParameter("nothing to change: give at least one of the field options")
    days = _working_days(working_days)
    with client(ctx) as wfm:
        agent = wfm.directory.update_agent(
            agent_id,
            display_name=name,
            team=team,
            site=site,
            time_zone=zone,
            contract_type=contract,
            weekly_minutes=_minutes(weekly_hours),
            working_days=days,
            expected_version=expected_version,
            idempotency_key=idempotency_key or None,
        )
    _show_agents([agent], json_out, single=True)


@agents_app.command("get")
@handle_errors
def get_agent(
    ctx: typer.Context,
    *,
    agent_id: Annotated[str, typer.Argument(help="Employee id.")],
    json_out: JsonOption = False,
) -> None:
    """Show one agent. Example: wfm agents get a-1001"""
    with client(ctx) as wfm:
        agent = wfm.directory.get_agent(agent_id)
    _show_agents([agent], json_out, single=True)


@agents_app.command("list")
@handle_errors
def list_agents(
    ctx: typer.Context,
    *,
    team: Annotated[str, typer.Option("--team", "-t", help="Only this team.")] = "",
    page_size: PageSizeOption = 0,
    page_token: PageTokenOption = "",
    all_pages: AllPagesOption = False,
    json_out: JsonOption = False,
) -> None:
    """List agents. Example: wfm agents list --team uk-wfh --all"""
    with client(ctx) as wfm:
        if all_pages:
            page = directory_pb.ListAgentsResponse(agents=wfm.directory.all_agents(team=team))
        else:
            page = wfm.directory.list_agents(team=team, page_size=page_size, page_token=page_token)
    if json_out:
        print_json(to_dict(page))
        return
    _show_agents(list(page.agents), False)
    print_more(page.next_page_token)


def _show_agents(agents: list[directory_pb.Agent], json_out: bool, single: bool = False) -> None:
    if json_out:
        print_json(to_dict(agents[0]) if single else {"agents": [to_dict(a) for a in agents]})
        return
    table = Table()
    columns = ("agent", "name", "team", "site", "zone", "contract", "weekly", "days", "version")
    for column in columns:
        table.add_column(column, no_wrap=True)
    for agent in agents:
        table.add_row(
            agent.name.removeprefix("agents/"),
            escape(agent.display_name),
            agent.team.removeprefix("teams/"),
            agent.site,
            agent.time_zone,
            names.contract_words(agent.contract_type),
            f"{agent.weekly_minutes / 60:g}h",
            weekday_words(agent.working_days or range(1, 6)),
            str(agent.version),
        )
    console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(teams_app, name="teams")
    app.add_typer(agents_app, name="agents")
