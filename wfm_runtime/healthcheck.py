"""Container health check: `python -m wfm_runtime.healthcheck <port>` exits 0 when SERVING.

Used by deploy/compose.yaml for every service. It speaks mutual TLS with the client certificate
the deployment mounts (WFM_HEALTH_CA_FILE, WFM_HEALTH_CERT_FILE, WFM_HEALTH_KEY_FILE; defaults
in /secrets), or plaintext when WFM_DEV_PLAINTEXT=1, as the service itself does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SECRETS = Path("/secrets")


def _channel(address: str) -> grpc.Channel:
    if os.environ.get("WFM_DEV_PLAINTEXT") == "1":
        return grpc.insecure_channel(address)

    def read(variable: str, default: str) -> bytes:
        return Path(os.environ.get(variable, str(SECRETS / default))).read_bytes()

    credentials = grpc.ssl_channel_credentials(
        read("WFM_HEALTH_CA_FILE", "ca.pem"),
        read("WFM_HEALTH_KEY_FILE", "client.key"),
        read("WFM_HEALTH_CERT_FILE", "client.pem"),
    )
    return grpc.secure_channel(address, credentials)


def serving(port: int, timeout_s: float = 3.0) -> bool:
    with _channel(f"localhost:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=timeout_s
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m wfm_runtime.healthcheck <port>", file=sys.stderr)
        return 2
    return 0 if serving(int(argv[0])) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
