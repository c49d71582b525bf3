"""Transport security: gRPC over mutual TLS, and NATS users limited to their own subjects.

The services here run as `make run` starts them: TLS with a client CA (mutual TLS), bearer
tokens, and, for NATS, a user per service with the permissions of localservers.nats_users.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import nats
import nats.errors
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.aio.client import Client as NatsClient
from wfm.availability.v1 import availability_service_pb2 as pb
from wfm.availability.v1 import availability_service_pb2_grpc as availability_grpc
from wfm.scheduling.v1 import directory_service_pb2 as directory_pb
from wfm.scheduling.v1 import directory_service_pb2_grpc as directory_grpc

from services.availability import main as availability_main
from services.scheduling import main as scheduling_main
from tests.conftest import Nats
from wfm_runtime import localservers
from wfm_runtime.config import Settings
from wfm_runtime.devcerts import DevCredentials, ensure_dev_credentials
from wfm_runtime.devstack import CONSUMES
from wfm_runtime.grpcserver import GrpcApp
from wfm_runtime.messaging import stream_config
from wfm_runtime.testing import TokenMinter, eventually, isolated_settings

pytestmark = pytest.mark.integration


def _with_tls(settings: Settings, creds: DevCredentials) -> Settings:
    return replace(
        settings,
        plaintext=False,
        tls_cert_file=str(creds.server_cert),
        tls_key_file=str(creds.server_key),
        tls_client_ca_file=str(creds.ca_cert),
    )


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture
def creds(tmp_path: Path) -> DevCredentials:
    return ensure_dev_credentials(tmp_path / "certs")


async def _container_health_check(port: int, client: DevCredentials, ca: Path | None = None) -> int:
    """Exit code of `python -m wfm_runtime.healthcheck <port>`, as compose runs it."""
    env = {
        **os.environ,
        "WFM_HEALTH_CA_FILE": str(ca or client.ca_cert),
        "WFM_HEALTH_CERT_FILE": str(client.client_cert),
        "WFM_HEALTH_KEY_FILE": str(client.client_key),
    }
    env.pop("WFM_DEV_PLAINTEXT", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wfm_runtime.healthcheck", str(port), env=env
    )
    return await asyncio.wait_for(process.wait(), timeout=30)


# --- gRPC: TLS and mutual TLS --------------------------------------------------------------
@pytest.mark.own_clock
async def test_mutual_tls_admits_only_clients_with_a_certificate_from_the_ca(
    mongo_url: str, nats: Nats, minter: TokenMinter, creds: DevCredentials, tmp_path: Path
) -> None:
    settings = isolated_settings("availability", mongo_url, nats.url, auth=minter.auth_config())
    service = await availability_main.start(_with_tls(settings, creds), port=0)
    address = f"127.0.0.1:{service.port}"
    request = pb.ListAvailabilityRequest()
    admin = _bearer(minter.token("admin-1", "admin"))
    try:
        async with grpc.aio.secure_channel(address, creds.channel_credentials()) as trusted:
            health = health_pb2_grpc.HealthStub(trusted)
            reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            board = availability_grpc.AvailabilityServiceStub(trusted)
            listed = await board.ListAvailability(request, metadata=admin, timeout=5)
            assert list(listed.availabilities) == []
            # The certificate opens the connection; the token still decides the call.
            with pytest.raises(grpc.aio.AioRpcError) as no_token:
                await board.ListAvailability(request, timeout=5)
            assert no_token.value.code() == grpc.StatusCode.UNAUTHENTICATED

        other_ca = ensure_dev_credentials(tmp_path / "other-ca")
        # The container health check (deploy/compose.yaml) passes with the client certificate
        # and fails without a trusted one.
        assert await _container_health_check(service.port, creds) == 0
        assert await _container_health_check(service.port, other_ca, ca=creds.ca_cert) == 1
        refused = {
            "TLS without a client certificate": grpc.aio.secure_channel(
                address, creds.channel_credentials(with_client_cert=False)
            ),
            "client certificate from another CA": grpc.aio.secure_channel(
                address,
                grpc.ssl_channel_credentials(
                    root_certificates=creds.ca_cert.read_bytes(),
                    private_key=other_ca.client_key.read_bytes(),
                    certificate_chain=other_ca.client_cert.read_bytes(),
                ),
            ),
            "plaintext": grpc.aio.insecure_channel(address),
        }
        for what, client in refused.items():
            async with client:
                stub = availability_grpc.AvailabilityServiceStub(client)
                with pytest.raises(grpc.aio.AioRpcError) as refusal:
                    await stub.ListAvailability(request, metadata=admin, timeout=5)
                assert refusal.value.code() == grpc.StatusCode.UNAVAILABLE, what
    finally:
        await service.stop()


async def test_a_service_refuses_to_start_without_tls_or_the_plaintext_flag(
    mongo_url: str, nats: Nats
) -> None:
    settings = replace(
        isolated_settings("availability", mongo_url, nats.url),
        plaintext=False,
        tls_cert_file="",
        tls_key_file="",
    )
    app = GrpcApp(settings, lambda server: [])
    with pytest.raises(ValueError, match="TLS"):
        await app.start(0)


# --- NATS: a user per service --------------------------------------------------------------
@dataclass
class LockedNats:
    port: int
    users: dict[str, localservers.NatsUser]

    def url(self, user: str) -> str:
        return localservers.nats_url(self.port, self.users[user])


@pytest.fixture
def locked_nats(tmp_path: Path) -> Iterator[LockedNats]:
    """A nats-server that admits only the per-service users `make run` configures."""
    data_dir = tmp_path / "locked-nats"
    users = localservers.nats_users(data_dir, CONSUMES)
    server = localservers.nats_server(data_dir, users=users)
    server.start()
    try:
        yield LockedNats(server.port, {u.name: u for u in users})
    finally:
        server.stop()


class _Errors:
    """Collects what the server reports to a client (permission violations are async)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def on_error(self, exc: Exception) -> None:
        self.seen.append(str(exc))

    async def wait_for(self, *words: str) -> str:
        def found() -> str:
            # nats-py reports the server's error in lower case.
            wanted = [w.lower() for w in words]
            return next((e for e in self.seen if all(w in e.lower() for w in wanted)), "")

        async def probe() -> str:
            return found()

        return await eventually(probe, timeout=5)


@contextlib.asynccontextmanager
async def _connected(url: str, errors: _Errors, inbox: str = "_INBOX") -> AsyncIterator[NatsClient]:
    nc = await nats.connect(
        url,
        error_cb=errors.on_error,
        allow_reconnect=False,
        connect_timeout=3,
        inbox_prefix=inbox,
    )
    try:
        yield nc
    finally:
        await nc.close()


async def test_a_service_user_publishes_only_its_own_subjects(locked_nats: LockedNats) -> None:
    scheduling_errors, availability_errors = _Errors(), _Errors()
    async with (
        _connected(
            locked_nats.url("scheduling"),
            scheduling_errors,
            localservers.inbox_prefix("scheduling"),
        ) as scheduling,
        _connected(
            locked_nats.url("availability"),
            availability_errors,
            localservers.inbox_prefix("availability"),
        ) as availability,
    ):
        scheduling_js = scheduling.jetstream(timeout=3)
        availability_js = availability.jetstream(timeout=3)
        refused_js = availability.jetstream(timeout=1)  # a refused request just gets no answer
        await scheduling_js.add_stream(stream_config("scheduling"))
        await availability_js.add_stream(stream_config("availability"))

        # Its own subjects: core publish and JetStream publish (acked) both work.
        await availability.publish("wfm.availability.probe.Core.x", b"core")
        await availability.flush(timeout=3)
        ack = await availability_js.publish("wfm.availability.probe.Stored.x", b"stored")
        assert ack.stream == "WFM_AVAILABILITY"

        # Another service's subjects: refused by the server, and nothing reaches the stream.
        await availability.publish("wfm.scheduling.team.TeamCreated.x", b"forged")
        await availability.flush(timeout=3)
        assert await availability_errors.wait_for(
            "permissions violation", "publish", "wfm.scheduling"
        )
        with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
            await refused_js.publish("wfm.scheduling.team.TeamCreated.y", b"forged")
        scheduling_stream = await scheduling_js.stream_info("WFM_SCHEDULING")
        assert scheduling_stream.state.messages == 0

        # Nor may it reach into another service's stream through the JetStream API.
        with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
            await refused_js.delete_stream("WFM_SCHEDULING")
        assert await availability_errors.wait_for("permissions violation", "STREAM.DELETE")

        # It subscribes only to what it needs: not to another service's subjects.
        await availability.subscribe("wfm.scheduling.>")
        await availability.flush(timeout=3)
        assert await availability_errors.wait_for(
            "permissions violation", "subscription", "wfm.scheduling"
        )
        assert scheduling_errors.seen == []


async def test_nats_refuses_unknown_users_and_wrong_passwords(locked_nats: LockedNats) -> None:
    user = locked_nats.users["availability"]
    wrong = replace(user, password="not-the-password")
    for url in (
        localservers.nats_url(locked_nats.port),
        localservers.nats_url(locked_nats.port, wrong),
    ):
        errors = _Errors()
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(
                url, error_cb=errors.on_error, allow_reconnect=False, connect_timeout=3
            )


# --- the system on a locked-down NATS ------------------------------------------------------
@pytest.mark.own_clock
async def test_the_services_work_with_their_own_nats_users_and_mutual_tls(
    mongo_url: str, locked_nats: LockedNats, minter: TokenMinter, creds: DevCredentials
) -> None:
    """Directory events flow scheduling -> availability (pull consumer on another service's
    stream), SetStatus publishes to JetStream, and WatchAvailability's core subscription
    sees the change: all as the per-service NATS users, over mutual TLS."""
    auth = minter.auth_config()
    prefix = f"t{uuid.uuid4().hex[:10]}_"

    def settings(service: str) -> Settings:
        base = isolated_settings(
            service, mongo_url, locked_nats.url(service), prefix=prefix, auth=auth
        )
        return _with_tls(base, creds)

    scheduling = await scheduling_main.start(settings("scheduling"), port=0)
    availability = await availability_main.start(settings("availability"), port=0)
    admin = _bearer(minter.token("admin-1", "admin"))
    ch_s = grpc.aio.secure_channel(f"127.0.0.1:{scheduling.port}", creds.channel_credentials())
    ch_a = grpc.aio.secure_channel(f"127.0.0.1:{availability.port}", creds.channel_credentials())
    try:
        directory = directory_grpc.DirectoryServiceStub(ch_s)
        board = availability_grpc.AvailabilityServiceStub(ch_a)
        await directory.CreateTeam(
            directory_pb.CreateTeamRequest(
                team_id="night",
                idempotency_key="team-night",
                team=directory_pb.Team(display_name="Night", client_time_zone="America/New_York"),
            ),
            metadata=admin,
        )
        await directory.CreateAgent(
            directory_pb.CreateAgentRequest(
                agent_id="a1",
                idempotency_key="agent-a1",
                agent=directory_pb.Agent(
                    display_name="a1",
                    team="teams/night",
                    site="pune",
                    time_zone="Asia/Kolkata",
                    contract_type=directory_pb.CONTRACT_TYPE_FULL_TIME,
                    weekly_minutes=2400,
                ),
            ),
            metadata=admin,
        )
        await eventually(lambda: availability.directory.agent("a1"))

        watch = board.WatchAvailability(
            pb.WatchAvailabilityRequest(team="teams/night"), metadata=admin, timeout=20
        )
        first = await asyncio.wait_for(watch.read(), 10)
        assert first.WhichOneof("event") == "snapshot"

        agent = _bearer(minter.token("a1", "agent"))
        reply = await board.SetStatus(
            pb.SetStatusRequest(
                name="agents/a1/availability",
                status=pb.AGENT_STATUS_AVAILABLE,
                idempotency_key="status-1",
            ),
            metadata=agent,
            timeout=10,
        )
        assert reply.version == 1

        change = await asyncio.wait_for(watch.read(), 10)
        assert change.change.agent_id == "a1"
        assert change.change.status == pb.AGENT_STATUS_AVAILABLE
        watch.cancel()

        listed = await eventually(
            lambda: board.ListAvailability(
                pb.ListAvailabilityRequest(team="teams/night"), metadata=admin, timeout=5
            ),
            lambda r: [(a.agent_id, a.version) for a in r.availabilities] == [("a1", 1)],
        )
        assert listed.availabilities[0].status == pb.AGENT_STATUS_AVAILABLE
        # Every consumer caught up with nothing left unacknowledged: the acks went through.
        for runner in [*scheduling.runtime.projectors, *availability.runtime.projectors]:
            await runner.wait_caught_up(timeout=10)
    finally:
        await ch_a.close()
        await ch_s.close()
        await availability.stop()
        await scheduling.stop()
