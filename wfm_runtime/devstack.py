"""`make run`: the whole system on this machine; `make rebuild-views`: replay every view.

    python -m wfm_runtime.devstack run            # servers + services + ready banner; Ctrl-C stops
    python -m wfm_runtime.devstack rebuild-views  # asks each running service to rebuild its views
    python -m wfm_runtime.devstack token --subject a-1001 --role agent [--role ...]
                                                  # prints a development token (`make token`)

Local servers (nats-server, FerretDB) keep their data in .local/run/default between runs; a
second `make run` while one is running gets its own folder and free ports. MONGO_URL and
NATS_URL switch to external servers.

The services run as they would in production, only with development credentials made in the
data folder (wfm_runtime.devcerts): gRPC over TLS with mutual TLS (clients present the
development client certificate), bearer tokens signed by the development key, and a NATS user
per service that may publish only its own events (wfm_runtime.localservers.nats_users).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

import grpc
import nats
from grpc_health.v1 import health_pb2, health_pb2_grpc

from wfm_runtime.auth import Role
from wfm_runtime.config import DEFAULT_PORTS
from wfm_runtime.devcerts import DevCredentials, ensure_dev_credentials
from wfm_runtime.localservers import (
    CONTROL_USER,
    ROOT,
    LocalServers,
    free_port,
    nats_users,
    wait_for_port,
)

SERVICES = ["scheduling", "availability", "training", "performance"]  # directory first
# The other services whose event streams each service reads (ServiceRuntime(consumes=...)):
# its NATS user may consume those streams and nothing else.
CONSUMES: dict[str, list[str]] = {
    "scheduling": [],
    "availability": ["scheduling"],
    "training": ["scheduling"],
    "performance": ["scheduling", "availability", "training"],
}
RUN_DIR = ROOT / ".local" / "run"
STATE_FILE = RUN_DIR / "current.json"
CERTS = "certs"  # development certificates and token keys, inside the data folder
# Inherited settings that would weaken what `make run` starts: it always runs TLS + tokens.
_DROPPED_ENV = ("WFM_DEV_PLAINTEXT", "WFM_AUTH", "WFM_JWT_HS256_SECRET", "WFM_JWT_JWKS_FILE")


def _claim_data_dir() -> tuple[Path, IO[str]]:
    """The default data folder, or a private one if another `make run` holds it."""
    for name in ("default", f"run-{os.getpid()}"):
        folder = RUN_DIR / name
        folder.mkdir(parents=True, exist_ok=True)
        lock = (folder / ".lock").open("w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        return folder, lock
    raise RuntimeError("no data folder available")


def _port_for(service: str) -> int:
    preferred = DEFAULT_PORTS[service]
    try:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", preferred))
    except OSError:
        return free_port()
    return preferred


def _spawn(
    service: str, port: int, servers: LocalServers, creds: DevCredentials, log_dir: Path
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    env.update(
        {
            "MONGO_URL": servers.mongo_url,
            "NATS_URL": servers.nats_url_for(service),
            f"{service.upper()}_PORT": str(port),
            "PYTHONPATH": f"{ROOT}:{ROOT / 'gen' / 'python'}",
            "WFM_DEV_MODE": "1",
            **creds.server_env(),
        }
    )
    log = (log_dir / f"{service}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", f"services.{service}.main"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def _start_service(
    service: str, servers: LocalServers, creds: DevCredentials, log_dir: Path
) -> tuple[subprocess.Popen[bytes], int]:
    """Starts a service on its usual port, or on a free one when that port was taken between
    the probe and the service's bind (another `make run` starting at the same moment)."""
    port = _port_for(service)
    while True:
        proc = _spawn(service, port, servers, creds, log_dir)
        try:
            wait_for_port(port, proc, timeout=60)
            await _wait_healthy(port, creds, proc)
            return proc, port
        except RuntimeError:  # wait_for_port's "exited", or ServiceExited
            if proc.poll() is None or port != DEFAULT_PORTS[service]:
                raise
        print(f"{service}: port {port} was taken meanwhile; using a free port", flush=True)
        port = free_port()


class ServiceExited(RuntimeError):
    """The service process ended while we waited for it to serve."""


async def _wait_healthy(
    port: int, creds: DevCredentials, proc: subprocess.Popen[bytes], timeout: float = 30.0
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", creds.channel_credentials()) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            # Whoever answers on the port, it is not our service once that has exited.
            if proc.poll() is not None:
                raise ServiceExited(f"{proc.args!r} exited with {proc.returncode}")
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"service on port {port} not healthy")
            await asyncio.sleep(0.2)


def _banner(
    servers: LocalServers, ports: dict[str, int], data_dir: Path, creds: DevCredentials
) -> str:
    a, s = ports["availability"], ports["scheduling"]
    t, p = ports["training"], ports["performance"]
    tls = f"-cacert {creds.ca_cert} -cert {creds.client_cert} -key {creds.client_key}"
    bearer = '-H "authorization: Bearer $TOKEN"'
    agent = '-H "authorization: Bearer $AGENT_TOKEN"'
    return f"""
================ wfm is running ================
  scheduling (directory)  127.0.0.1:{s}   wfm.scheduling.v1.DirectoryService
  scheduling (rosters)    127.0.0.1:{s}   wfm.scheduling.v1.RosterService
  availability            127.0.0.1:{a}   wfm.availability.v1.AvailabilityService
  training                127.0.0.1:{t}   wfm.training.v1.TrainingService
  performance             127.0.0.1:{p}   wfm.performance.v1.PerformanceService
  MongoDB wire (FerretDB) {servers.mongo_url}
  NATS JetStream          {servers.nats_url}  (a user per service: {data_dir}/nats.conf)
  data and logs           {data_dir}
  TLS (mutual)            CA {creds.ca_cert}
                          client cert {creds.client_cert}, key {creds.client_key}

Get tokens (ES256, signed by the development key {creds.jwt_private_key}):
  export TOKEN=$(make -s token ARGS="--subject admin-1 --role admin")
  export AGENT_TOKEN=$(make -s token ARGS="--subject a-1001 --role agent")
  (options: --role <role> (repeatable), --team <team id> (repeatable), --ttl <seconds>)

Try it (grpcurl; reflection is on):
  grpcurl {tls} {bearer} -d '{{"team_id":"pune-night","idempotency_key":"t1","team":{{"display_name":"Pune night","client_time_zone":"America/New_York"}}}}' 127.0.0.1:{s} wfm.scheduling.v1.DirectoryService/CreateTeam
  grpcurl {tls} {bearer} -d '{{"agent_id":"a-1001","idempotency_key":"a1","agent":{{"display_name":"Asha","team":"teams/pune-night","site":"pune","time_zone":"Asia/Kolkata","contract_type":"CONTRACT_TYPE_FULL_TIME","weekly_minutes":2700}}}}' 127.0.0.1:{s} wfm.scheduling.v1.DirectoryService/CreateAgent
  grpcurl {tls} {agent} -d '{{"name":"agents/a-1001/availability","status":"AGENT_STATUS_AVAILABLE","idempotency_key":"s1"}}' 127.0.0.1:{a} wfm.availability.v1.AvailabilityService/SetStatus
  grpcurl {tls} {bearer} -d '{{"team":"teams/pune-night"}}' 127.0.0.1:{a} wfm.availability.v1.AvailabilityService/WatchAvailability
  grpcurl {tls} {agent} -d '{{"name":"agents/a-1001/scorecard","period":{{"start_date":"2026-11-01","end_date":"2026-11-30"}}}}' 127.0.0.1:{p} wfm.performance.v1.PerformanceService/GetScorecard
  grpcurl {tls} {agent} -d '{{"name":"agents/a-1001/transcript"}}' 127.0.0.1:{t} wfm.training.v1.TrainingService/GetTranscript
Or with the wfm command (docs/cli.md; it finds this system by itself):
  export PATH=$PWD/.venv/bin:$PATH WFM_TOKEN=$(make -s token ARGS="--subject admin-1 --role admin")
  make demo; wfm board --team pune-night; wfm --as p-1001 status set break
Rebuild every view from the streams: make rebuild-views
Ctrl-C stops everything.
================================================
"""  # noqa: E501


async def run() -> None:
    data_dir, lock = _claim_data_dir()
    creds = ensure_dev_credentials(data_dir / CERTS)
    servers = LocalServers(data_dir, nats_users=nats_users(data_dir, CONSUMES)).start()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        ports: dict[str, int] = {}
        for name in SERVICES:
            procs[name], ports[name] = await _start_service(name, servers, creds, data_dir)
        state = {
            "nats_url": servers.nats_url_for(CONTROL_USER),  # the control user, for rebuild-views
            "mongo_url": servers.mongo_url,
            "ports": ports,
            "pid": os.getpid(),
            "data_dir": str(data_dir),
        }
        fd = os.open(STATE_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(state, out)
        os.chmod(STATE_FILE, 0o600)  # it holds the control user's NATS password
        print(_banner(servers, ports, data_dir, creds), flush=True)
        await _until_signal_or_exit(procs)
    finally:
        _stop_services(procs)
        servers.stop()
        with contextlib.suppress(FileNotFoundError):
            if json.loads(STATE_FILE.read_text()).get("pid") == os.getpid():
                STATE_FILE.unlink()
        lock.close()
        print("wfm stopped.", flush=True)


async def _until_signal_or_exit(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    while not stop.is_set():
        dead = [name for name, proc in procs.items() if proc.poll() is not None]
        if dead:
            print(f"service(s) exited: {', '.join(dead)}; see their logs", file=sys.stderr)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await stop.wait()


def _stop_services(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs.values():
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


async def rebuild_views() -> int:
    from wfm_runtime.service import control_subject  # needs the generated code (make proto)

    nats_url = os.environ.get("NATS_URL")
    if not nats_url:
        if not STATE_FILE.exists():
            print("no running system found: start it with `make run` or set NATS_URL")
            return 2
        nats_url = json.loads(STATE_FILE.read_text())["nats_url"]
    nc = await nats.connect(nats_url, connect_timeout=3)
    failures = 0
    try:
        for service in SERVICES:
            try:
                reply = await nc.request(
                    control_subject(service, "rebuild-views"), b"", timeout=300
                )
            except Exception as exc:
                print(f"{service}: no answer ({exc!r})")
                failures += 1
                continue
            print(f"{service}: {reply.data.decode()}")
    finally:
        await nc.close()
    return 1 if failures else 0


def _running_state() -> dict[str, object] | None:
    """The state of the `make run` that is running now, if any."""
    try:
        state: dict[str, object] = json.loads(STATE_FILE.read_text())
        os.kill(int(str(state["pid"])), 0)
    except (OSError, ValueError, KeyError):
        return None
    return state


def token(subject: str, roles: list[str], teams: list[str], ttl_s: int) -> str:
    """A token signed with the development key of the running `make run` (else the default
    data folder, whose key the next `make run` uses)."""
    state = _running_state()
    data_dir = Path(str(state["data_dir"])) if state and "data_dir" in state else None
    creds = ensure_dev_credentials((data_dir or RUN_DIR / "default") / CERTS)
    return creds.token(
        subject,
        roles,
        teams=teams,
        ttl_s=ttl_s,
        issuer=os.environ.get("WFM_JWT_ISSUER", "wfm"),
        audience=os.environ.get("WFM_JWT_AUDIENCE", "wfm"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="wfm-devstack")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start servers and services; Ctrl-C stops them")
    commands.add_parser("rebuild-views", help="ask each running service to rebuild its views")
    issue = commands.add_parser("token", help="print a development token")
    issue.add_argument("--subject", required=True, help="employee id, e.g. a-1001")
    issue.add_argument(
        "--role",
        dest="roles",
        action="append",
        required=True,
        choices=[r.value for r in Role],
        help="repeatable",
    )
    issue.add_argument("--team", dest="teams", action="append", default=[], help="repeatable")
    issue.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    args = parser.parse_args()
    if args.command == "run":
        asyncio.run(run())
    elif args.command == "token":
        print(token(args.subject, args.roles, args.teams, args.ttl))
    else:
        sys.exit(asyncio.run(rebuild_views()))


if __name__ == "__main__":
    main()
