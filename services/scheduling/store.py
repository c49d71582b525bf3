"""Directory persistence: proto codec of teams and agents, and the write model's state hints."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any

from wfm.events.v1.envelope_pb2 import EventEnvelope
from wfm.scheduling.v1 import directory_service_pb2 as pb
from wfm.scheduling.v1 import events_pb2

from services.scheduling import domain
from wfm_runtime import mongo
from wfm_runtime.commands import Behaviour
from wfm_runtime.events import short_type, unpack
from wfm_runtime.timefmt import as_utc, checked_timestamp, to_timestamp

TEAM = "team"
AGENT = "agent"


def contract_to_proto(contract: domain.ContractType) -> int:
    return int(pb.ContractType.Value(f"CONTRACT_TYPE_{contract.value}"))


def contract_from_proto(value: int) -> domain.ContractType | None:
    if value not in pb.ContractType.values() or value == pb.CONTRACT_TYPE_UNSPECIFIED:
        return None
    return domain.ContractType(pb.ContractType.Name(value).removeprefix("CONTRACT_TYPE_"))  # type: ignore[arg-type]


def _set_times(message: Any, create: datetime | None, update: datetime | None) -> None:
    if create is not None:
        message.create_time.CopyFrom(to_timestamp(create))
    if update is not None:
        message.update_time.CopyFrom(to_timestamp(update))


def _times(message: Any) -> tuple[datetime | None, datetime | None]:
    # Output-only fields: a client may send anything there, so unreadable values are dropped.
    create = checked_timestamp(message.create_time) if message.HasField("create_time") else None
    update = checked_timestamp(message.update_time) if message.HasField("update_time") else None
    return create, update


def team_to_proto(team: domain.Team) -> pb.Team:
    message = pb.Team(
        name=f"teams/{team.team_id}",
        display_name=team.display_name,
        client_time_zone=team.client_time_zone,
        client=team.client,
        version=team.version,
        operating_hours=[
            pb.OperatingWindow(iso_weekday=d, open_local_time=o, length_minutes=m)
            for d, o, m in team.operating_hours
        ],
        min_rest_minutes=team.min_rest_minutes,
    )
    _set_times(message, team.create_time, team.update_time)
    return message


def team_from_proto(message: pb.Team, team_id: str) -> domain.Team:
    create, update = _times(message)
    return domain.Team(
        team_id,
        message.display_name,
        message.client_time_zone,
        message.client,
        message.version,
        create,
        update,
        tuple(
            (w.iso_weekday, w.open_local_time, w.length_minutes) for w in message.operating_hours
        ),
        message.min_rest_minutes,
    )


def agent_to_proto(agent: domain.Agent) -> pb.Agent:
    message = pb.Agent(
        name=f"agents/{agent.agent_id}",
        display_name=agent.display_name,
        team=f"teams/{agent.team_id}" if agent.team_id else "",
        site=agent.site,
        time_zone=agent.time_zone,
        contract_type=contract_to_proto(agent.contract_type),  # type: ignore[arg-type]
        weekly_minutes=agent.weekly_minutes,
        version=agent.version,
        annual_leave_days=agent.annual_leave_days,
        working_days=agent.working_days,
    )
    _set_times(message, agent.create_time, agent.update_time)
    return message


def agent_from_proto(message: pb.Agent, agent_id: str) -> domain.Agent:
    create, update = _times(message)
    return domain.Agent(
        agent_id=agent_id,
        display_name=message.display_name,
        team_id=message.team.removeprefix("teams/"),
        site=message.site,
        time_zone=message.time_zone,
        contract_type=contract_from_proto(message.contract_type) or domain.ContractType.FULL_TIME,
        weekly_minutes=message.weekly_minutes,
        version=message.version,
        create_time=create,
        update_time=update,
        annual_leave_days=message.annual_leave_days,
        # Sorted, duplicates kept: validation refuses them by name.
        working_days=tuple(sorted(message.working_days)),
    )


def evolve_team(state: domain.Team, envelope: EventEnvelope) -> domain.Team:
    cls = (
        events_pb2.TeamUpdated
        if short_type(envelope.event_type) == "TeamUpdated"
        else events_pb2.TeamCreated
    )
    team = unpack(envelope, cls).team  # type: ignore[attr-defined]
    return replace(team_from_proto(team, state.team_id), version=envelope.aggregate_version)


def agent_updated(agent: domain.Agent, changed: list[str]) -> events_pb2.AgentUpdated:
    """The event of an agent's new state, with its working days through time."""
    return events_pb2.AgentUpdated(
        agent=agent_to_proto(agent),
        changed_fields=changed,
        working_days_history=[
            events_pb2.WorkingDaysPeriod(effective_date=since.isoformat(), working_days=days)
            for since, days in agent.working_days_history
        ],
    )


def evolve_agent(state: domain.Agent, envelope: EventEnvelope) -> domain.Agent:
    # Every event carries the agent's full state: registered (no history yet) or updated.
    if short_type(envelope.event_type) == "AgentRegistered":
        registered = unpack(envelope, events_pb2.AgentRegistered)
        agent = agent_from_proto(registered.agent, state.agent_id)
    else:
        updated = unpack(envelope, events_pb2.AgentUpdated)
        agent = replace(
            agent_from_proto(updated.agent, state.agent_id),
            working_days_history=tuple(
                (date.fromisoformat(p.effective_date), tuple(p.working_days))
                for p in updated.working_days_history
            ),
        )
    return replace(agent, version=envelope.aggregate_version)


class DirectoryStore:
    """State hints for the write model come from the views; the event insert is the check."""

    def __init__(self, teams: mongo.Collection, agents: mongo.Collection) -> None:
        self.teams = teams
        self.agents = agents

    async def team(self, team_id: str) -> domain.Team | None:
        doc = await mongo.get(self.teams, team_id)
        return team_doc_to_domain(doc) if doc else None

    async def agent(self, agent_id: str) -> domain.Agent | None:
        doc = await mongo.get(self.agents, agent_id)
        return agent_doc_to_domain(doc) if doc else None

    async def _load_team(self, team_id: str) -> tuple[domain.Team, int]:
        team = await self.team(team_id) or domain.Team(team_id)
        return team, team.version

    async def _load_agent(self, agent_id: str) -> tuple[domain.Agent, int]:
        agent = await self.agent(agent_id) or domain.Agent(agent_id)
        return agent, agent.version

    def team_behaviour(self) -> Behaviour[domain.Team]:
        return Behaviour(TEAM, domain.Team, self._load_team, evolve_team)

    def agent_behaviour(self) -> Behaviour[domain.Agent]:
        return Behaviour(AGENT, domain.Agent, self._load_agent, evolve_agent)


def team_doc(team: domain.Team) -> dict[str, Any]:
    return {
        "display_name": team.display_name,
        "client_time_zone": team.client_time_zone,
        "client": team.client,
        "operating_hours": [
            {"iso_weekday": d, "open": o, "minutes": m} for d, o, m in team.operating_hours
        ],
        "min_rest_minutes": team.min_rest_minutes,
        "version": team.version,
        "create_time": team.create_time,
        "update_time": team.update_time,
    }


def agent_doc(agent: domain.Agent) -> dict[str, Any]:
    return {
        "display_name": agent.display_name,
        "team_id": agent.team_id,
        "site": agent.site,
        "time_zone": agent.time_zone,
        "contract_type": agent.contract_type.value,
        "weekly_minutes": agent.weekly_minutes,
        "annual_leave_days": agent.annual_leave_days,
        "working_days": list(agent.working_days),
        "working_days_history": [
            {"since": since.isoformat(), "days": list(days)}
            for since, days in agent.working_days_history
        ],
        "version": agent.version,
        "create_time": agent.create_time,
        "update_time": agent.update_time,
    }


def _opt_time(value: Any) -> datetime | None:
    return as_utc(value) if isinstance(value, datetime) else None


def team_doc_to_domain(doc: dict[str, Any]) -> domain.Team:
    return domain.Team(
        str(doc["_id"]),
        doc.get("display_name", ""),
        doc.get("client_time_zone", ""),
        doc.get("client", ""),
        int(doc.get("version", 0)),
        _opt_time(doc.get("create_time")),
        _opt_time(doc.get("update_time")),
        tuple(
            (int(w["iso_weekday"]), str(w["open"]), int(w["minutes"]))
            for w in doc.get("operating_hours", [])
        ),
        int(doc.get("min_rest_minutes", 0)),
    )


def agent_doc_to_domain(doc: dict[str, Any]) -> domain.Agent:
    return domain.Agent(
        agent_id=str(doc["_id"]),
        display_name=doc.get("display_name", ""),
        team_id=doc.get("team_id", ""),
        site=doc.get("site", ""),
        time_zone=doc.get("time_zone", ""),
        contract_type=domain.ContractType(doc.get("contract_type", "FULL_TIME")),
        weekly_minutes=int(doc.get("weekly_minutes", 0)),
        version=int(doc.get("version", 0)),
        create_time=_opt_time(doc.get("create_time")),
        update_time=_opt_time(doc.get("update_time")),
        annual_leave_days=int(doc.get("annual_leave_days", 0)),
        working_days=tuple(int(d) for d in doc.get("working_days", [])),
        # A document written before the history was kept has none: its working days held
        # all along.
        working_days_history=tuple(
            (date.fromisoformat(str(p["since"])), tuple(int(d) for d in p["days"]))
            for p in doc.get("working_days_history", [])
        ),
    )
