"""`wfm` against a system run as `make run` runs it (mutual TLS, tokens signed by the development
key), found through its state file alone: no address, no certificate, no token configured."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from services.availability import main as availability_main
from services.scheduling import main as scheduling_main
from tests.cli.conftest import CLEAN_ENV, Run
from tests.conftest import Nats
from wfm_cli.app import app
from wfm_cli.demo import TEAMS, agent_ids, agent_moves
from wfm_runtime.auth import AuthConfig
from wfm_runtime.config import Settings
from wfm_runtime.devcerts import DevCredentials, ensure_dev_credentials
from wfm_runtime.testing import eventually, isolated_settings

pytestmark = pytest.mark.integration


@dataclass
class DevStack:
    state_file: Path
    creds: DevCredentials

    async def __call__(self, *args: str) -> Run:
        env = {**CLEAN_ENV, "WFM_DEVSTACK_STATE": str(self.state_file)}
        result = await asyncio.to_thread(
            CliRunner().invoke, app, list(args), env=env, catch_exceptions=False
        )
        return Run(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
async def devstack(mongo_url: str, nats: Nats, tmp_path: Path) -> AsyncIterator[DevStack]:
    creds = ensure_dev_credentials(tmp_path / "certs")  # where make run keeps them
    auth = AuthConfig.from_env({"WFM_JWT_PUBLIC_KEY_FILES": str(creds.jwt_public_key)})
    prefix = f"d{uuid.uuid4().hex[:10]}_"

    def settings(service: str) -> Settings:
        base = isolated_settings(
            service, mongo_url, nats.url, prefix=prefix, auth=auth, namespace=prefix.rstrip("_")
        )
        return replace(
            base,
            plaintext=False,
            tls_cert_file=str(creds.server_cert),
            tls_key_file=str(creds.server_key),
            tls_client_ca_file=str(creds.ca_cert),
        )

    saved = structlog.get_config()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.__stderr__))
    scheduling = await scheduling_main.start(settings("scheduling"), port=0)
    availability = await availability_main.start(settings("availability"), port=0)
    state = tmp_path / "current.json"
    ports = {"scheduling": scheduling.port, "availability": availability.port}
    state.write_text(json.dumps({"ports": ports, "pid": os.getpid(), "data_dir": str(tmp_path)}))
    try:
        yield DevStack(state, creds)
    finally:
        await availability.stop()
        await scheduling.stop()
        structlog.configure(**saved)


@pytest.mark.own_clock
async def test_found_by_its_state_file_over_mutual_tls(devstack: DevStack) -> None:
    who = await devstack("--as", "admin-1", "--role", "admin", "whoami", "--json")
    assert who.json()["transport"] == "TLS with a client certificate (mutual TLS)"
    assert who.json()["configured_from"].startswith("make run (")
    assert who.json()["subject"] == "admin-1"

    anonymous = await devstack("teams", "list")
    assert anonymous.exit_code == 8  # the certificate opens the connection; a token is needed

    demo = await devstack("demo", "--agents-per-team", "2", "--json")  # signs its own tokens
    assert demo.exit_code == 0, demo.stderr
    agents = [a for team in TEAMS for a in agent_ids(team, 2)]
    moves = sum(len(agent_moves(agent)) for agent in agents)
    seeded = demo.json()["seeded"]
    assert {k: seeded[k] for k in ("teams", "agents", "status changes")} == {
        "teams": 2,
        "agents": 4,
        "status changes": moves,
    }
    assert "courses" not in seeded and "cases" not in seeded  # no training, no performance here

    admin = ["--as", "admin-1", "--role", "admin"]
    query = ["audit", "list", "--json", "--service", "availability", "--subject", "p-1001"]
    records = await eventually(
        lambda: devstack(*admin, *query), lambda r: len(r.json()["records"]) >= 3
    )
    assert {r["roles"][0] for r in records.json()["records"]} == {"agent"}  # as each agent
    mine = await devstack("--as", "p-1001", "status", "get", "--json")
    assert mine.exit_code == 0 and mine.json()["agent_id"] == "p-1001"
