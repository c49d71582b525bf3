"""Configuration from the environment, read once at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


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

    @property
    def database(self) -> str:
        """Database that holds the service's own writes (events, idempotency, outbox)."""
        return f"{self.database_prefix}{self.service}"

    @property
    def views_database(self) -> str:
        """Separate database for read views, so projectors never queue behind writes."""
        return f"{self.database_prefix}{self.service}_views"

    @property
    def grpc_address(self) -> str:
        return f"{self.grpc_host}:{self.grpc_port}"


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
    )
