"""Settings travel to an API worker as environment variables and come back equal."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from wfm_runtime import config
from wfm_runtime.auth import AuthConfig
from wfm_runtime.testing import TokenMinter


def test_settings_read_back_from_their_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    minter = TokenMinter(tmp_path / "jwt.pub.pem", issuer="floor", audience="wfm-api")
    settings = replace(
        config.load("availability"),
        mongo_url="mongodb://db.example:27018/",
        nats_url="nats://bus.example:4223",
        grpc_port=61000,
        database_prefix="t1_",
        log_level="warning",
        write_timeout_s=2.5,
        relay_sweep_interval_s=0.5,
        shutdown_grace_s=0.25,
        dev_mode=True,
        plaintext=True,
        auth=minter.auth_config(),
        rate_limit_per_s=0.0,
        rate_limit_burst=7.0,
        namespace="t1",
        workers=3,
    )
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    read_back = config.load("availability")
    assert replace(read_back, auth=None) == replace(settings, auth=None)
    auth = AuthConfig.from_env()
    assert (auth.issuer, auth.audience, len(auth.public_keys)) == ("floor", "wfm-api", 1)


def test_a_worker_knows_its_role(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not config.load("availability").is_api_worker
    monkeypatch.setenv("WFM_ROLE", config.API_WORKER)
    monkeypatch.setenv("AVAILABILITY_WORKERS", "0")  # nonsense counts mean one process
    loaded = config.load("availability")
    assert loaded.is_api_worker and loaded.workers == 1
