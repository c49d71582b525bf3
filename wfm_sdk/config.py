"""Where the services are and how to call them: environment, config file, or `make run`.

Resolution, field by field, the first that gives a value wins:

1. arguments given to `ClientConfig.load(...)` (the CLI's global options),
2. environment: `WFM_<SERVICE>_ADDR` (e.g. `WFM_AVAILABILITY_ADDR=127.0.0.1:50051`),
   `WFM_TOKEN`, `WFM_CA_FILE`, `WFM_CLIENT_CERT_FILE`, `WFM_CLIENT_KEY_FILE`,
   `WFM_PLAINTEXT=1`, `WFM_TIMEOUT_S`,
3. the TOML config file `WFM_CONFIG` (default `~/.config/wfm/config.toml`)::

       token = "eyJ..."
       timeout_s = 10
       [addresses]
       availability = "wfm.example.com:443"
       scheduling = "wfm.example.com:443"
       [tls]
       ca_file = "/etc/wfm/ca.pem"
       cert_file = "/etc/wfm/client.pem"   # mutual TLS (optional)
       key_file = "/etc/wfm/client.key"

4. only when none of the above names any address: the state file of the running `make run`
   (`.local/run/current.json` of this checkout, or `WFM_DEVSTACK_STATE`: its ports, and the
   development CA and client certificate in its data folder), so a developer needs no
   configuration at all.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

SERVICES = ("availability", "scheduling", "training", "performance")
DEFAULT_TIMEOUT_S = 10.0
REPO_ROOT = Path(__file__).resolve().parent.parent
DEVSTACK_STATE = REPO_ROOT / ".local" / "run" / "current.json"
DEFAULT_CONFIG_FILE = Path("~/.config/wfm/config.toml")


class ConfigError(Exception):
    """The configuration is missing something or cannot be read."""


@dataclass(frozen=True)
class ClientConfig:
    """Everything a client needs. `addresses` maps a service name to `host:port`."""

    addresses: Mapping[str, str] = field(default_factory=dict)
    token: str = ""
    plaintext: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    timeout_s: float = DEFAULT_TIMEOUT_S
    # Retries of UNAVAILABLE (and rate limiting) on idempotent calls: attempts in all, and the
    # first backoff (doubled each time, with jitter, capped at max_backoff_s).
    max_attempts: int = 4
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 3.0
    # The data folder of the `make run` this came from (development token key inside), if any.
    devstack_dir: str = ""
    source: str = "arguments"

    def address(self, service: str) -> str:
        try:
            return self.addresses[service]
        except KeyError:
            variable = f"WFM_{service.upper()}_ADDR"
            raise ConfigError(
                f"no address for the {service} service: set {variable}, add it to the config "
                "file's [addresses], or start the system with `make run`"
            ) from None

    @property
    def dev_token_key(self) -> Path | None:
        """The development token signing key of the `make run` system, if this is one."""
        if not self.devstack_dir:
            return None
        key = Path(self.devstack_dir) / "certs" / "jwt.key"
        return key if key.exists() else None

    def with_token(self, token: str) -> ClientConfig:
        return replace(self, token=token)

    @classmethod
    def load(
        cls,
        *,
        overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        config_file: str | Path | None = None,
        devstack_state: Path | None = None,
    ) -> ClientConfig:
        """Arguments over environment over config file; `make run`'s state when none names an
        address."""
        env = os.environ if environ is None else environ
        layers = [
            _clean(overrides or {}),
            _from_env(env),
            _from_file(
                config_file or env.get("WFM_CONFIG") or DEFAULT_CONFIG_FILE,
                # One named on purpose must be there: a typo would otherwise fall back silently
                # to another system (`make run`'s). The default, or WFM_CONFIG, may be absent.
                required=bool(config_file),
            ),
        ]
        source = "options, environment or config file"
        if not any(layer.get("addresses") for layer in layers):
            state = devstack_state or Path(env.get("WFM_DEVSTACK_STATE") or DEVSTACK_STATE)
            devstack = _from_devstack(state)
            if devstack:
                layers.append(devstack)
                source = f"make run ({devstack['devstack_dir']})"
        merged: dict[str, Any] = {}
        for layer in reversed(layers):  # lowest precedence first
            addresses = {**merged.get("addresses", {}), **layer.get("addresses", {})}
            merged.update(layer)
            merged["addresses"] = addresses
        try:
            return cls(**merged, source=source)
        except TypeError as exc:
            raise ConfigError(f"unknown configuration key: {exc}") from None


def _clean(values: Mapping[str, Any]) -> dict[str, Any]:
    """Drops unset values (None, empty strings, empty address maps)."""
    out = {k: v for k, v in values.items() if v not in (None, "", {})}
    if "addresses" in out:
        out["addresses"] = {k: v for k, v in out["addresses"].items() if v}
    return out


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    addresses = {s: env.get(f"WFM_{s.upper()}_ADDR", "") for s in SERVICES}
    values: dict[str, Any] = {
        "addresses": addresses,
        "token": env.get("WFM_TOKEN", ""),
        "ca_file": env.get("WFM_CA_FILE", ""),
        "cert_file": env.get("WFM_CLIENT_CERT_FILE", ""),
        "key_file": env.get("WFM_CLIENT_KEY_FILE", ""),
    }
    if env.get("WFM_PLAINTEXT"):
        values["plaintext"] = env["WFM_PLAINTEXT"] == "1"
    if env.get("WFM_TIMEOUT_S"):
        values["timeout_s"] = _positive_float(env["WFM_TIMEOUT_S"], "WFM_TIMEOUT_S")
    return _clean(values)


def _from_file(path: str | Path, *, required: bool = False) -> dict[str, Any]:
    file = Path(path).expanduser()
    if not file.exists():
        if required:
            raise ConfigError(f"the config file {file} does not exist")
        return {}
    try:
        data = tomllib.loads(file.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the config file {file}: {exc}") from None
    tls = data.pop("tls", {})
    values: dict[str, Any] = {
        **data,
        "addresses": dict(data.get("addresses", {})),
        "ca_file": tls.get("ca_file", ""),
        "cert_file": tls.get("cert_file", ""),
        "key_file": tls.get("key_file", ""),
    }
    if "timeout_s" in values:
        values["timeout_s"] = _positive_float(str(values["timeout_s"]), f"{file}: timeout_s")
    return _clean(values)


def _from_devstack(state_file: Path) -> dict[str, Any]:
    """Ports and development credentials of the running `make run`, if there is one."""
    try:
        state = json.loads(state_file.read_text())
        os.kill(int(state["pid"]), 0)  # still running?
        ports = dict(state["ports"])
        data_dir = Path(state["data_dir"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    certs = data_dir / "certs"
    return {
        "addresses": {service: f"127.0.0.1:{port}" for service, port in ports.items()},
        "ca_file": str(certs / "ca.pem"),
        "cert_file": str(certs / "client.pem"),
        "key_file": str(certs / "client.key"),
        "devstack_dir": str(data_dir),
    }


def _positive_float(raw: str, name: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 < value < 3600:
        raise ConfigError(f"{name} must be between 0 and 3600 seconds, got {raw!r}")
    return value
