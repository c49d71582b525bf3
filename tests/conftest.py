"""Fixtures: real FerretDB (or MONGO_URL) per session, a real nats-server per test."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from wfm.availability.v1 import availability_service_pb2_grpc as availability_grpc
from wfm.performance.v1 import performance_service_pb2_grpc as performance_grpc
from wfm.scheduling.v1 import directory_service_pb2 as directory_pb
from wfm.scheduling.v1 import directory_service_pb2_grpc as directory_grpc
from wfm.training.v1 import training_service_pb2_grpc as training_grpc

from services.availability import main as availability_main
from services.performance import main as performance_main
from services.scheduling import main as scheduling_main
from services.training import main as training_main
from wfm_runtime import localservers
from wfm_runtime.config import Settings
from wfm_runtime.testing import TokenMinter, channel, isolated_settings


@dataclass
class Nats:
    url: str
    process: localservers.ManagedProcess | None

    def stop(self) -> None:
        if self.process is None:
            pytest.skip("needs its own nats-server to stop (NATS_URL points at a shared one)")
        self.process.stop()

    def start(self) -> None:
        assert self.process is not None
        self.process.start()


@pytest.fixture(scope="session")
def mongo_server() -> Iterator[localservers.ManagedProcess | None]:
    """The session's FerretDB process (None when MONGO_URL points at an external server)."""
    if os.environ.get("MONGO_URL"):
        yield None
        return
    scratch = localservers.ROOT / ".local" / "test-data"
    scratch.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="ferretdb-", dir=scratch))
    server = localservers.ferretdb(data_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def mongo_url(mongo_server: localservers.ManagedProcess | None) -> str:
    if mongo_server is None:
        return os.environ["MONGO_URL"]
    return f"mongodb://127.0.0.1:{mongo_server.port}/"


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[Nats]:
    if os.environ.get("NATS_URL"):
        yield Nats(os.environ["NATS_URL"], None)
        return
    server = localservers.nats_server(tmp_path / "nats")
    server.start()
    try:
        yield Nats(f"nats://127.0.0.1:{server.port}", server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def minter() -> TokenMinter:
    """Signs test tokens; the services trust its public key."""
    scratch = localservers.ROOT / ".local" / "test-data"
    return TokenMinter(scratch / f"jwt-{uuid.uuid4().hex[:8]}.pub.pem")


@dataclass
class System:
    """The availability and scheduling services on real servers, with client stubs."""

    prefix: str
    mongo_url: str
    nats: Nats
    availability: availability_main.AvailabilityService
    scheduling: scheduling_main.SchedulingService
    channels: list[grpc.aio.Channel]
    avail: availability_grpc.AvailabilityServiceStub
    directory: directory_grpc.DirectoryServiceStub
    minter: TokenMinter
    namespace: str
    training: training_main.TrainingService
    train: training_grpc.TrainingServiceStub
    # Started by the `perf_system` fixture only (most tests do not need a third service).
    performance: performance_main.PerformanceService | None = None
    perf: performance_grpc.PerformanceServiceStub | None = None

    def settings_for(self, service: str, **extra: Any) -> Settings:
        """Settings of one more `service` process on this system (its servers, prefix, token
        key and NATS namespace): a replica, a twin, or a service the fixture did not start."""
        return isolated_settings(
            service,
            self.mongo_url,
            self.nats.url,
            prefix=self.prefix,
            auth=self.minter.auth_config(),
            namespace=self.namespace,
            **extra,
        )

    def perf_as(
        self, subject: str, *roles: str, teams: tuple[str, ...] = ()
    ) -> performance_grpc.PerformanceServiceStub:
        """A performance stub calling as `subject` with `roles`."""
        assert self.performance is not None, "use the perf_system fixture"
        token = self.minter.token(subject, *roles, teams=teams)
        ch = channel(f"127.0.0.1:{self.performance.port}", token)
        self.channels.append(ch)
        return performance_grpc.PerformanceServiceStub(ch)

    def as_caller(
        self, subject: str, *roles: str, teams: tuple[str, ...] = ()
    ) -> tuple[availability_grpc.AvailabilityServiceStub, directory_grpc.DirectoryServiceStub]:
        """Stubs that call as `subject` with `roles` (the default stubs call as an admin)."""
        token = self.minter.token(subject, *roles, teams=teams)
        ch_a = channel(f"127.0.0.1:{self.availability.port}", token)
        ch_s = channel(f"127.0.0.1:{self.scheduling.port}", token)
        self.channels += [ch_a, ch_s]
        return (
            availability_grpc.AvailabilityServiceStub(ch_a),
            directory_grpc.DirectoryServiceStub(ch_s),
        )

    def training_as(
        self, subject: str, *roles: str, teams: tuple[str, ...] = ()
    ) -> training_grpc.TrainingServiceStub:
        """A training stub that calls as `subject` with `roles`."""
        ch = channel(
            f"127.0.0.1:{self.training.port}", self.minter.token(subject, *roles, teams=teams)
        )
        self.channels.append(ch)
        return training_grpc.TrainingServiceStub(ch)

    async def add_team(
        self, team_id: str, zone: str = "America/New_York", client: str = "acme"
    ) -> None:
        await self.directory.CreateTeam(
            directory_pb.CreateTeamRequest(
                team_id=team_id,
                idempotency_key=f"team-{team_id}",
                team=directory_pb.Team(
                    display_name=f"Team {team_id}", client_time_zone=zone, client=client
                ),
            )
        )

    async def add_agent(self, agent_id: str, team_id: str, zone: str = "Asia/Kolkata") -> None:
        await self.directory.CreateAgent(
            directory_pb.CreateAgentRequest(
                agent_id=agent_id,
                idempotency_key=f"agent-{agent_id}",
                agent=directory_pb.Agent(
                    display_name=agent_id,
                    team=f"teams/{team_id}",
                    site="pune",
                    time_zone=zone,
                    contract_type=directory_pb.CONTRACT_TYPE_FULL_TIME,
                    weekly_minutes=2400,
                ),
            )
        )

    async def known_to_availability(self, agent_id: str) -> None:
        from wfm_runtime.testing import eventually

        await eventually(lambda: self.availability.directory.agent(agent_id))

    async def known_to_training(self, agent_id: str) -> None:
        from wfm_runtime.testing import eventually

        await eventually(lambda: self.training.directory.agent(agent_id))


async def start_system(mongo_url: str, nats: Nats, minter: TokenMinter, prefix: str = "") -> System:
    prefix = prefix or f"t{uuid.uuid4().hex[:10]}_"
    # Its own NATS namespace too, so tests can share one external NATS server (NATS_URL).
    namespace = prefix.rstrip("_")
    auth = minter.auth_config()
    scheduling = await scheduling_main.start(
        isolated_settings(
            "scheduling", mongo_url, nats.url, prefix=prefix, auth=auth, namespace=namespace
        ),
        port=0,
    )
    availability = await availability_main.start(
        isolated_settings(
            "availability", mongo_url, nats.url, prefix=prefix, auth=auth, namespace=namespace
        ),
        port=0,
    )
    training = await training_main.start(
        isolated_settings(
            "training", mongo_url, nats.url, prefix=prefix, auth=auth, namespace=namespace
        ),
        port=0,
    )
    admin = minter.token("admin-1", "admin")
    ch_a = channel(f"127.0.0.1:{availability.port}", admin)
    ch_s = channel(f"127.0.0.1:{scheduling.port}", admin)
    ch_t = channel(f"127.0.0.1:{training.port}", admin)
    return System(
        prefix,
        mongo_url,
        nats,
        availability,
        scheduling,
        [ch_a, ch_s, ch_t],
        availability_grpc.AvailabilityServiceStub(ch_a),
        directory_grpc.DirectoryServiceStub(ch_s),
        minter,
        namespace,
        training,
        training_grpc.TrainingServiceStub(ch_t),
    )


async def start_performance(system: System) -> None:
    """Adds the performance service to a running system (same servers, prefix, namespace)."""
    system.performance = await performance_main.start(system.settings_for("performance"), port=0)
    system.perf = system.perf_as("admin-1", "admin")


async def stop_system(system: System) -> None:
    for open_channel in system.channels:
        await open_channel.close()
    if system.performance is not None:
        await system.performance.stop()
    await system.training.stop()
    await system.availability.stop()
    await system.scheduling.stop()


@pytest.fixture
async def system(mongo_url: str, nats: Nats, minter: TokenMinter) -> AsyncIterator[System]:
    running = await start_system(mongo_url, nats, minter)
    try:
        yield running
    finally:
        await stop_system(running)


@pytest.fixture
async def perf_system(system: System) -> AsyncIterator[System]:
    """The system with the performance service too (stopped with the system)."""
    await start_performance(system)
    yield system


ROOT = Path(__file__).resolve().parents[1]
SpawnService = Callable[..., "subprocess.Popen[bytes]"]


@pytest.fixture
def service_process(mongo_url: str, nats: Nats, minter: TokenMinter) -> Iterator[SpawnService]:
    """Runs availability as its own OS process (in its own process group, with any API workers
    it starts), so a test can SIGKILL it: `spawn(prefix, port, extra_env=None)`."""
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(
        prefix: str, port: int, extra_env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "MONGO_URL": mongo_url,
            "NATS_URL": nats.url,
            "WFM_DB_PREFIX": prefix,
            "AVAILABILITY_PORT": str(port),
            "WFM_RELAY_SWEEP_S": "0.5",
            "LOG_LEVEL": "warning",
            "PYTHONPATH": f"{ROOT}:{ROOT / 'gen' / 'python'}",
            "WFM_DEV_MODE": "1",
            "WFM_DEV_PLAINTEXT": "1",
            "WFM_RATE_LIMIT_PER_S": "0",
            "WFM_JWT_PUBLIC_KEY_FILES": str(minter.public_key_file),
            "WFM_NAMESPACE": prefix.rstrip("_"),
            **(extra_env or {}),
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.availability.main"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        procs.append(proc)
        localservers.wait_for_port(port, proc, timeout=30)
        return proc

    yield spawn
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--clock-ahead-hours",
        type=int,
        default=0,
        help="run with this process's clock moved ahead (make test-ahead): finds tests whose"
        " fixed dates or weekdays stop holding as the calendar moves on",
    )


def pytest_configure(config: pytest.Config) -> None:
    hours = config.getoption("--clock-ahead-hours")
    if hours:
        # time-machine moves the wall clock (datetime.now, time.time) of this process and
        # leaves time.monotonic alone, so asyncio's timers and every deadline still run true.
        import time_machine

        ahead = datetime.now(UTC) + timedelta(hours=hours)
        time_machine.travel(ahead, tick=True).start()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--clock-ahead-hours"):
        return
    skip = pytest.mark.skip(
        reason="starts processes or TLS handshakes that keep the machine's own clock"
    )
    for item in items:
        if item.get_closest_marker("own_clock"):
            item.add_marker(skip)
