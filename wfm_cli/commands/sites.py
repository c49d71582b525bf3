"""What a scheduler sets up before rostering (RosterService): `wfm sites
create|get|list|holidays` and `wfm patterns create|get|list`."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from wfm.scheduling.v1 import roster_service_pb2 as roster_pb

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
    read_file,
    to_dict,
)
from wfm_cli.schedule_syntax import (
    DAY_MINUTES,
    WEEKDAYS,
    activity_words,
    clock_words,
    holiday_lines,
    holidays_of_year,
    parse_activity,
    parse_clock,
    parse_weekdays,
    weekday_words,
)

sites_app = typer.Typer(
    help="Sites: where agents work from, their zone and public holidays.", no_args_is_help=True
)
patterns_app = typer.Typer(
    help="Shift patterns: reusable shifts for `wfm shifts assign|bulk-assign --pattern`.",
    no_args_is_help=True,
)


def _activity_option(flag: str, what: str) -> Any:
    return typer.Option(flag, help=f"{what} (repeatable).", metavar="OFFSET:LENGTH[:paid|unpaid]")


def site_name(site: str) -> str:
    """`pune` or `sites/pune` -> `sites/pune`."""
    return site if site.startswith("sites/") else f"sites/{site}"


def pattern_name(pattern: str) -> str:
    """`us-day` or `shiftPatterns/us-day` -> `shiftPatterns/us-day`."""
    return pattern if pattern.startswith("shiftPatterns/") else f"shiftPatterns/{pattern}"


# --- wfm sites -----------------------------------------------------------------------------
@sites_app.command("create")
@handle_errors
def create_site(
    ctx: typer.Context,
    *,
    site_id: Annotated[str, typer.Argument(help="The id agents name as their site, e.g. pune.")],
    name: Annotated[str, typer.Option("--name", help="Display name.")],
    zone: Annotated[str, typer.Option(help="IANA zone of the site, e.g. Asia/Kolkata.")],
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Create a site (then its public holidays with `wfm sites holidays`).

    Example: wfm sites create pune --name "Pune" --zone Asia/Kolkata
    """
    with client(ctx) as wfm:
        site = wfm.roster.create_site(
            site_id=site_id,
            site=roster_pb.Site(display_name=name, time_zone=zone),
            idempotency_key=idempotency_key,
        )
    _show_site(site, json_out)


@sites_app.command("get")
@handle_errors
def get_site(
    ctx: typer.Context,
    *,
    site: Annotated[str, typer.Argument(help="Site id.")],
    year: Annotated[int, typer.Option(help="Only this year's holidays (0: every year).")] = 0,
    json_out: JsonOption = False,
) -> None:
    """A site, its zone, version and public holidays. Example: wfm sites get pune --year 2026"""
    with client(ctx) as wfm:
        found = wfm.roster.get_site(name=site_name(site))
    _show_site(_of_year(found, year), json_out, year=year)


@sites_app.command("list")
@handle_errors
def list_sites(
    ctx: typer.Context,
    *,
    page_size: PageSizeOption = 0,
    page_token: PageTokenOption = "",
    all_pages: AllPagesOption = False,
    json_out: JsonOption = False,
) -> None:
    """Sites by id: zone, public holidays per year, version. Example: wfm sites list --all"""
    with client(ctx) as wfm:
        if all_pages:
            page = roster_pb.ListSitesResponse(sites=wfm.roster.all_pages("list_sites", "sites"))
        else:
            page = wfm.roster.list_sites(page_size=page_size, page_token=page_token)
    if json_out:
        print_json(to_dict(page))
        return
    if page.sites:
        table = Table()
        for column in ("site", "name", "zone", "public holidays", "version"):
            table.add_column(column, no_wrap=True)
        for site in page.sites:
            table.add_row(
                site.name.removeprefix("sites/"),
                site.display_name,
                site.time_zone,
                _holidays_per_year(site),
                str(site.version),
            )
        console().print(table)
    else:
        typer.echo("no sites")
    print_more(page.next_page_token)


def _holidays_per_year(site: roster_pb.Site) -> str:
    """`2027: 2, 2028: 1` (how many holidays each year has), or `none`."""
    years: dict[str, int] = {}
    for holiday in site.public_holidays:
        years[holiday.date[:4]] = years.get(holiday.date[:4], 0) + 1
    return ", ".join(f"{year}: {n}" for year, n in sorted(years.items())) or "none"


@sites_app.command("holidays")
@handle_errors
def set_holidays(
    ctx: typer.Context,
    *,
    site: Annotated[str, typer.Argument(help="Site id.")],
    year: Annotated[int, typer.Option(help="The year whose holidays are replaced.")],
    holiday: Annotated[
        list[str] | None,
        typer.Option(help="A holiday of that year (repeatable).", metavar="YYYY-MM-DD[=NAME]"),
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="Holidays, one a line as for --holiday ('YYYY-MM-DD Name' too); # comments. "
            "An empty file clears the year.",
        ),
    ] = None,
    version: ExpectedVersionOption = 0,
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Replace one year's public holidays of a site (the other years stay). Agents of the site
    are then not rostered on them unless a shift overrides PUBLIC_HOLIDAY.

    Examples: wfm sites holidays pune --year 2026 --holiday 2026-01-26="Republic Day"
    --holiday 2026-08-15="Independence Day"

    wfm sites holidays uk-wfh --year 2026 --file uk-2026.txt --version 2
    """
    if bool(holiday) == bool(from_file):
        raise typer.BadParameter("give --holiday (repeatable) or --file, one of them")
    entries = holiday_lines(read_file(from_file, "--file")) if from_file else list(holiday or [])
    with bad_input("--file" if from_file else "--holiday"):
        holidays = holidays_of_year(entries, year)
    with client(ctx) as wfm:
        found = wfm.roster.set_public_holidays(
            site=site_name(site),
            year=year,
            public_holidays=holidays,
            expected_version=version,
            idempotency_key=idempotency_key,
        )
    _show_site(found, json_out, year=year)


def _show_site(site: roster_pb.Site, json_out: bool, year: int = 0) -> None:
    if json_out:
        print_json(to_dict(site))
        return
    console().print(
        f"{site.name}: {escape(site.display_name)} ({site.time_zone}), version {site.version}",
        highlight=False,
    )
    shown = _of_year(site, year).public_holidays
    if not shown:
        typer.echo(f"no public holidays{f' in {year}' if year else ''}")
        return
    table = Table()
    for column in ("date", "day", "holiday"):
        table.add_column(column, no_wrap=True)
    for item in shown:
        day = WEEKDAYS[date.fromisoformat(item.date).weekday()]
        table.add_row(item.date, day, escape(item.display_name))  # typed text, not markup
    console().print(table)


def _of_year(site: roster_pb.Site, year: int) -> roster_pb.Site:
    """The site with only `year`'s holidays (every year's for 0)."""
    if not year:
        return site
    trimmed = roster_pb.Site()
    trimmed.CopyFrom(site)
    del trimmed.public_holidays[:]
    trimmed.public_holidays.extend(
        h for h in site.public_holidays if h.date.startswith(f"{year:04d}-")
    )
    return trimmed


# --- wfm patterns --------------------------------------------------------------------------
@patterns_app.command("create")
@handle_errors
def create_pattern(
    ctx: typer.Context,
    *,
    pattern_id: Annotated[str, typer.Argument(help="1-63 of a-z, 0-9 and '-', e.g. us-day.")],
    name: Annotated[str, typer.Option("--name", help="Display name.")],
    start: Annotated[str, typer.Option(help="Local start HH:MM.")],
    hours: Annotated[float, typer.Option(help="Length in hours on the wall clock.", min=0)],
    client_clock: Annotated[
        bool,
        typer.Option(
            "--client-clock/--agent-clock",
            help="--start on the client's clock (the team's zone) or the agent's (their home).",
        ),
    ] = False,
    days: Annotated[
        list[str] | None,
        typer.Option(
            help="Weekdays it works, for bulk-assign: mon-fri, mon,wed,sat, thu-mon (repeatable).",
            metavar="DAYS",
        ),
    ] = None,
    breaks: Annotated[list[str] | None, _activity_option("--break", "A break, paid")] = None,
    lunches: Annotated[list[str] | None, _activity_option("--lunch", "A lunch, unpaid")] = None,
    meetings: Annotated[list[str] | None, _activity_option("--meeting", "A meeting, paid")] = None,
    trainings: Annotated[list[str] | None, _activity_option("--training", "Training, paid")] = None,
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Define a shift pattern. Activities are OFFSET:LENGTH from the shift's start, in minutes
    (120) or hours and minutes (2h, 4h30), repeatable; add :paid or :unpaid to change the
    default (lunch unpaid, the others paid). The table shows them on the clock: check them there.

    Example: wfm patterns create us-day --name "US day (Pune night)" --start 08:00 --hours 9
    --client-clock --days mon-fri --break 2h:15 --lunch 4h:30 --break 6h30:15

    (08:00-17:00 New York time; a break at 10:00, lunch at 12:00, a break at 14:30.)
    """
    with bad_input("--start"):
        start_minute = parse_clock(start)
    with bad_input("--days"):
        weekdays = sorted({d for text in days or ["mon-fri"] for d in parse_weekdays(text)})
    activities = _activities(
        {"break": breaks, "lunch": lunches, "meeting": meetings, "training": trainings}
    )
    pattern = roster_pb.ShiftPattern(
        display_name=name,
        start_local_time=clock_words(start_minute),
        length_minutes=round(hours * 60),
        anchor=roster_pb.ANCHOR_CLIENT if client_clock else roster_pb.ANCHOR_AGENT,
        activities=activities,
        iso_weekdays=weekdays,
    )
    with client(ctx) as wfm:
        found = wfm.roster.create_shift_pattern(
            shift_pattern_id=pattern_id, shift_pattern=pattern, idempotency_key=idempotency_key
        )
    _show_pattern(found, json_out)


def _activities(typed: dict[str, list[str] | None]) -> list[roster_pb.Activity]:
    """Every --break, --lunch, --meeting and --training, in the order they come in the shift."""
    found = []
    for kind, values in typed.items():
        for value in values or []:
            with bad_input(f"--{kind}"):
                found.append(parse_activity(kind, value))
    return sorted(found, key=lambda activity: activity.offset_minutes)


@patterns_app.command("get")
@handle_errors
def get_pattern(
    ctx: typer.Context,
    *,
    pattern: Annotated[str, typer.Argument(help="Shift pattern id.")],
    json_out: JsonOption = False,
) -> None:
    """A shift pattern, its activities on the clock. Example: wfm patterns get us-day"""
    with client(ctx) as wfm:
        found = wfm.roster.get_shift_pattern(name=pattern_name(pattern))
    _show_pattern(found, json_out)


@patterns_app.command("list")
@handle_errors
def list_patterns(
    ctx: typer.Context,
    *,
    client_clock: Annotated[
        bool | None,
        typer.Option(
            "--client-clock/--agent-clock",
            help="Only patterns that start on the client's clock, or on the agent's (default: "
            "both).",
            show_default=False,
        ),
    ] = None,
    page_size: PageSizeOption = 0,
    page_token: PageTokenOption = "",
    all_pages: AllPagesOption = False,
    json_out: JsonOption = False,
) -> None:
    """Shift patterns by id, with their activities on the clock.

    Example: wfm patterns list --client-clock --all
    """
    anchor = {None: 0, True: roster_pb.ANCHOR_CLIENT, False: roster_pb.ANCHOR_AGENT}[client_clock]
    with client(ctx) as wfm:
        if all_pages:
            page = roster_pb.ListShiftPatternsResponse(
                shift_patterns=wfm.roster.all_pages(
                    "list_shift_patterns", "shift_patterns", anchor=anchor
                )
            )
        else:
            page = wfm.roster.list_shift_patterns(
                anchor=anchor, page_size=page_size, page_token=page_token
            )
    if json_out:
        print_json(to_dict(page))
        return
    if page.shift_patterns:
        console().print(_pattern_table(list(page.shift_patterns)))
    else:
        clock = {None: "", True: " on the client's clock", False: " on the agent's clock"}
        typer.echo(f"no shift patterns{clock[client_clock]}")
    print_more(page.next_page_token)


def _show_pattern(pattern: roster_pb.ShiftPattern, json_out: bool) -> None:
    if json_out:
        print_json(to_dict(pattern))
        return
    console().print(_pattern_table([pattern]))


def _pattern_table(patterns: list[roster_pb.ShiftPattern]) -> Table:
    table = Table()
    for column in ("pattern", "name", "shift", "clock", "days", "activities", "version"):
        table.add_column(column, no_wrap=True)
    for pattern in patterns:
        end = (parse_clock(pattern.start_local_time) + pattern.length_minutes) % DAY_MINUTES
        table.add_row(
            pattern.name.removeprefix("shiftPatterns/"),
            escape(pattern.display_name),
            f"{pattern.start_local_time}-{clock_words(end)} ({pattern.length_minutes / 60:g}h)",
            "client" if pattern.anchor == roster_pb.ANCHOR_CLIENT else "agent",
            weekday_words(pattern.iso_weekdays),
            "\n".join(activity_words(a, pattern.start_local_time) for a in pattern.activities),
            str(pattern.version),
        )
    return table


def register(app: typer.Typer) -> None:
    app.add_typer(sites_app, name="sites")
    app.add_typer(patterns_app, name="patterns")
