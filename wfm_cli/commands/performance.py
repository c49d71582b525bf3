"""Performance, for team leaders: `wfm scorecard`, `wfm scorecards --team --sort`, `wfm flags`,
and `wfm cases record FILE` (cases streamed to the service with a progress bar)."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import grpc
import typer
from google.protobuf import json_format
from rich.live import Live
from rich.progress import Progress
from rich.table import Table
from wfm.performance.v1 import performance_service_pb2 as performance_pb

from wfm_cli import exitcodes
from wfm_cli.board import poll
from wfm_cli.context import (
    JsonOption,
    KeyOption,
    OptionalVersionOption,
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
from wfm_cli.render import enum_words, local_time, since
from wfm_sdk import names

cases_app = typer.Typer(help="Case outcomes (admins, integrations).", no_args_is_help=True)
flags_app = typer.Typer(
    cls=DefaultGroup,
    help="Red flags: show (the default: `wfm flags --team TEAM`) and the team's thresholds.",
    no_args_is_help=True,
)
thresholds_app = typer.Typer(help="A team's red-flag thresholds: get, set.", no_args_is_help=True)
THRESHOLDS = [
    field
    for field in performance_pb.RedFlagThresholds.DESCRIPTOR.fields_by_name
    if field not in ("name", "version")
]

METRICS = list(performance_pb.Metrics.DESCRIPTOR.fields_by_name)
# The columns of `wfm scorecards` (all metrics are in --json).
BOARD_METRICS = [
    "adherence_percent",
    "occupancy_percent",
    "absenteeism_percent",
    "cases_resolved",
    "average_handle_time_seconds",
    "sla_compliance_percent",
    "csat_average",
    "training_hours",
]
CSV_SECONDS = {
    "talk_seconds": "talk_duration",
    "hold_seconds": "hold_duration",
    "after_contact_seconds": "after_contact_duration",
    "sla_target_seconds": "sla_target",
}


def _period(start: str, end: str) -> performance_pb.Period:
    """--from/--to; default: this month up to today."""
    today = datetime.now(UTC).date()
    try:
        first = date.fromisoformat(start) if start else today.replace(day=1)
        last = date.fromisoformat(end) if end else today
    except ValueError as exc:
        raise typer.BadParameter(f"--from/--to: dates YYYY-MM-DD ({exc})") from None
    return performance_pb.Period(start_date=first.isoformat(), end_date=last.isoformat())


FromOption = Annotated[str, typer.Option("--from", help="First date (default: 1st of month).")]
ToOption = Annotated[str, typer.Option("--to", help="Last date (default: today).")]


def _figure(metrics: performance_pb.Metrics, field: str) -> str:
    if not metrics.HasField(field):  # type: ignore[arg-type]
        return "-"  # no denominator in the period
    return _shown(field, float(getattr(metrics, field)))


def _shown(field: str, value: float, digits: int = 1) -> str:
    """A figure in its unit: minutes for durations, a percent sign, else one decimal."""
    if field.endswith("_seconds"):
        return f"{value / 60:.{digits}f} min"
    if field.endswith("_percent"):
        return f"{value:.{digits}f}%"
    return f"{round(value, digits):g}"


def metric_name(given: str, known: list[str], option: str) -> str:
    """The field name of a metric or limit as typed: `SLA_Compliance_Percent` or
    `max-late-logins` name the same field. The names are fixed, like an enum's values, so case
    and '-' for '_' carry no meaning and must not make a name unknown."""
    name = given.strip().lower().replace("-", "_")
    if name not in known:
        raise typer.BadParameter(f"{option} one of {', '.join(known)}, got {given!r}")
    return name


def flag_figure(field: str, value: float, limit: float) -> str:
    """A flagged figure with as many decimals as it takes not to print it equal to the limit
    it broke (84.96% against a minimum of 85 would read 85.0%, as if it had not)."""
    for digits in range(1, 5):
        shown = _shown(field, value, digits)
        if shown != _shown(field, limit, digits):
            return shown
    return shown


@handle_errors
def scorecard(
    ctx: typer.Context,
    *,
    agent: Annotated[str, typer.Argument(help="Agent id (default: you).")] = "",
    start: FromOption = "",
    end: ToOption = "",
    json_out: JsonOption = False,
) -> None:
    """One agent's scorecard for a period of roster dates.

    Example: wfm scorecard a-1001 --from 2026-11-01 --to 2026-11-30
    """
    who = agent or options(ctx).as_subject or token_subject(options(ctx).config().token)
    if not who:
        raise typer.BadParameter("give an agent id (the token names no one)")
    with client(ctx) as wfm:
        card = wfm.performance.get_scorecard(
            name=f"{names.agent_name(who)}/scorecard", period=_period(start, end)
        )
    if json_out:
        print_json(to_dict(card))
        return
    console().print(scorecard_table(card))


def scorecard_table(card: performance_pb.Scorecard) -> Table:
    table = Table(
        title=f"scorecard of {card.agent.removeprefix('agents/')} "
        f"({card.team.removeprefix('teams/')}) {card.period.start_date}..{card.period.end_date}, "
        f"{card.active_days} active days",
        title_justify="left",
    )
    table.add_column("metric", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    for field in METRICS:
        table.add_row(field.replace("_", " "), _figure(card.metrics, field))
    return table


@handle_errors
def scorecards(
    ctx: typer.Context,
    *,
    team: Annotated[str, typer.Option(help="Team id.")],
    sort: Annotated[str, typer.Option(help="A metric (see --json), or agent.")] = "agent",
    desc: Annotated[bool, typer.Option(help="Highest first.")] = False,
    start: FromOption = "",
    end: ToOption = "",
    json_out: JsonOption = False,
) -> None:
    """Every agent of a team, side by side, sorted by a metric, then the team as a whole.

    The last row is the team's own figures (GetTeamSummary): every agent's numerators and
    denominators pooled, not an average of the rows above.

    Example: wfm scorecards --team pune-night --sort adherence_percent --desc
    """
    sort = metric_name(sort, ["agent", *METRICS], "--sort:")
    period = _period(start, end)
    with client(ctx) as wfm:
        found = wfm.performance.all_pages(
            "list_scorecards",
            "scorecards",
            team=names.team_name(team),
            period=period,
            order_by=f"{sort} desc" if desc else sort,
        )
        summary = wfm.performance.get_team_summary(team=names.team_name(team), period=period)
    if json_out:
        print_json({"scorecards": [to_dict(c) for c in found], "team_summary": to_dict(summary)})
        return
    columns = BOARD_METRICS if sort in ("agent", *BOARD_METRICS) else [sort, *BOARD_METRICS]
    table = Table()
    table.add_column("agent", no_wrap=True)
    for field in columns:
        table.add_column(field.replace("_percent", " %").replace("_", " "), justify="right")
    for card in found:
        table.add_row(
            card.agent.removeprefix("agents/"), *(_figure(card.metrics, f) for f in columns)
        )
    table.add_section()
    table.add_row(
        f"team ({summary.agent_count} agents)",
        *(_figure(summary.metrics, f) for f in columns),
        style="bold",
    )
    console().print(table)


@handle_errors
def flags(
    ctx: typer.Context,
    *,
    team: Annotated[str, typer.Option(help="Team id.")],
    start: FromOption = "",
    end: ToOption = "",
    json_out: JsonOption = False,
) -> None:
    """Agents whose figures break the team's red-flag limits.

    Example: wfm flags --team pune-night --from 2026-11-01
    """
    with client(ctx) as wfm:
        found = wfm.performance.list_red_flags(
            team=names.team_name(team), period=_period(start, end)
        )
    if json_out:
        print_json(to_dict(found))
        return
    table = Table()
    for column in ("agent", "metric", "value", "limit"):
        table.add_column(column, no_wrap=True)
    for flag in found.red_flags:
        table.add_row(
            flag.agent.removeprefix("agents/"),
            flag.metric.replace("_", " "),
            f"[red]{flag_figure(flag.metric, flag.value, flag.threshold)}[/]",
            f"{flag.bound} {_shown(flag.metric, flag.threshold)}",
        )
    console().print(table)
    typer.echo(f"{len(found.red_flags)} red flags")


def _thresholds_name(team: str) -> str:
    return f"{names.team_name(team)}/redFlagThresholds"


def _show_thresholds(found: performance_pb.RedFlagThresholds, json_out: bool) -> None:
    if json_out:
        print_json(to_dict(found))
        return
    table = Table(title=f"{found.name} (version {found.version})")
    table.add_column("threshold", no_wrap=True)
    table.add_column("limit", no_wrap=True)
    for field in THRESHOLDS:
        is_set = found.HasField(field)  # type: ignore[arg-type]
        metric = field.removeprefix("max_").removeprefix("min_")
        shown = _shown(metric, getattr(found, field)) if is_set else "- (not flagged)"
        table.add_row(field.replace("_", " "), shown)
    console().print(table)


@thresholds_app.command("get")
@handle_errors
def get_thresholds(
    ctx: typer.Context,
    *,
    team: Annotated[str, typer.Argument(help="Team id.")],
    json_out: JsonOption = False,
) -> None:
    """A team's red-flag limits. Example: wfm flags thresholds get pune-night"""
    with client(ctx) as wfm:
        found = wfm.performance.get_red_flag_thresholds(name=_thresholds_name(team))
    _show_thresholds(found, json_out)


@thresholds_app.command("set")
@handle_errors
def set_thresholds(
    ctx: typer.Context,
    *,
    team: Annotated[str, typer.Argument(help="Team id.")],
    limits: Annotated[
        list[str] | None,
        typer.Option(
            "--limit",
            help=f"METRIC=VALUE (repeatable); METRIC one of {', '.join(THRESHOLDS)}; "
            "a limit left out is not flagged.",
            metavar="METRIC=VALUE",
        ),
    ] = None,
    version: OptionalVersionOption = None,
    idempotency_key: KeyOption = "",
    json_out: JsonOption = False,
) -> None:
    """Replace a team's red-flag limits (every limit not given is cleared).

    Example: wfm flags thresholds set pune-night --limit min_adherence_percent=85
    --limit max_late_logins=3
    """
    thresholds = performance_pb.RedFlagThresholds(name=_thresholds_name(team))
    for item in limits or []:
        given, _, number = item.partition("=")
        field = metric_name(given, THRESHOLDS, "--limit: METRIC")
        try:
            setattr(thresholds, field, float(number))
        except ValueError:
            raise typer.BadParameter(f"--limit {field}: a number, got {number!r}") from None
    request = performance_pb.SetRedFlagThresholdsRequest(
        thresholds=thresholds, idempotency_key=idempotency_key
    )
    if version is not None:
        request.expected_version = version
    with client(ctx) as wfm:
        found = wfm.performance.set_red_flag_thresholds(request)
    _show_thresholds(found, json_out)


@handle_errors
def explain(
    ctx: typer.Context,
    *,
    agent: Annotated[str, typer.Argument(help="Agent id.")],
    metric: Annotated[str, typer.Argument(help=f"One of: {', '.join(METRICS)}.")],
    start: FromOption = "",
    end: ToOption = "",
    json_out: JsonOption = False,
) -> None:
    """The status stretches, cases or trainings behind one figure of a scorecard.

    Example: wfm explain a-1001 adherence_percent --from 2026-11-01 --to 2026-11-30
    """
    metric = metric_name(metric, METRICS, "METRIC:")
    with client(ctx) as wfm:
        found = wfm.performance.explain_metric(
            name=f"{names.agent_name(agent)}/scorecard", period=_period(start, end), metric=metric
        )
    if json_out:
        print_json(to_dict(found))
        return
    value = _shown(metric, found.value) if found.HasField("value") else "- (nothing to count)"
    typer.echo(f"{agent} {metric.replace('_', ' ')}: {value}")
    for table in _explained(found):
        console().print(table)


def _explained(found: performance_pb.ExplainMetricResponse) -> list[Table]:
    tables = []
    if found.segments:
        table = Table(title="status stretches")
        for column in ("date", "from (agent)", "to (agent)", "client", "status", "scheduled",
                       "leave", "counted"):  # fmt: skip
            table.add_column(column, no_wrap=True)
        for seg in found.segments:
            client_span = f"{local_time(seg.start_client_local)}-{local_time(seg.end_client_local)}"
            table.add_row(
                seg.roster_date,
                local_time(seg.start_agent_local, with_date=True),
                local_time(seg.end_agent_local, with_date=True),
                client_span if seg.start_client_local.local_time else "-",
                seg.status,
                seg.scheduled_activity or "-",
                "yes" if seg.on_approved_leave else "",
                "[green]yes[/]" if seg.counted else "no",
            )
        tables.append(table)
    if found.cases:
        table = Table(title="cases")
        for column in ("case", "channel", "resolved", "handle", "sla", "fcr", "csat"):
            table.add_column(column, no_wrap=True)
        for case in found.cases:
            handle = sum(
                d.ToTimedelta().total_seconds()
                for d in (case.talk_duration, case.hold_duration, case.after_contact_duration)
            )
            table.add_row(
                case.name,
                performance_pb.Channel.Name(case.channel).removeprefix("CHANNEL_").lower(),
                _utc(case.resolve_time),
                f"{handle / 60:.1f} min",
                ("met" if case.sla_met else "[red]missed[/]")
                if case.HasField("sla_target")
                else "-",
                "yes" if case.first_contact_resolution else "no",
                str(case.csat_score) if case.HasField("csat_score") else "-",
            )
        tables.append(table)
    if found.trainings:
        table = Table(title="trainings")
        for column in ("completion", "date", "hours", "technical"):
            table.add_column(column, no_wrap=True)
        for item in found.trainings:
            table.add_row(
                item.completion_id,
                item.roster_date,
                f"{item.hours:g}",
                "yes" if item.technical else "no",
            )
        tables.append(table)
    return tables


def _utc(value: Any) -> str:
    return value.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- wfm cases record ----------------------------------------------------------------------
def read_cases(path: Path) -> list[performance_pb.RecordCasesRequest]:
    """Every case of a JSON Lines or CSV file; every bad line is reported at once."""
    text = read_file(path, "FILE")
    rows = _csv_rows(text) if path.suffix.lower() == ".csv" else _json_rows(text)
    requests, problems = [], []
    for line, row in rows:
        try:
            requests.append(_request(row))
        except (ValueError, TypeError, json_format.ParseError) as exc:
            problems.append(f"line {line}: {exc}")
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ValueError(f"{path}: {len(problems)} bad cases, nothing sent:\n  {shown}{more}")
    return requests


def _json_rows(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                row = {"_error": f"not JSON: {exc.msg}"}
            yield number, row if isinstance(row, dict) else {"_error": "not a JSON object"}


def _csv_rows(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(the file's line number, the case's fields) of each row: the reader's count, as it
    skips blank lines. A value the CLI converts itself and cannot is the row's error, so it is
    listed with the others."""
    reader = csv.DictReader(text.splitlines())
    for row in reader:
        try:
            case = _csv_case(row)
        except ValueError as exc:
            case = {"_error": str(exc)}
        yield reader.line_num, case


def _csv_case(row: dict[str, Any]) -> dict[str, Any]:
    case: dict[str, Any] = {k: v for k, v in row.items() if k and v not in (None, "")}
    for column, field in CSV_SECONDS.items():
        if column in case:
            case[field] = f"{case.pop(column)}s"
    for flag in ("first_contact_resolution", "sla_met"):
        if flag in case:
            case[flag] = case[flag].strip().lower() in ("1", "true", "yes", "y")
    for score in ("csat_score", "pulse_score"):
        if score in case:
            try:
                case[score] = int(case[score])
            except ValueError:
                raise ValueError(f"{score}: a whole number, got {case[score]!r}") from None
    return case


def _request(row: dict[str, Any]) -> performance_pb.RecordCasesRequest:
    if "_error" in row:
        raise ValueError(row["_error"])
    fields = dict(row)
    case_id = str(fields.pop("case_id", "")).strip()
    if not case_id:
        raise ValueError("case_id is missing")
    if "agent" in fields:
        fields["agent"] = names.agent_name(str(fields["agent"]))
    channel = str(fields.get("channel", ""))
    if channel and not channel.upper().startswith("CHANNEL_"):
        fields["channel"] = f"CHANNEL_{channel.upper()}"
    case = json_format.ParseDict(fields, performance_pb.Case())
    # The same case with the same content gets the same key: running a file twice changes
    # nothing the second time.
    digest = hashlib.sha256(case.SerializeToString(deterministic=True)).hexdigest()[:24]
    return performance_pb.RecordCasesRequest(
        case_id=case_id, case=case, idempotency_key=f"cli-{case_id}-{digest}"
    )


@cases_app.command("record")
@handle_errors
def record(
    ctx: typer.Context,
    *,
    file: Annotated[
        Path, typer.Argument(help="Cases: .jsonl (Case fields + case_id) or .csv.", exists=True)
    ],
    json_out: JsonOption = False,
) -> None:
    """Record a file of cases through one stream, with a progress bar.

    JSON Lines: {"case_id": "c-1", "agent": "a-1001", "channel": "phone",
    "open_time": "2026-11-24T14:00:00Z", "resolve_time": "2026-11-24T14:09:00Z",
    "talk_duration": "420s", "first_contact_resolution": true, "sla_target": "600s",
    "sla_met": true, "csat_score": 5}

    CSV columns: case_id, agent, channel, open_time, resolve_time, talk_seconds, hold_seconds,
    after_contact_seconds, first_contact_resolution, sla_target_seconds, sla_met, csat_score,
    pulse_score.

    Example: wfm cases record day-cases.csv
    """
    requests = read_cases(file)
    with (
        client(ctx) as wfm,
        Progress(console=console(), transient=True, disable=not console().is_terminal) as bar,
    ):
        task = bar.add_task("recording", total=len(requests))

        def sent() -> Iterator[performance_pb.RecordCasesRequest]:
            for request in requests:
                yield request
                bar.advance(task)

        reply = wfm.performance.record_cases(sent())
    if json_out:
        print_json(to_dict(reply))
    else:
        _print_recorded(reply)
    if reply.failed_count:
        first = next(r.error_code for r in reply.results if r.error_code)
        raise typer.Exit(exitcodes.for_status(_status(first)))


def _status(number: int) -> grpc.StatusCode:
    return next((c for c in grpc.StatusCode if c.value[0] == number), grpc.StatusCode.UNKNOWN)


def _print_recorded(reply: performance_pb.RecordCasesResponse) -> None:
    failed = [r for r in reply.results if r.error_code]
    if failed:
        table = Table(title="refused", title_justify="left")
        for column in ("case", "error", "why"):
            table.add_column(column)
        for result in failed:
            table.add_row(result.case_id, _status(result.error_code).name, result.error_message)
        console().print(table)
    typer.echo(f"recorded {reply.recorded_count} cases, {reply.failed_count} refused")


# Out of adherence first, the longest out at the top; then in, off shift, on leave.
_ADHERENCE_ORDER = {
    performance_pb.ADHERENCE_STATE_OUT_OF_ADHERENCE: 0,
    performance_pb.ADHERENCE_STATE_IN_ADHERENCE: 1,
    performance_pb.ADHERENCE_STATE_NOT_SCHEDULED: 2,
    performance_pb.ADHERENCE_STATE_ON_LEAVE: 3,
}


@handle_errors
def adherence(
    ctx: typer.Context,
    *,
    team: Annotated[str, typer.Option(help="Team id (default: the one your token names).")] = "",
    watch: Annotated[
        bool, typer.Option("--watch", help="Redraw with a fresh read until Ctrl-C.")
    ] = False,
    every: Annotated[
        float, typer.Option(help="Seconds between reads with --watch.", min=2, max=300)
    ] = 10.0,
    json_out: JsonOption = False,
) -> None:
    """Real-time adherence: each agent's status now against what the schedule says now, out
    of adherence first (longest first), with both clocks. With --watch the screen is read again
    every --every seconds until Ctrl-C (while the service does not answer, the last read stays
    with a note); --watch --json prints one JSON line per read.

    Examples:

      wfm adherence --team pune-night

      wfm adherence --watch --every 5
    """
    team = team or token_team(options(ctx).config().token)
    if not team:
        raise typer.BadParameter("give --team (your token names no one team)")
    name = f"{names.team_name(team)}/adherence"
    with client(ctx) as wfm:

        def fetch() -> performance_pb.TeamAdherence:
            return wfm.performance.get_team_adherence(name=name)

        found = fetch()  # a refusal ends here, with its exit code
        if not watch:
            _print_adherence(found, team, json_out)
        else:
            _watch_adherence(found, fetch, team, every, json_out)


def _print_adherence(found: performance_pb.TeamAdherence, team: str, json_out: bool) -> None:
    if json_out:
        print_json(to_dict(found))
        return
    out = console()
    out.print(_adherence_table(found, team))
    out.print(_adherence_summary(found), highlight=False)


def _watch_adherence(
    first: performance_pb.TeamAdherence,
    fetch: Callable[[], performance_pb.TeamAdherence],
    team: str,
    every_s: float,
    json_out: bool,
) -> None:
    """A screen redrawn on every read; with --json one line per read (a missed read is a note
    on stderr), for a wallboard or a log."""
    screen = Live(console=console(), refresh_per_second=1)

    def draw(found: performance_pb.TeamAdherence, note: str) -> None:
        read = found.as_of_time.ToDatetime(tzinfo=UTC)
        table = _adherence_table(found, team)
        # In the title, not a caption: a team taller than the terminal is cut at the bottom.
        table.title = (
            f"{table.title} - {_adherence_summary(found)} - read at {read:%H:%M:%S} UTC"
            + (f"\n{note}" if note else "")
        )
        screen.update(table, refresh=True)

    def line(found: performance_pb.TeamAdherence, note: str) -> None:
        if note:
            typer.echo(note, err=True)
        else:
            typer.echo(json.dumps(to_dict(found)))

    try:
        if json_out:
            poll(first, fetch, line, every_s=every_s)
        else:
            with screen:
                poll(first, fetch, draw, every_s=every_s)
    except KeyboardInterrupt:
        return


def _adherence_summary(found: performance_pb.TeamAdherence) -> str:
    return f"{found.out_of_adherence_count} of {len(found.agents)} out of adherence"


def _adherence_table(found: performance_pb.TeamAdherence, team: str) -> Table:
    now = found.as_of_time.ToDatetime(tzinfo=UTC)
    rows = sorted(
        found.agents,
        key=lambda r: (_ADHERENCE_ORDER.get(r.state, 9), r.state_since.ToDatetime(), r.agent),
    )
    table = Table(title=f"adherence of {names.team_name(team)}", title_justify="left")
    for column in ("agent", "status", "scheduled now", "until (agent / client)", "state", "for"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        state = enum_words(performance_pb.AdherenceState, row.state, "ADHERENCE_STATE_", " ")
        if row.state == performance_pb.ADHERENCE_STATE_OUT_OF_ADHERENCE:
            state = f"[red]{state}[/]"
        until = (
            f"{local_time(row.scheduled_end_agent_local)} / "
            f"{local_time(row.scheduled_end_client_local)}"
            if row.scheduled_activity
            else ""
        )
        table.add_row(
            row.agent.removeprefix("agents/"),
            row.status.lower().replace("_", "-"),
            row.scheduled_activity.lower() or "-",
            until,
            state,
            since(row.state_since, now),
        )
    return table


def register(app: typer.Typer) -> None:
    app.command("adherence")(adherence)
    app.command("scorecard")(scorecard)
    app.command("scorecards")(scorecards)
    flags_app.command("show")(flags)
    flags_app.add_typer(thresholds_app, name="thresholds")
    app.add_typer(flags_app, name="flags")
    app.command("explain")(explain)
    app.add_typer(cases_app, name="cases")
