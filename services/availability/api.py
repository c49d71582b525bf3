"""AvailabilityService servicer: proto <-> domain; the rules live in domain.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import grpc
from google.protobuf.duration_pb2 import Duration
from wfm.availability.v1 import availability_service_pb2 as pb
from wfm.availability.v1 import availability_service_pb2_grpc as pb_grpc
from wfm.events.v1.envelope_pb2 import EventEnvelope

from services.availability import domain, store, views
from wfm_runtime import pagination
from wfm_runtime.commands import Command, CommandRunner, fingerprint
from wfm_runtime.errors import NotFound, Violations
from wfm_runtime.events import parse
from wfm_runtime.grpcserver import bind, request_id
from wfm_runtime.livefeed import Backlog, LiveFeed
from wfm_runtime.messaging import Bus
from wfm_runtime.timefmt import localized, to_timestamp, utc_now
from wfm_runtime.validation import check_page_size, optional_instant, parse_name

Ctx: TypeAlias = grpc.aio.ServicerContext


class AvailabilityApi(pb_grpc.AvailabilityServiceServicer):
    def __init__(
        self,
        commands: CommandRunner,
        availability: store.AvailabilityStore,
        board: views.AvailabilityViews,
        directory: views.Directory,
        bus: Bus,
    ) -> None:
        self._commands = commands
        self._behaviour = availability.behaviour()
        self._views = board
        self._directory = directory
        self._bus = bus
        self._watchers: set[LiveFeed[EventEnvelope]] = set()

    async def SetStatus(self, request: pb.SetStatusRequest, context: Ctx) -> pb.Availability:
        v = Violations()
        agent_id = parse_name(v, request.name, "name", "agents", "availability")
        status = store.status_from_proto(request.status)
        expected = request.expected_version if request.HasField("expected_version") else None
        command = domain.validate_set_status(
            agent_id=agent_id,
            status_name=status.value if status else None,
            reason_code=request.reason_code,
            idempotency_key=request.idempotency_key,
            expected_version=expected,
            v=v,
        )
        v.raise_if_any()
        assert command is not None
        agent = await self._known_agent(agent_id)
        outcome = await self._commands.execute(
            self._behaviour,
            Command(
                store.AGGREGATE,
                agent_id,
                request.idempotency_key,
                fingerprint(agent_id, command.status, command.reason_code, expected),
                expected,
                request_id(),
            ),
            lambda state, _: _encoded(
                domain.decide_set_status(state, command, agent.team_id, utc_now())
            ),
        )
        return self._availability(
            views.BoardRow(agent, self._directory.team_of(agent), outcome.state)
        )

    async def GetAvailability(
        self, request: pb.GetAvailabilityRequest, context: Ctx
    ) -> pb.Availability:
        v = Violations()
        agent_id = parse_name(v, request.name, "name", "agents", "availability")
        v.raise_if_any()
        agent = await self._known_agent(agent_id)
        states = await self._views.states([agent_id])
        state = states.get(agent_id) or domain.AgentAvailability(agent_id)
        return self._availability(views.BoardRow(agent, self._directory.team_of(agent), state))

    async def ListAvailability(
        self, request: pb.ListAvailabilityRequest, context: Ctx
    ) -> pb.ListAvailabilityResponse:
        v = Violations()
        page_size = check_page_size(v, request.page_size)
        team_id = parse_name(v, request.team, "team", "teams") if request.team else ""
        status = _status_filter(v, request.status)
        v.raise_if_any()
        filter_key = board_filter_key(team_id, status)
        after = pagination.decode(request.page_token, filter_key)
        rows, last = await views.board_page(
            self._views,
            self._directory,
            team_id=team_id,
            status=status,
            after=after,
            page_size=page_size,
        )
        return pb.ListAvailabilityResponse(
            availabilities=[self._availability(r) for r in rows],
            next_page_token=pagination.encode(last, filter_key) if last else "",
        )

    async def WatchAvailability(
        self, request: pb.WatchAvailabilityRequest, context: Ctx
    ) -> AsyncIterator[pb.WatchAvailabilityResponse]:
        v = Violations()
        team_id = parse_name(v, request.team, "team", "teams") if request.team else ""
        v.raise_if_any()
        # A client that stops reading blocks our `yield` (flow control) while changes keep
        # coming: they wait in `changes`, every one up to a limit, then each agent's newest
        # (wfm_runtime/livefeed.py).
        changes: LiveFeed[EventEnvelope] = LiveFeed()

        async def on_message(msg: Any) -> None:
            envelope = parse(msg.data)
            if envelope is not None:
                changes.push(envelope.aggregate_id, envelope.aggregate_version, envelope)

        # Subscribe before the snapshot so no change falls between the two.
        subscription = await self._bus.nc.subscribe(
            store.status_changed_subjects(self._bus.namespace), cb=on_message
        )
        self._watchers.add(changes)
        try:
            rows = await views.whole_board(self._views, self._directory, team_id)
            seen = {r.agent.agent_id: r.state.version for r in rows}
            yield pb.WatchAvailabilityResponse(
                snapshot=pb.WatchAvailabilityResponse.Snapshot(
                    availabilities=[self._availability(r) for r in rows]
                )
            )
            while True:
                row = await self._change(await changes.next(), team_id, seen)
                if row is not None:
                    yield pb.WatchAvailabilityResponse(change=self._availability(row))
        finally:
            self._watchers.discard(changes)
            await subscription.unsubscribe()

    @property
    def watchers(self) -> tuple[Backlog[EventEnvelope], ...]:
        """What every open WatchAvailability stream has not sent yet (tests, diagnostics)."""
        return tuple(self._watchers)

    async def GetStatusHistory(
        self, request: pb.GetStatusHistoryRequest, context: Ctx
    ) -> pb.GetStatusHistoryResponse:
        v = Violations()
        agent_id = parse_name(v, request.name, "name", "agents", "availability")
        unreadable_before = len(v.items)
        start = optional_instant(v, request, "start_time")
        end = optional_instant(v, request, "end_time")
        if len(v.items) == unreadable_before:
            domain.validate_range(start, end, v)
        v.raise_if_any()
        assert start is not None and end is not None
        agent = await self._known_agent(agent_id)
        transitions = await self._views.transitions_of(agent_id, start, end)
        history = domain.build_history(transitions, start, end, utc_now())
        return self._history(history, agent)

    # --- helpers -------------------------------------------------------------------------
    async def _known_agent(self, agent_id: str) -> views.AgentEntry:
        bind(agent_id=agent_id)
        agent = await self._directory.agent(agent_id)
        if agent is None:
            raise NotFound(
                "agent",
                f"agents/{agent_id}",
                f"agent {agent_id!r} is not in the directory (register it first)",
            )
        return agent

    async def _change(
        self, envelope: EventEnvelope, team_id: str, seen: dict[str, int]
    ) -> views.BoardRow | None:
        agent = await self._directory.agent(envelope.aggregate_id)
        if agent is None or (team_id and agent.team_id != team_id):
            return None
        if envelope.aggregate_version <= seen.get(agent.agent_id, 0):
            return None  # already in the snapshot, or a duplicate delivery
        seen[agent.agent_id] = envelope.aggregate_version
        state = store.evolve(domain.AgentAvailability(agent.agent_id), envelope)
        return views.BoardRow(agent, self._directory.team_of(agent), state)

    def _availability(self, row: views.BoardRow) -> pb.Availability:
        state, agent = row.state, row.agent
        message = pb.Availability(
            name=f"agents/{agent.agent_id}/availability",
            agent_id=agent.agent_id,
            team=f"teams/{agent.team_id}" if agent.team_id else "",
            status=store.status_to_proto(state.status),  # type: ignore[arg-type]
            reason_code=state.reason_code,
            productive=state.status.productive,
            version=state.version,
        )
        if state.since is not None:
            message.since.CopyFrom(to_timestamp(state.since))
            message.since_agent_local.CopyFrom(localized(state.since, agent.time_zone))
            if row.team is not None:
                message.since_client_local.CopyFrom(
                    localized(state.since, row.team.client_time_zone)
                )
        return message

    def _history(
        self, history: domain.History, agent: views.AgentEntry
    ) -> pb.GetStatusHistoryResponse:
        team = self._directory.team_of(agent)
        response = pb.GetStatusHistoryResponse(
            productive_duration=_duration(history.productive),
            covered_duration=_duration(history.covered),
        )
        for segment in history.segments:
            response.segments.append(
                pb.StatusSegment(
                    status=store.status_to_proto(segment.status),  # type: ignore[arg-type]
                    reason_code=segment.reason_code,
                    start_time=to_timestamp(segment.start),
                    end_time=to_timestamp(segment.end),
                    duration=_duration(segment.duration),
                    productive=segment.status.productive,
                    ongoing=segment.ongoing,
                    start_agent_local=localized(segment.start, agent.time_zone),
                    start_client_local=localized(
                        segment.start, team.client_time_zone if team else ""
                    ),
                )
            )
        for status, total in history.totals.items():
            response.totals.append(
                pb.StatusTotal(
                    status=store.status_to_proto(status),  # type: ignore[arg-type]
                    duration=_duration(total),
                )
            )
        return response


def _encoded(change: domain.StatusChanged | None) -> Any:
    return store.encode(change) if change is not None else None


def _duration(value: Any) -> Duration:
    duration = Duration()
    duration.FromTimedelta(value)
    return duration


def board_filter_key(team_id: str, status: domain.Status | None) -> str:
    """What a ListAvailability page token is tied to. Named after this list, so a token that
    another list issued cannot pass for one of ours (without the prefix, ListAgents of team
    `None` and ListAvailability of team `agents` both had the filter key "agents|None")."""
    return f"availability|{team_id}|{status}"


def _status_filter(v: Violations, value: int) -> domain.Status | None:
    if value == pb.AGENT_STATUS_UNSPECIFIED:
        return None
    status = store.status_from_proto(value)
    if status is None:
        v.add("status", f"unknown status {value}")
    return status
