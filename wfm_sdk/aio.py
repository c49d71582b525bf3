"""Async clients: one per service, and `AsyncWfm` for all of them.

    async with AsyncWfm(ClientConfig.load()) as wfm:
        me = await wfm.availability.set_status("a-1001", "break", reason_code="SCHEDULED_BREAK")
        board = await wfm.availability.all_availability(team="pune-night")

Every mutating method takes an optional `idempotency_key` (one is generated when not given) and,
where the API has one, an `expected_version` (a stale one raises `Aborted`). Failed calls raise
the typed exceptions of `wfm_sdk.errors`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from wfm.audit.v1 import audit_service_pb2 as audit_pb
from wfm.audit.v1 import audit_service_pb2_grpc as audit_grpc
from wfm.availability.v1 import availability_service_pb2 as availability_pb
from wfm.availability.v1 import availability_service_pb2_grpc as availability_grpc
from wfm.performance.v1 import performance_service_pb2_grpc as performance_grpc
from wfm.scheduling.v1 import directory_service_pb2 as directory_pb
from wfm.scheduling.v1 import directory_service_pb2_grpc as directory_grpc
from wfm.scheduling.v1 import roster_service_pb2_grpc as roster_grpc
from wfm.training.v1 import training_service_pb2_grpc as training_grpc

from wfm_sdk import names
from wfm_sdk.calls import ALL_PAGES_SIZE, Caller, every_page, new_idempotency_key
from wfm_sdk.config import ClientConfig
from wfm_sdk.errors import from_rpc_error
from wfm_sdk.services import PerformanceClient, RosterClient, TrainingClient

MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def _timestamp(when: datetime | None) -> Timestamp | None:
    if when is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return stamp


class AvailabilityClient:
    """wfm.availability.v1.AvailabilityService."""

    def __init__(self, caller: Caller) -> None:
        self._call = caller

    async def set_status(
        self,
        agent: str,
        status: str | int,
        *,
        reason_code: str = "",
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> availability_pb.Availability:
        request = availability_pb.SetStatusRequest(
            name=names.availability_name(agent),
            status=names.parse_status(status),  # type: ignore[arg-type]
            reason_code=reason_code,
            idempotency_key=idempotency_key or new_idempotency_key(),
        )
        if expected_version is not None:
            request.expected_version = expected_version
        reply: availability_pb.Availability = await self._call.unary("SetStatus", request)
        return reply

    async def get_availability(self, agent: str) -> availability_pb.Availability:
        request = availability_pb.GetAvailabilityRequest(name=names.availability_name(agent))
        reply: availability_pb.Availability = await self._call.unary("GetAvailability", request)
        return reply

    async def list_availability(
        self,
        *,
        team: str = "",
        status: str | int | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> availability_pb.ListAvailabilityResponse:
        request = availability_pb.ListAvailabilityRequest(
            team=names.team_name(team),
            status=names.parse_status(status) if status is not None else 0,  # type: ignore[arg-type]
            page_size=page_size,
            page_token=page_token,
        )
        reply: availability_pb.ListAvailabilityResponse = await self._call.unary(
            "ListAvailability", request
        )
        return reply

    async def all_availability(
        self, *, team: str = "", status: str | int | None = None
    ) -> list[availability_pb.Availability]:
        """Every page of `list_availability`."""
        return await every_page(
            lambda token: self.list_availability(
                team=team, status=status, page_size=ALL_PAGES_SIZE, page_token=token
            ),
            "availabilities",
        )

    async def watch_availability(
        self, *, team: str = ""
    ) -> AsyncIterator[availability_pb.WatchAvailabilityResponse]:
        """The board as it stands (first message), then every change, until the caller stops."""
        request = availability_pb.WatchAvailabilityRequest(team=names.team_name(team))
        call = self._call.stream("WatchAvailability", request)
        try:
            async for message in call:
                yield message
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        finally:
            call.cancel()

    async def get_status_history(
        self, agent: str, *, start: datetime, end: datetime
    ) -> availability_pb.GetStatusHistoryResponse:
        request = availability_pb.GetStatusHistoryRequest(
            name=names.availability_name(agent),
            start_time=_timestamp(start),
            end_time=_timestamp(end),
        )
        reply: availability_pb.GetStatusHistoryResponse = await self._call.unary(
            "GetStatusHistory", request
        )
        return reply


class DirectoryClient:
    """wfm.scheduling.v1.DirectoryService: teams and agents."""

    def __init__(self, caller: Caller) -> None:
        self._call = caller

    async def create_team(
        self,
        team_id: str,
        *,
        display_name: str,
        client_time_zone: str,
        client: str = "",
        operating_hours: Sequence[directory_pb.OperatingWindow] = (),
        min_rest_minutes: int = 0,
        idempotency_key: str | None = None,
    ) -> directory_pb.Team:
        """No `operating_hours`: shifts are not limited to them; `min_rest_minutes` 0: the
        service's default rest (11 h)."""
        request = directory_pb.CreateTeamRequest(
            team_id=team_id,
            team=directory_pb.Team(
                display_name=display_name,
                client_time_zone=client_time_zone,
                client=client,
                operating_hours=operating_hours,
                min_rest_minutes=min_rest_minutes,
            ),
            idempotency_key=idempotency_key or new_idempotency_key(),
        )
        reply: directory_pb.Team = await self._call.unary("CreateTeam", request)
        return reply

    async def update_team(
        self,
        team: str,
        *,
        display_name: str | None = None,
        client: str | None = None,
        operating_hours: Sequence[directory_pb.OperatingWindow] | None = None,
        min_rest_minutes: int | None = None,
        expected_version: int = 0,
        idempotency_key: str | None = None,
    ) -> directory_pb.Team:
        """Changes only the fields given (`operating_hours=[]` clears them: no limit);
        `expected_version` 0 means "whatever it is now"."""
        given: dict[str, Any] = {
            "display_name": display_name,
            "client": client,
            "operating_hours": operating_hours,
            "min_rest_minutes": min_rest_minutes,
        }
        fields = {name: value for name, value in given.items() if value is not None}
        if not fields:
            raise ValueError("nothing to change: give at least one field")
        request = directory_pb.UpdateTeamRequest(
            team=directory_pb.Team(name=names.team_name(team), version=expected_version, **fields),
            update_mask=FieldMask(paths=list(fields)),
            idempotency_key=idempotency_key or new_idempotency_key(),
        )
        reply: directory_pb.Team = await self._call.unary("UpdateTeam", request)
        return reply

    async def get_team(self, team: str) -> directory_pb.Team:
        request = directory_pb.GetTeamRequest(name=names.team_name(team))
        reply: directory_pb.Team = await self._call.unary("GetTeam", request)
        return reply

    async def list_teams(
        self, *, page_size: int = 0, page_token: str = ""
    ) -> directory_pb.ListTeamsResponse:
        request = directory_pb.ListTeamsRequest(page_size=page_size, page_token=page_token)
        reply: directory_pb.ListTeamsResponse = await self._call.unary("ListTeams", request)
        return reply

    async def all_teams(self) -> list[directory_pb.Team]:
        return await every_page(
            lambda token: self.list_teams(page_size=ALL_PAGES_SIZE, page_token=token), "teams"
        )

    async def create_agent(
        self,
        agent_id: str,
        *,
        display_name: str,
        team: str,
        time_zone: str,
        weekly_minutes: int,
        site: str = "",
        contract_type: str | int = "full-time",
        annual_leave_days: int = 0,
        working_days: Sequence[int] = (),
        idempotency_key: str | None = None,
    ) -> directory_pb.Agent:
        """`annual_leave_days` 0: the service's default allowance. `working_days`: ISO weekdays
        (1 = Monday); none given: Monday to Friday."""
        request = directory_pb.CreateAgentRequest(
            agent_id=agent_id,
            agent=directory_pb.Agent(
                display_name=display_name,
                team=names.team_name(team),
                site=site,
                time_zone=time_zone,
                contract_type=names.parse_contract(contract_type),  # type: ignore[arg-type]
                weekly_minutes=weekly_minutes,
                annual_leave_days=annual_leave_days,
                working_days=list(working_days),
            ),
            idempotency_key=idempotency_key or new_idempotency_key(),
        )
        reply: directory_pb.Agent = await self._call.unary("CreateAgent", request)
        return reply

    async def update_agent(
        self,
        agent: str,
        *,
        display_name: str | None = None,
        team: str | None = None,
        site: str | None = None,
        time_zone: str | None = None,
        contract_type: str | int | None = None,
        weekly_minutes: int | None = None,
        working_days: Sequence[int] | None = None,
        expected_version: int = 0,
        idempotency_key: str | None = None,
    ) -> directory_pb.Agent:
        """Changes only the fields given; `expected_version` 0 means "whatever it is now"."""
        given: dict[str, Any] = {
            "display_name": display_name,
            "team": names.team_name(team) if team is not None else None,
            "site": site,
            "time_zone": time_zone,
            "contract_type": (
                names.parse_contract(contract_type) if contract_type is not None else None
            ),
            "weekly_minutes": weekly_minutes,
            "working_days": list(working_days) if working_days is not None else None,
        }
        fields = {name: value for name, value in given.items() if value is not None}
        if not fields:
            raise ValueError("nothing to change: give at least one field")
        request = directory_pb.UpdateAgentRequest(
            agent=directory_pb.Agent(
                name=names.agent_name(agent), version=expected_version, **fields
            ),
            update_mask=FieldMask(paths=list(fields)),
            idempotency_key=idempotency_key or new_idempotency_key(),
        )
        reply: directory_pb.Agent = await self._call.unary("UpdateAgent", request)
        return reply

    async def get_agent(self, agent: str) -> directory_pb.Agent:
        request = directory_pb.GetAgentRequest(name=names.agent_name(agent))
        reply: directory_pb.Agent = await self._call.unary("GetAgent", request)
        return reply

    async def list_agents(
        self, *, team: str = "", page_size: int = 0, page_token: str = ""
    ) -> directory_pb.ListAgentsResponse:
        request = directory_pb.ListAgentsRequest(
            team=names.team_name(team), page_size=page_size, page_token=page_token
        )
        reply: directory_pb.ListAgentsResponse = await self._call.unary("ListAgents", request)
        return reply

    async def all_agents(self, *, team: str = "") -> list[directory_pb.Agent]:
        return await every_page(
            lambda token: self.list_agents(team=team, page_size=ALL_PAGES_SIZE, page_token=token),
            "agents",
        )


class AuditClient:
    """wfm.audit.v1.AuditService of one service (each audits its own mutating calls)."""

    def __init__(self, caller: Caller) -> None:
        self._call = caller

    async def list_audit_records(
        self,
        *,
        subject: str = "",
        target: str = "",
        start: datetime | None = None,
        end: datetime | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> audit_pb.ListAuditRecordsResponse:
        request = audit_pb.ListAuditRecordsRequest(
            subject=subject,
            target=target,
            start_time=_timestamp(start),
            end_time=_timestamp(end),
            page_size=page_size,
            page_token=page_token,
        )
        reply: audit_pb.ListAuditRecordsResponse = await self._call.unary(
            "ListAuditRecords", request
        )
        return reply


# Which stub serves each client; a new service adds a line here and a client class above.
STUBS: dict[str, Any] = {
    "availability": availability_grpc.AvailabilityServiceStub,
    "scheduling": directory_grpc.DirectoryServiceStub,
    "roster": roster_grpc.RosterServiceStub,
    "training": training_grpc.TrainingServiceStub,
    "performance": performance_grpc.PerformanceServiceStub,
}
AUDITED_SERVICES = ("scheduling", "availability", "training", "performance")


def open_channel(config: ClientConfig, address: str) -> grpc.aio.Channel:
    """A channel to `address`: TLS (mutual when a client certificate is configured) unless the
    configuration says plaintext (development servers only)."""
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    if config.plaintext:
        return grpc.aio.insecure_channel(address, options=options)
    return grpc.aio.secure_channel(address, _tls(config), options=options)


def _tls(config: ClientConfig) -> grpc.ChannelCredentials:
    def read(path: str) -> bytes | None:
        return Path(path).read_bytes() if path else None

    return grpc.ssl_channel_credentials(
        root_certificates=read(config.ca_file),
        private_key=read(config.key_file),
        certificate_chain=read(config.cert_file),
    )


class AsyncWfm:
    """All services behind one object; channels open on first use, one per address."""

    def __init__(self, config: ClientConfig | None = None) -> None:
        self.config = config or ClientConfig.load()
        self._channels: dict[str, grpc.aio.Channel] = {}

    def with_token(self, token: str) -> AsyncWfm:
        """The same connections, calling with another token (close only the original)."""
        other = AsyncWfm(self.config.with_token(token))
        other._channels = self._channels
        return other

    def _caller(self, service: str, stub_class: Any) -> Caller:
        address = self.config.address(service)  # a missing address fails here, not later
        return Caller(lambda: stub_class(self._channel(address)), self.config)

    def _channel(self, address: str) -> grpc.aio.Channel:
        if address not in self._channels:
            self._channels[address] = open_channel(self.config, address)
        return self._channels[address]

    @property
    def availability(self) -> AvailabilityClient:
        return AvailabilityClient(self._caller("availability", STUBS["availability"]))

    @property
    def directory(self) -> DirectoryClient:
        return DirectoryClient(self._caller("scheduling", STUBS["scheduling"]))

    @property
    def roster(self) -> RosterClient:
        """Rosters, leave and coverage (served by the scheduling service)."""
        return RosterClient(self._caller("scheduling", STUBS["roster"]))

    @property
    def training(self) -> TrainingClient:
        return TrainingClient(self._caller("training", STUBS["training"]))

    @property
    def performance(self) -> PerformanceClient:
        return PerformanceClient(self._caller("performance", STUBS["performance"]))

    def audit(self, service: str) -> AuditClient:
        """The audit trail kept by `service` (`scheduling`, `availability`, ...)."""
        return AuditClient(self._caller(service, audit_grpc.AuditServiceStub))

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()

    async def __aenter__(self) -> AsyncWfm:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
