"""`wfm audit list`: who changed what (admins only); each service audits its own changes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table
from wfm.audit.v1 import audit_service_pb2 as audit_pb

from wfm_cli.context import JsonOption, client, console, handle_errors, print_json, to_dict
from wfm_sdk.aio import AUDITED_SERVICES

audit_app = typer.Typer(help="The audit trail of every change (admins).", no_args_is_help=True)


def _service(value: str) -> str:
    if value != "all" and value not in AUDITED_SERVICES:
        raise typer.BadParameter(f"one of: all, {', '.join(AUDITED_SERVICES)}")
    return value


@audit_app.command("list")
@handle_errors
def list_records(
    ctx: typer.Context,
    *,
    subject: Annotated[str, typer.Option(help="Only this caller (employee id).")] = "",
    target: Annotated[str, typer.Option(help="Only about this resource, e.g. agents/a-1001.")] = "",
    service: Annotated[
        str,
        typer.Option(
            help=f"all, or one of: {', '.join(AUDITED_SERVICES)}.",
            callback=_service,
            autocompletion=lambda: ["all", *AUDITED_SERVICES],
        ),
    ] = "all",
    start: Annotated[datetime | None, typer.Option(help="From (UTC unless offset).")] = None,
    end: Annotated[datetime | None, typer.Option(help="Until.")] = None,
    page_size: Annotated[int, typer.Option(help="Per service (0: the server's default).")] = 0,
    page_token: Annotated[str, typer.Option(help="Continue (with one --service only).")] = "",
    json_out: JsonOption = False,
) -> None:
    """Audit records, newest first, from every service (or one).

    Examples:

      wfm audit list --target agents/a-1001

      wfm audit list --service scheduling --subject admin-1 --json
    """
    if page_token and service == "all":
        raise typer.BadParameter("--page-token needs one --service")
    records: list[audit_pb.AuditRecord] = []
    tokens: dict[str, str] = {}
    with client(ctx) as wfm:
        # "all": every service this client has an address for (one named must have one).
        services = (
            [name for name in AUDITED_SERVICES if name in wfm.config.addresses]
            if service == "all"
            else [service]
        )
        for name in services:
            page = wfm.audit(name).list_audit_records(
                subject=subject,
                target=target,
                start=start,
                end=end,
                page_size=page_size,
                page_token=page_token,
            )
            records += page.records
            if page.next_page_token:
                tokens[name] = page.next_page_token
    records.sort(key=lambda r: (r.time.seconds, r.time.nanos), reverse=True)
    if json_out:
        data = {"records": [to_dict(r) for r in records], "next_page_tokens": tokens}
        print_json(data)
        return
    _print(records, tokens)


def _print(records: list[audit_pb.AuditRecord], tokens: dict[str, str]) -> None:
    table = Table()
    for column in ("time (UTC)", "service", "subject", "roles", "method", "targets", "outcome"):
        table.add_column(column, no_wrap=True)
    for record in records:
        table.add_row(
            record.time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S"),
            record.service,
            record.subject,
            ",".join(record.roles),
            record.method.rsplit("/", 1)[-1],
            " ".join(record.targets),
            record.outcome,
        )
    out = console()
    out.print(table)
    for name, token in tokens.items():
        out.print(f"more from {name}: --service {name} --page-token {token}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
