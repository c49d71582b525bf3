"""Configuration from the environment, read once at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass

from wfm_runtime.auth import AuthConfig


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


PRIMARY = "primary"
API_WORKER = "api"


@dataclass(frozen=True)
class Settings:
    """Everything a service needs to start; every field has an environment variable."""

    service: str
    mongo_url: str
    nats_url: str
    grpc_host: str
    grpc_port: int
    database_prefix: str
    log_level: str
    max_message_bytes: int
    write_timeout_s: float
    relay_sweep_interval_s: float
    shutdown_grace_s: float
    # Security (docs/security.md). Plaintext gRPC and switching auth off need explicit flags.
    dev_mode: bool = False
    plaintext: bool = False
    auth_enabled: bool = True
    auth: AuthConfig | None = None  # None: read from the environment when the service starts
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""  # set -> clients must present a certificate it signed (mTLS)
    rate_limit_per_s: float = 20.0
    rate_limit_burst: float = 100.0
    # Root of NATS subjects, streams and consumers; a system sharing a NATS server needs its own.
    namespace: str = "wfm"
    # Processes serving the RPCs on one port (docs/workers.md): the primary (it also runs the
    # projectors) starts `workers - 1` API-only processes with role "api".
    workers: int = 1
    role: str = PRIMARY

    @property
    def database(self) -> str:
        """Database that holds the service's own writes (events, relay horizons)."""
        return f"{self.database_prefix}{self.service}"

    @property
    def views_database(self) -> str:
        """Separate database for read views, so projectors never queue behind writes."""
        return f"{self.database_prefix}{self.service}_views"

    @property
    def grpc_address(self) -> str:
        return f"{self.grpc_host}:{self.grpc_port}"

    @property
    def is_api_worker(self) -> bool:
        return self.role == API_WORKER

    def to_env(self) -> dict[str, str]:
        """The environment `load(self.service)` reads back as these settings (an API worker's)."""
        upper = self.service.upper()
        env = {
            "MONGO_URL": self.mongo_url,
            "NATS_URL": self.nats_url,
            "GRPC_HOST": self.grpc_host,
            f"{upper}_PORT": str(self.grpc_port),
            "WFM_DB_PREFIX": self.database_prefix,
            "LOG_LEVEL": self.log_level,
            "GRPC_MAX_MESSAGE_BYTES": str(self.max_message_bytes),
            "WFM_WRITE_TIMEOUT_S": repr(self.write_timeout_s),
            "WFM_RELAY_SWEEP_S": repr(self.relay_sweep_interval_s),
            "WFM_SHUTDOWN_GRACE_S": repr(self.shutdown_grace_s),
            "WFM_DEV_MODE": "1" if self.dev_mode else "0",
            "WFM_DEV_PLAINTEXT": "1" if self.plaintext else "0",
            "WFM_AUTH": "on" if self.auth_enabled else "off",
            "WFM_TLS_CERT_FILE": self.tls_cert_file,
            "WFM_TLS_KEY_FILE": self.tls_key_file,
            "WFM_TLS_CLIENT_CA_FILE": self.tls_client_ca_file,
            "WFM_RATE_LIMIT_PER_S": repr(self.rate_limit_per_s),
            "WFM_RATE_LIMIT_BURST": repr(self.rate_limit_burst),
            "WFM_NAMESPACE": self.namespace,
            f"{upper}_WORKERS": str(self.workers),
            "WFM_ROLE": self.role,
        }
        if self.auth is not None:
            env.update(self.auth.source_env)
        return env


DEFAULT_PORTS = {
    "availability": 50051,
    "scheduling": 50052,
    "training": 50053,
    "performance": 50054,
}


def load(service: str) -> Settings:
    upper = service.upper()
    return Settings(
        service=service,
        mongo_url=os.environ.get("MONGO_URL", "mongodb://127.0.0.1:27017/"),
        nats_url=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"),
        grpc_host=os.environ.get("GRPC_HOST", "127.0.0.1"),
        grpc_port=_int(f"{upper}_PORT", DEFAULT_PORTS.get(service, 50050)),
        database_prefix=os.environ.get("WFM_DB_PREFIX", "wfm_"),
        log_level=os.environ.get("LOG_LEVEL", "info"),
        max_message_bytes=_int("GRPC_MAX_MESSAGE_BYTES", 4 * 1024 * 1024),
        write_timeout_s=_float("WFM_WRITE_TIMEOUT_S", 10.0),
        relay_sweep_interval_s=_float("WFM_RELAY_SWEEP_S", 5.0),
        shutdown_grace_s=_float("WFM_SHUTDOWN_GRACE_S", 5.0),
        dev_mode=os.environ.get("WFM_DEV_MODE") == "1",
        plaintext=os.environ.get("WFM_DEV_PLAINTEXT") == "1",
        auth_enabled=os.environ.get("WFM_AUTH", "on") != "off",
        tls_cert_file=os.environ.get("WFM_TLS_CERT_FILE", ""),
        tls_key_file=os.environ.get("WFM_TLS_KEY_FILE", ""),
        tls_client_ca_file=os.environ.get("WFM_TLS_CLIENT_CA_FILE", ""),
        rate_limit_per_s=_float("WFM_RATE_LIMIT_PER_S", 20.0),
        rate_limit_burst=_float("WFM_RATE_LIMIT_BURST", 100.0),
        namespace=os.environ.get("WFM_NAMESPACE", "wfm"),
        workers=max(1, _int(f"{upper}_WORKERS", 1)),
        role=os.environ.get("WFM_ROLE", PRIMARY),
    )


def auth_config(settings: Settings) -> AuthConfig | None:
    """The token configuration, or None when auth is off (allowed in development mode only)."""
    if not settings.auth_enabled:
        if not settings.dev_mode:
            raise ValueError("WFM_AUTH=off is for development only: set WFM_DEV_MODE=1")
        return None
    return settings.auth or AuthConfig.from_env()
