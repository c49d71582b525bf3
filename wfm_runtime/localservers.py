"""Real nats-server (JetStream) and FerretDB processes on free loopback ports.

Used by `make run`, the integration-test fixtures and `make bench`. Each
instance gets its own data directory and ports, so parallel sessions never
collide. When MONGO_URL / NATS_URL are set, callers use those servers instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL_BIN = ROOT / ".local" / "bin"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def nats_server(data_dir: Path, port: int | None = None) -> ManagedProcess:
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

    @property
    def nats_url(self) -> str:
        if self.nats is None:
            return os.environ["NATS_URL"]
        return f"nats://127.0.0.1:{self.nats.port}"

    @property
    def mongo_url(self) -> str:
        if self.mongo is None:
            return os.environ["MONGO_URL"]
        return f"mongodb://127.0.0.1:{self.mongo.port}/"

    def start(self) -> LocalServers:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            if "NATS_URL" not in os.environ:
                self.nats = nats_server(self.data_dir)
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
