"""Server side of the benchmark, run in its own process so the load generator does not steal its
CPU: `python -m bench.server echo` or
`python -m bench.server system MONGO_URL NATS_URL AGENTS KEY_DIR`.

When ready it prints one JSON line (ports, pid, agent ids with their tokens). Then it obeys one
command per line on stdin and answers each with one JSON line on stdout:

- `settle`: waits until JetStream has every committed event and every projector has caught up.
- `lag-start` / `lag-stop PATH`: records when the board projection has applied each
  (agent, version), as time.monotonic() (CLOCK_MONOTONIC is one clock for every process), and
  writes [[agent_id, version, t], ...] to PATH.
- `profile-start` / `profile-stop PATH`: cProfile of the event-loop thread and of motor's
  worker threads (where pymongo runs the store calls); writes PATH.loop and PATH.threads.
- `quit`: stops the services and exits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import cProfile
import importlib
import json
import os
import pstats
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import motor.frameworks.asyncio as motor_asyncio
from wfm.events.v1.envelope_pb2 import EventEnvelope
from wfm.scheduling.v1 import directory_service_pb2 as directory_pb
from wfm.scheduling.v1 import directory_service_pb2_grpc as directory_grpc

from services.availability import main as availability_main
from services.scheduling import main as scheduling_main
from wfm_runtime import config
from wfm_runtime import logging as wlog
from wfm_runtime.service import tune_gc
from wfm_runtime.workers import ApiWorkers

# Looked up by name: the runtime's test helpers gained authentication; both versions work.
testing: Any = importlib.import_module("wfm_runtime.testing")

ECHO_SERVICE = "bench.Echo"
ECHO_METHOD = f"/{ECHO_SERVICE}/Echo"
TEAM = "bench"


def agent_ids(count: int) -> list[str]:
    return [f"agent-{i:04d}" for i in range(count)]


# --- echo -------------------------------------------------------------------------------------
async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


async def start_echo() -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        ECHO_SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


# --- the wfm system -----------------------------------------------------------------------------
class Tokens:
    """Tokens as tests/conftest.py makes them, when the services check tokens.

    With `wfm_runtime.testing.TokenMinter` (services with authentication), the services trust a
    fresh key pair, registration calls as an admin and each agent calls as itself (role agent,
    scope SELF: how SetStatus is called in production, so availability keeps the production
    per-caller rate limit; scheduling, only used to register the agents, has none). Without it
    (an older runtime), calls carry no token.
    """

    def __init__(self, key_dir: Path) -> None:
        minter_class = getattr(testing, "TokenMinter", None)
        if os.environ.get("WFM_BENCH_AUTH") == "off":  # the auth-cost comparison run
            minter_class = None
        self.minter = minter_class(key_dir / "bench-jwt.pub.pem") if minter_class else None

    def settings(self, service: str, mongo_url: str, nats_url: str, prefix: str) -> Any:
        # Its own NATS namespace as well: two systems may run on one NATS server in a bench run.
        extra: dict[str, Any] = {"prefix": prefix, "namespace": prefix.rstrip("_")}
        if self.minter is not None:
            extra["auth"] = self.minter.auth_config()
            production = getattr(config.load(service), "rate_limit_per_s", 0.0)
            extra["rate_limit_per_s"] = production if service == "availability" else 0.0
        return testing.isolated_settings(service, mongo_url, nats_url, **extra)

    def token(self, subject: str, role: str) -> str:
        return str(self.minter.token(subject, role)) if self.minter is not None else ""


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


class System:
    """Scheduling + availability in this process, as tests/conftest.py start_system does."""

    def __init__(self, mongo_url: str, nats_url: str, agents: int, key_dir: Path) -> None:
        self.prefix = f"b{os.getpid()}_{int(time.time())}_"
        self.mongo_url = mongo_url
        self.nats_url = nats_url
        self.agents = agent_ids(agents)
        self.tokens = Tokens(key_dir)
        self.scheduling: scheduling_main.SchedulingService | None = None
        self.availability: availability_main.AvailabilityService | None = None
        # Availability's processes (wfm_runtime.workers): this one plus workers - 1 API workers.
        self.workers = int(os.environ.get("WFM_BENCH_WORKERS", "1"))
        self.api_workers: ApiWorkers | None = None

    async def start(self) -> dict[str, Any]:
        urls = (self.mongo_url, self.nats_url)
        self.scheduling = await scheduling_main.start(
            self.tokens.settings("scheduling", *urls, self.prefix), port=0
        )
        availability_settings = replace(
            self.tokens.settings("availability", *urls, self.prefix), workers=self.workers
        )
        self.availability = await availability_main.start(availability_settings, port=0)
        if self.workers > 1:
            self.api_workers = ApiWorkers(
                "services.availability.main", availability_settings, self.availability.port
            )
            await self.api_workers.start()
        began = time.perf_counter()
        await self._register()
        return {
            "availability_port": self.availability.port,
            "scheduling_port": self.scheduling.port,
            "worker_pids": self.api_workers.pids if self.api_workers else [],
            "agents": {a: self.tokens.token(a, "agent") for a in self.agents},
            "admin": self.tokens.token("bench-admin", "admin"),
            "auth": self.tokens.minter is not None,
            "register_s": round(time.perf_counter() - began, 2),
        }

    async def _register(self) -> None:
        assert self.scheduling is not None
        admin = bearer(self.tokens.token("bench-admin", "admin"))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.scheduling.port}") as channel:
            stub = directory_grpc.DirectoryServiceStub(channel)
            await stub.CreateTeam(_team_request(), timeout=30, metadata=admin)
            gate = asyncio.Semaphore(16)

            async def create(agent_id: str) -> None:
                async with gate:
                    await stub.CreateAgent(_agent_request(agent_id), timeout=30, metadata=admin)

            await asyncio.gather(*(create(a) for a in self.agents))
        await self._wait_known()

    async def _wait_known(self, timeout: float = 90.0) -> None:
        assert self.availability is not None
        deadline = time.monotonic() + timeout
        missing = list(self.agents)
        while missing:
            missing = [a for a in missing if await self.availability.directory.agent(a) is None]
            if missing and time.monotonic() > deadline:
                raise TimeoutError(f"availability does not know {len(missing)} agents")
            await asyncio.sleep(0.1 if missing else 0)

    async def settle(self, timeout: float = 60.0) -> None:
        assert self.availability is not None
        runtime = self.availability.runtime
        deadline = time.monotonic() + timeout
        await runtime.relay.wait_settled(timeout)
        for runner in runtime.projectors:
            await runner.wait_caught_up(timeout=max(1.0, deadline - time.monotonic()))

    async def stop(self) -> None:
        if self.api_workers is not None:
            await self.api_workers.stop(grace_s=1.0)
        for service in (self.availability, self.scheduling):
            if service is not None:
                await service.stop()


def _team_request() -> directory_pb.CreateTeamRequest:
    return directory_pb.CreateTeamRequest(
        team_id=TEAM,
        idempotency_key=f"team-{TEAM}",
        team=directory_pb.Team(
            display_name="Bench", client_time_zone="America/New_York", client="acme"
        ),
    )


def _agent_request(agent_id: str) -> directory_pb.CreateAgentRequest:
    return directory_pb.CreateAgentRequest(
        agent_id=agent_id,
        idempotency_key=f"agent-{agent_id}",
        agent=directory_pb.Agent(
            display_name=agent_id,
            team=f"teams/{TEAM}",
            site="pune",
            time_zone="Asia/Kolkata",
            contract_type=directory_pb.CONTRACT_TYPE_FULL_TIME,
            weekly_minutes=2400,
        ),
    )


# --- lag recording ------------------------------------------------------------------------------
class LagRecorder:
    """A ProjectorRunner listener: it runs right after the board projection wrote a batch."""

    def __init__(self) -> None:
        self.applied: dict[tuple[str, int], float] = {}

    async def __call__(self, envelopes: list[EventEnvelope]) -> None:
        now = time.monotonic()
        for envelope in envelopes:
            self.applied.setdefault((envelope.aggregate_id, envelope.aggregate_version), now)

    def dump(self, path: str) -> None:
        rows = [[agent, version, t] for (agent, version), t in self.applied.items()]
        with open(path, "w") as out:
            json.dump(rows, out)


# --- profiling ----------------------------------------------------------------------------------
class ProfilingExecutor(concurrent.futures.Executor):
    """Wraps motor's executor: every store call runs under its worker thread's own cProfile."""

    def __init__(self, inner: concurrent.futures.Executor) -> None:
        self.inner = inner
        self.profiles: list[cProfile.Profile] = []
        self._local = threading.local()
        self._lock = threading.Lock()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        return self.inner.submit(self._profiled, fn, *args, **kwargs)

    def _profiled(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        profile: cProfile.Profile | None = getattr(self._local, "profile", None)
        if profile is None:
            profile = self._local.profile = cProfile.Profile()
            with self._lock:
                self.profiles.append(profile)
        profile.enable()
        try:
            return fn(*args, **kwargs)
        finally:
            profile.disable()


class Profiler:
    def __init__(self) -> None:
        self.loop_profile = cProfile.Profile()
        self.original = motor_asyncio._EXECUTOR
        self.threads = ProfilingExecutor(self.original)

    def start(self) -> None:
        motor_asyncio._EXECUTOR = self.threads  # type: ignore[assignment]
        self.loop_profile.enable()

    async def stop(self, path: str) -> None:
        self.loop_profile.disable()
        motor_asyncio._EXECUTOR = self.original
        await asyncio.sleep(0.5)  # store calls already submitted finish under their profile
        self.loop_profile.dump_stats(f"{path}.loop")
        if self.threads.profiles:
            pstats.Stats(*self.threads.profiles).dump_stats(f"{path}.threads")


# --- the command loop ---------------------------------------------------------------------------
class Controller:
    def __init__(self, system: System | None) -> None:
        self.system = system
        self.lag = LagRecorder()
        self.profiler: Profiler | None = None

    def board_runner(self) -> Any:
        assert self.system is not None and self.system.availability is not None
        runner = self.system.availability.runtime.projectors[0]
        assert runner.projection.name == "availability-board", runner.projection.name
        return runner

    async def handle(self, words: list[str]) -> dict[str, Any]:
        command, args = words[0], words[1:]
        if command == "settle":
            assert self.system is not None
            began = time.perf_counter()
            await self.system.settle()
            return {"settle_s": round(time.perf_counter() - began, 2)}
        if command == "lag-start":
            self.lag = LagRecorder()
            self.board_runner().listeners.append(self.lag)
        elif command == "lag-stop":
            self.board_runner().listeners.remove(self.lag)
            self.lag.dump(args[0])
        elif command == "profile-start":
            self.profiler = Profiler()
            self.profiler.start()
        elif command == "profile-stop":
            assert self.profiler is not None
            await self.profiler.stop(args[0])
        else:
            raise ValueError(f"unknown command {command!r}")
        return {}


def _say(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def _commands(controller: Controller) -> None:
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().split()
        if not line or line[0] == "quit":
            return
        try:
            _say({"ok": True, **await controller.handle(line)})
        except Exception as exc:
            _say({"ok": False, "error": repr(exc)})


async def serve(argv: list[str]) -> None:
    # Logs go to stderr (a file); stdout carries the protocol only. Production's level: info.
    wlog.configure(os.environ.get("LOG_LEVEL", "info"))
    if argv[0] == "echo":
        server, port = await start_echo()
        _say({"pid": os.getpid(), "port": port})
        await _commands(Controller(None))
        await server.stop(0.5)
        return
    system = System(argv[1], argv[2], int(argv[3]), Path(argv[4]))
    try:
        _say({"pid": os.getpid(), **await system.start()})
        await _commands(Controller(system))
    finally:
        await system.stop()


if __name__ == "__main__":
    tune_gc()  # as `run_main` does for a service process
    asyncio.run(serve(sys.argv[1:]))
