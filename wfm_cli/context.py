"""What every command shares: the connection settings of the global options, the client,
`--json` output, and errors turned into plain words and exit codes."""

from __future__ import annotations

import base64
import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from rich.console import Console

from wfm_cli import exitcodes
from wfm_sdk import ClientConfig, ConfigError, Wfm, WfmError

P = ParamSpec("P")
T = TypeVar("T")

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (stable shapes, for scripts) instead of tables.")
]
KeyOption = Annotated[
    str, typer.Option(help="Reuse a key to retry the same change safely (default: new).")
]
# Paging of the `list` commands: one page (`--page-size`, `--page-token`) or `--all`.
PageSizeOption = Annotated[int, typer.Option(help="At most this many (0: the server's default).")]
PageTokenOption = Annotated[str, typer.Option(help="Continue from a previous page.")]
AllPagesOption = Annotated[bool, typer.Option("--all", help="Every page, not just one.")]
# Optimistic concurrency on every change: `--version` as on the resources, `--expected-version`
# as the requests spell it.
ExpectedVersionOption = Annotated[
    int,
    typer.Option(
        "--version",
        "--expected-version",
        help="Refuse (exit 6) unless it is still at this version (0: any).",
        min=0,
    ),
]
# Where version 0 means "not set yet" (a status never set, limits never given): unset is any.
OptionalVersionOption = Annotated[
    int | None,
    typer.Option(
        "--version",
        "--expected-version",
        help="Refuse (exit 6) unless it is still at this version (0: not set yet; default: any).",
        min=0,
    ),
]


@dataclass
class Options:
    """The global options (`wfm --token ... COMMAND`)."""

    overrides: dict[str, Any] = field(default_factory=dict)
    config_file: str = ""
    as_subject: str = ""
    roles: list[str] = field(default_factory=list)
    teams: list[str] = field(default_factory=list)

    loaded: ClientConfig | None = None

    def config(self) -> ClientConfig:
        if self.loaded is None:
            config = ClientConfig.load(
                overrides=self.overrides, config_file=self.config_file or None
            )
            if self.as_subject:
                token = dev_token(config, self.as_subject, self.roles or ["agent"], self.teams)
                config = config.with_token(token)
            self.loaded = config
        return self.loaded


def dev_token(config: ClientConfig, subject: str, roles: list[str], teams: list[str]) -> str:
    """A short-lived token signed by the development key of the running `make run`."""
    key = config.dev_token_key
    if key is None:
        raise ConfigError("a development token needs a running `make run` (its signing key)")
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from wfm_runtime.auth import issue_token

    signer = load_pem_private_key(key.read_bytes(), None)
    return issue_token(signer, "ES256", subject, roles, teams=teams, ttl_s=900)


def options(ctx: typer.Context) -> Options:
    found = ctx.find_object(Options)
    return found if found is not None else Options()


@contextmanager
def client(ctx: typer.Context) -> Iterator[Wfm]:
    wfm = Wfm(options(ctx).config())
    try:
        yield wfm
    finally:
        wfm.close()


@contextmanager
def bad_input(option: str) -> Iterator[None]:
    """A parser's ValueError as a command-line error naming the option (exit 2): the input
    never reached the service (handle_errors would report a bare ValueError as exit 3)."""
    try:
        yield
    except ValueError as error:
        raise typer.BadParameter(f"{option}: {error}") from None


def read_file(path: Path, option: str) -> str:
    """A file named on the command line, as text; unreadable: a usage error naming the option.
    A UTF-8 byte order mark (Excel's "CSV UTF-8", Notepad) is dropped: it would stick to the
    first column name or the first entry."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"{option}: cannot read {path}: {exc}") from None


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, read but not verified (the server verifies them); {} if unreadable."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, TypeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def token_subject(token: str) -> str:
    return str(token_claims(token).get("sub", ""))


def token_team(token: str) -> str:
    """The one team a token names (a team leader's), else ""."""
    teams = list(token_claims(token).get("teams") or ())
    return str(teams[0]) if len(teams) == 1 else ""


def console() -> Console:
    """Tables for people; wide when the output is not a terminal, so lines are not cut."""
    return Console(width=None if sys.stdout.isatty() else 160, soft_wrap=False)


def print_more(token: str) -> None:
    """After a page of a table: how to ask for the next one, if there is one."""
    if token:
        console().print(f"more: --page-token {token}", highlight=False)


def to_dict(message: Message) -> dict[str, Any]:
    """A message as JSON-ready data in a stable shape: proto field names, enum names, and every
    field present (an unset message field as null)."""
    data = MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    _fill_unset(message, data)
    return data


def _fill_unset(message: Message, data: dict[str, Any]) -> None:
    for field_descriptor in message.DESCRIPTOR.fields:
        name = field_descriptor.name
        if field_descriptor.message_type is None or _is_repeated(field_descriptor):
            continue
        if name not in data:
            data[name] = None
        elif isinstance(data[name], dict) and not _is_well_known(field_descriptor):
            _fill_unset(getattr(message, name), data[name])


def _is_repeated(field_descriptor: Any) -> bool:
    return bool(getattr(field_descriptor, "is_repeated", False)) or (
        getattr(field_descriptor, "label", 0) == 3
    )


def _is_well_known(field_descriptor: Any) -> bool:
    return str(field_descriptor.message_type.full_name).startswith("google.protobuf.")


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def handle_errors(command: Callable[P, T]) -> Callable[P, T]:
    """Turns failures into plain words on stderr (JSON with --json) and an exit code."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        as_json = bool(kwargs.get("json_out"))
        try:
            return command(*args, **kwargs)
        except WfmError as error:
            _report(error_data(error), as_json)
            raise typer.Exit(exitcodes.for_status(error.code)) from None
        except ConfigError as error:
            _report({"code": "CONFIG", "message": str(error)}, as_json)
            raise typer.Exit(exitcodes.CONFIG) from None
        except OSError as error:  # unreadable certificate or key files
            _report({"code": "CONFIG", "message": str(error)}, as_json)
            raise typer.Exit(exitcodes.CONFIG) from None
        except (ValueError, OverflowError) as error:  # values a request cannot carry
            _report({"code": "INVALID_ARGUMENT", "message": str(error)}, as_json)
            raise typer.Exit(exitcodes.INVALID_ARGUMENT) from None

    return run


def error_data(error: WfmError) -> dict[str, Any]:
    data: dict[str, Any] = {"code": error.code.name, "message": error.message}
    if error.reason:
        data["reason"] = error.reason
    if error.field_violations:
        data["field_violations"] = [vars(v) for v in error.field_violations]
    if error.rule_violations:
        data["rule_violations"] = [vars(v) for v in error.rule_violations]
    if error.resource:
        data["resource"] = {"type": error.resource[0], "name": error.resource[1]}
    return data


_HINTS = {
    "UNAUTHENTICATED": "give a token: --token, WFM_TOKEN, or with `make run`: "
    "export WFM_TOKEN=$(wfm token --subject admin-1 --role admin)",
    "PERMISSION_DENIED": "your token's roles do not allow this (see docs/security.md)",
    "UNAVAILABLE": "is the system running? (`make run`), or check the address",
    "ABORTED": "someone changed it first: get it again and retry with the new version",
}


def _report(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"error": data}, indent=2, ensure_ascii=False), err=True)
        return
    lines = [f"error: {_headline(data)}"]
    lines += [f"  {v['field']}: {v['description']}" for v in data.get("field_violations", [])]
    lines += [
        f"  {v['type']} ({v['subject']}): {v['description']}"
        for v in data.get("rule_violations", [])
    ]
    if data["code"] in _HINTS:
        lines.append(f"hint: {_HINTS[data['code']]}")
    typer.echo("\n".join(lines), err=True)


def _headline(data: dict[str, Any]) -> str:
    if data.get("field_violations"):
        return "the request was refused, fix these fields:"
    if data.get("rule_violations"):
        return "the change would break these rules:"
    words = data["code"].lower().replace("_", " ")
    return f"{data['message']} ({words})"
