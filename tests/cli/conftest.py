"""Runs `wfm` as a user would, against the services the `system` fixture starts (plaintext
gRPC with JWT auth): the command line in a worker thread, so the services keep serving on the
test's event loop meanwhile."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner

from tests.conftest import System
from wfm_cli.app import app

# Nothing from the developer's own environment or config file may leak into the tests.
CLEAN_ENV: dict[str, str | None] = {
    "WFM_TOKEN": None,
    "WFM_AVAILABILITY_ADDR": None,
    "WFM_SCHEDULING_ADDR": None,
    "WFM_TRAINING_ADDR": None,
    "WFM_PERFORMANCE_ADDR": None,
    "WFM_CA_FILE": None,
    "WFM_CLIENT_CERT_FILE": None,
    "WFM_CLIENT_KEY_FILE": None,
    "WFM_PLAINTEXT": None,
    "WFM_CONFIG": "/nonexistent/wfm-config.toml",
    "WFM_DEVSTACK_STATE": "/nonexistent/current.json",
}


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Cli:
    system: System

    def token(self, subject: str, *roles: str, teams: tuple[str, ...] = ()) -> str:
        return self.system.minter.token(subject, *roles, teams=teams)

    async def __call__(self, *args: str, token: str | None = None) -> Run:
        """`wfm <args>` as the given caller (an admin unless a token is given)."""
        connection = [
            "--availability-addr",
            f"127.0.0.1:{self.system.availability.port}",
            "--scheduling-addr",
            f"127.0.0.1:{self.system.scheduling.port}",
            "--training-addr",
            f"127.0.0.1:{self.system.training.port}",
            "--plaintext",
            "--timeout",
            "10",
        ]
        if self.system.performance is not None:
            connection += ["--performance-addr", f"127.0.0.1:{self.system.performance.port}"]
        if token != "":
            connection += ["--token", token or self.token("admin-1", "admin")]
        runner = CliRunner()
        result = await asyncio.to_thread(
            runner.invoke, app, [*connection, *args], env=CLEAN_ENV, catch_exceptions=False
        )
        return Run(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def wfm(system: System) -> Iterator[Cli]:
    # The in-process services log through structlog's default logger, which prints to whatever
    # sys.stdout is at the moment: while CliRunner captures the command's output that would be
    # the command's stdout. Their logs go to the process's real stderr instead.
    saved = structlog.get_config()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.__stderr__))
    try:
        yield Cli(system)
    finally:
        structlog.configure(**saved)
