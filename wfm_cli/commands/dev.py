"""Development helpers: `wfm token` (like `make token`) and `wfm demo` (seeds a demo floor)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from wfm_cli.context import JsonOption, handle_errors, options, print_json, token_claims
from wfm_sdk import ClientConfig

ROLES = ("agent", "team_leader", "scheduler", "hr", "trainer", "admin")


def check_roles(values: list[str] | None) -> list[str] | None:
    for value in values or ():
        if value not in ROLES:
            raise typer.BadParameter(f"unknown role {value!r}: one of {', '.join(ROLES)}")
    return values


def token(
    subject: Annotated[str, typer.Option(help="Employee id, e.g. a-1001 or admin-1.")],
    role: Annotated[
        list[str],
        typer.Option(help=f"Repeatable: {', '.join(ROLES)}.", callback=check_roles, metavar="ROLE"),
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


def whoami(ctx: typer.Context, *, json_out: JsonOption = False) -> None:
    """Who the token says you are, and where and how `wfm` would connect (no call is made).

    Example: wfm --as tl-7 --role team_leader --team pune-night whoami
    """
    config = options(ctx).config()
    claims = token_claims(config.token)
    expires = claims.get("exp")
    data: dict[str, Any] = {
        "subject": claims.get("sub", ""),
        "roles": claims.get("roles", []),
        "teams": claims.get("teams", []),
        "expires": _utc(expires) if isinstance(expires, int | float) else "",
        "addresses": dict(config.addresses),
        "transport": _transport(config),
        "configured_from": config.source,
    }
    if json_out:
        print_json(data)
        return
    if not config.token:
        data["subject"] = "(no token: set WFM_TOKEN, --token or --as)"
    rows = [
        ("subject", data["subject"]),
        ("roles", ", ".join(data["roles"]) or "-"),
        ("teams", ", ".join(data["teams"]) or "-"),
        ("expires", data["expires"] or "-"),
        *((f"{name} at", address) for name, address in sorted(config.addresses.items())),
        ("transport", data["transport"]),
        ("configured from", config.source),
    ]
    width = max(len(label) for label, _ in rows)
    typer.echo("\n".join(f"{label:<{width}}  {value}" for label, value in rows))


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _transport(config: ClientConfig) -> str:
    if config.plaintext:
        return "plaintext (development only)"
    if config.cert_file:
        return "TLS with a client certificate (mutual TLS)"
    return "TLS"


def register(app: typer.Typer) -> None:
    app.command("token")(handle_errors(token))
    app.command("whoami")(handle_errors(whoami))
