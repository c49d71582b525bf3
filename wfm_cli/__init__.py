"""wfm_cli: the `wfm` command line, built on wfm_sdk (typer for commands, rich for output)."""
