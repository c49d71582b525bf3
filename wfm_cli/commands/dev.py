"""Development helpers: `wfm token` (like `make token`) and `wfm demo` (seeds a demo floor)."""

from __future__ import annotations

from typing import Annotated

import typer

from wfm_cli.context import handle_errors

ROLES = ("agent", "team_leader", "scheduler", "hr", "trainer", "admin")


def _roles(values: list[str]) -> list[str]:
    for value in values:
        if value not in ROLES:
            raise typer.BadParameter(f"unknown role {value!r}: one of {', '.join(ROLES)}")
    return values


def token(
    subject: Annotated[str, typer.Option(help="Employee id, e.g. a-1001 or admin-1.")],
    role: Annotated[
        list[str],
        typer.Option(help=f"Repeatable: {', '.join(ROLES)}.", callback=_roles, metavar="ROLE"),
    ],
    team: Annotated[
        list[str] | None,
        typer.Option(help="Repeatable: the teams a team leader leads.", metavar="TEAM"),
    ] = None,
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.", min=60, max=86400)] = 3600,
) -> None:
    """Print a development token signed by the key of `make run` (not for production).

    Example: export WFM_TOKEN=$(wfm token --subject a-1001 --role agent)
    """
    from wfm_runtime.devstack import token as dev_token

    typer.echo(dev_token(subject, role, team or [], ttl))


def register(app: typer.Typer) -> None:
    app.command("token")(handle_errors(token))
