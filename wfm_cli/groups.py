"""A command group that still answers to its old one-command form.

`wfm coverage pune-night` and `wfm flags --team pune-night` were single commands before they grew
subcommands (`wfm coverage set`, `wfm flags thresholds get`): anything that is not a subcommand
name goes to the group's default command, so old scripts keep working.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup


class DefaultGroup(TyperGroup):
    default_command = "show"

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)
