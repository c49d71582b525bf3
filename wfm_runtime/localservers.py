"""Real nats-server (JetStream) and FerretDB processes on free loopback ports.

Used by `make run`, the integration-test fixtures and `make bench`. Each
instance gets its own data directory and ports, so parallel sessions never
collide. When MONGO_URL / NATS_URL are set, callers use those servers instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
LOCAL_BIN = ROOT / ".local" / "bin"


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on now, and never one this process was given before:
    the kernel hands a just-closed port out again, so two servers set up one after the other
    and started later would otherwise get the same one (the second then fails to bind, while
    its start-up check connects to the first)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def _binary(env_var: str, name: str) -> str:
    explicit = os.environ.get(env_var)
    if explicit:
        return explicit
    for candidate in (LOCAL_BIN / name, ROOT / ".venv" / "bin" / name):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found: run `make bootstrap` or set {env_var}")
    return found


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not open within {timeout}s")


@dataclass
class ManagedProcess:
    """One server process with its port and log file."""

    name: str
    argv: list[str]
    port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            start_new_session=True,  # Ctrl-C in `make run` is handled by us, not forwarded
        )
        wait_for_port(self.port, self.proc)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass(frozen=True)
class NatsUser:
    """A nats-server user and what it may publish and subscribe to."""

    name: str
    password: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    allow_responses: bool = False  # may answer requests it received (their reply subjects)

    def config(self) -> dict[str, object]:
        permissions: dict[str, object] = {
            "publish": {"allow": list(self.publish)},
            "subscribe": {"allow": list(self.subscribe)},
        }
        if self.allow_responses:
            permissions["allow_responses"] = True
        return {"user": self.name, "password": self.password, "permissions": permissions}


def _stream(service: str) -> str:
    return f"WFM_{service.upper()}"


def inbox_prefix(service: str) -> str:
    """Each service's replies arrive under its own inbox prefix, so no one else can read them."""
    return f"_INBOX_{service}"


def service_permissions(
    service: str, consumes: Sequence[str] = ()
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(publish, subscribe) allow-lists of a service's NATS user.

    Publishes only its own events (`wfm.<service>.>`); creates and updates only its own stream
    (a consumer waits until the producer has created the stream it reads); runs durable pull
    consumers (create, info, delete, fetch, ack) on the streams it reads only. Subscribes only
    to its own events (live watches), its control subject and its own inboxes
    (`_INBOX_<service>.>`: replies to its requests, fetched messages). It answers control
    requests through
    `allow_responses`, so it cannot publish to anyone else's inbox unasked.
    """
    own = _stream(service)
    streams = [_stream(s) for s in dict.fromkeys([service, *consumes])]
    publish = [f"wfm.{service}.>", f"$JS.API.STREAM.CREATE.{own}", f"$JS.API.STREAM.UPDATE.{own}"]
    for stream in streams:
        publish += [
            f"$JS.API.STREAM.INFO.{stream}",
            f"$JS.API.CONSUMER.CREATE.{stream}.>",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.*",
            f"$JS.API.CONSUMER.INFO.{stream}.*",
            f"$JS.API.CONSUMER.DELETE.{stream}.*",
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.*",
            f"$JS.ACK.{stream}.>",
        ]
    subscribe = [f"wfm.{service}.>", f"wfm.control.{service}.>", f"{inbox_prefix(service)}.>"]
    return tuple(publish), tuple(subscribe)


CONTROL_USER = "devstack"
# The control user sends control requests (rebuild-views) and may inspect JetStream read-only.
CONTROL_PUBLISH = (
    "wfm.control.>",
    "$JS.API.INFO",
    "$JS.API.STREAM.NAMES",
    "$JS.API.STREAM.LIST",
    "$JS.API.STREAM.INFO.*",
    "$JS.API.CONSUMER.NAMES.*",
    "$JS.API.CONSUMER.LIST.*",
    "$JS.API.CONSUMER.INFO.*.*",
)


def nats_users(data_dir: Path, services: Mapping[str, Sequence[str]]) -> list[NatsUser]:
    """One user per service (`services` maps each to the other services whose streams it
    reads) plus the control user. Passwords are random, made once per data folder and kept
    in `nats-passwords.json` (mode 0600) there."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "nats-passwords.json"
    try:
        passwords: dict[str, str] = json.loads(path.read_text())
    except (OSError, ValueError):
        passwords = {}
    names = [*services, CONTROL_USER]
    if any(name not in passwords for name in names):
        passwords = {name: passwords.get(name) or secrets.token_urlsafe(24) for name in names}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(passwords, out)
    os.chmod(path, 0o600)
    users = [
        NatsUser(name, passwords[name], *service_permissions(name, consumes), allow_responses=True)
        for name, consumes in services.items()
    ]
    users.append(NatsUser(CONTROL_USER, passwords[CONTROL_USER], CONTROL_PUBLISH, ("_INBOX.>",)))
    return users


def nats_url(port: int, user: NatsUser | None = None, host: str = "127.0.0.1") -> str:
    if user is None:
        return f"nats://{host}:{port}"
    return f"nats://{quote(user.name, safe='')}:{quote(user.password, safe='')}@{host}:{port}"


def nats_server(
    data_dir: Path, port: int | None = None, users: Sequence[NatsUser] = ()
) -> ManagedProcess:
    """nats-server with JetStream; with `users`, only they may connect, each within its
    permissions (written to `nats.conf` in `data_dir`, mode 0600)."""
    port = port or free_port()
    store = data_dir / "jetstream"
    store.mkdir(parents=True, exist_ok=True)
    argv = [
        _binary("NATS_SERVER_BIN", "nats-server"),
        "--jetstream",
        "--store_dir",
        str(store),
        "--addr",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    if users:
        conf = data_dir / "nats.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:  # the config format accepts JSON
            json.dump({"authorization": {"users": [u.config() for u in users]}}, out, indent=2)
        os.chmod(conf, 0o600)
        argv += ["--config", str(conf)]
    return ManagedProcess("nats-server", argv, port, data_dir / "nats.log")


def ferretdb(data_dir: Path, port: int | None = None, backend: str = "sqlite") -> ManagedProcess:
    """FerretDB v1 on loopback. backend: `sqlite` (default) or a postgres:// URL."""
    port = port or free_port()
    argv = [
        _binary("FERRETDB_BIN", "ferretdb"),
        f"--listen-addr=127.0.0.1:{port}",
        "--state-dir=-",
        "--debug-addr=-",
        "--telemetry=disable",
        "--log-level=warn",
    ]
    if backend == "sqlite":
        sqlite_dir = data_dir / "sqlite"
        sqlite_dir.mkdir(parents=True, exist_ok=True)
        argv += ["--handler=sqlite", f"--sqlite-url=file:{sqlite_dir}/"]
    else:
        argv += ["--handler=postgresql", f"--postgresql-url={backend}"]
    return ManagedProcess("ferretdb", argv, port, data_dir / "ferretdb.log")


@dataclass
class LocalServers:
    """The two real servers the services need, or the external ones from the environment."""

    data_dir: Path
    nats: ManagedProcess | None = None
    mongo: ManagedProcess | None = None
    nats_users: Sequence[NatsUser] = ()  # set: the local nats-server admits only these users

    @property
    def nats_url(self) -> str:
        if self.nats is None:
            return os.environ["NATS_URL"]
        return nats_url(self.nats.port)

    def nats_url_for(self, user: str) -> str:
        """The URL with `user`'s credentials (the external NATS_URL as it is)."""
        if self.nats is None:
            return os.environ["NATS_URL"]
        found = next((u for u in self.nats_users if u.name == user), None)
        if found is None:
            raise KeyError(f"no NATS user {user!r}")
        return nats_url(self.nats.port, found)

    @property
    def mongo_url(self) -> str:
        if self.mongo is None:
            return os.environ["MONGO_URL"]
        return f"mongodb://127.0.0.1:{self.mongo.port}/"

    def start(self) -> LocalServers:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            if "NATS_URL" not in os.environ:
                self.nats = nats_server(self.data_dir, users=self.nats_users)
                self.nats.start()
            if "MONGO_URL" not in os.environ:
                self.mongo = ferretdb(self.data_dir)
                self.mongo.start()
        except BaseException:
            self.stop()  # never leave a half-started pair behind
            raise
        return self

    def stop(self) -> None:
        for proc in (self.nats, self.mongo):
            if proc is not None:
                proc.stop()


@contextlib.contextmanager
def local_servers(keep_data: bool = False) -> Iterator[LocalServers]:
    data_dir = Path(tempfile.mkdtemp(prefix="wfm-servers-"))
    servers = LocalServers(data_dir).start()
    try:
        yield servers
    finally:
        servers.stop()
        if not keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)
