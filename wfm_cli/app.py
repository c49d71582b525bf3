"""The `wfm` command: global connection options, then one group of commands per area.

Each module in COMMAND_MODULES has `register(app)`; a new service (rosters, courses, cases)
adds its module and one line here.
"""

from __future__ import annotations

from typing import Annotated

import typer

from wfm_cli.commands import (
    audit,
    availability,
    demo,
    dev,
    directory,
    performance,
    roster,
    sites,
    training,
)
from wfm_cli.context import Options

COMMAND_MODULES = [availability, directory, sites, roster, training, performance, audit, dev, demo]

app = typer.Typer(
    name="wfm",
    help="""wfm: workforce management for contact centres, from the command line.

Against a local `make run` no configuration is needed (its ports and development certificates
are found), only a token:

  export WFM_TOKEN=$(wfm token --subject admin-1 --role admin)

  wfm teams list

  wfm board --team pune-night

Elsewhere set WFM_AVAILABILITY_ADDR, WFM_SCHEDULING_ADDR, WFM_TRAINING_ADDR,
WFM_PERFORMANCE_ADDR, WFM_TOKEN and the TLS files
(WFM_CA_FILE, WFM_CLIENT_CERT_FILE, WFM_CLIENT_KEY_FILE), or write ~/.config/wfm/config.toml.
Every command takes --json. Exit codes: docs/cli.md.""",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


@app.callback()
def connection(
    ctx: typer.Context,
    *,
    token: Annotated[
        str, typer.Option(help="Bearer token (default: WFM_TOKEN).", show_default=False)
    ] = "",
    as_subject: Annotated[
        str,
        typer.Option(
            "--as",
            help="Call as this employee id with a development token from `make run`'s key.",
        ),
    ] = "",
    role: Annotated[
        list[str] | None,
        typer.Option(
            help="Roles for --as (repeatable; default agent).",
            metavar="ROLE",
            callback=dev.check_roles,
        ),
    ] = None,
    team: Annotated[
        list[str] | None,
        typer.Option(help="Teams for --as (repeatable, team leaders).", metavar="TEAM"),
    ] = None,
    availability_addr: Annotated[
        str, typer.Option(help="host:port of the availability service.")
    ] = "",
    scheduling_addr: Annotated[str, typer.Option(help="host:port of the scheduling service.")] = "",
    training_addr: Annotated[str, typer.Option(help="host:port of the training service.")] = "",
    performance_addr: Annotated[
        str, typer.Option(help="host:port of the performance service.")
    ] = "",
    plaintext: Annotated[
        bool | None, typer.Option("--plaintext", help="No TLS (development servers only).")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Deadline of each call in seconds (default 10).", min=0.1)
    ] = None,
    config: Annotated[
        str, typer.Option(help="Config file (default: WFM_CONFIG or ~/.config/wfm/config.toml).")
    ] = "",
) -> None:
    ctx.obj = Options(
        overrides={
            "token": token,
            "addresses": {
                "availability": availability_addr,
                "scheduling": scheduling_addr,
                "training": training_addr,
                "performance": performance_addr,
            },
            "plaintext": plaintext,
            "timeout_s": timeout,
        },
        config_file=config,
        as_subject=as_subject,
        roles=role or [],
        teams=team or [],
    )


for module in COMMAND_MODULES:
    module.register(app)


def main() -> None:
    app()
