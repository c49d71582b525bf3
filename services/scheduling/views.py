"""Directory read views (`teams`, `agents`), projected from the service's own events."""

from __future__ import annotations

from typing import Any

from wfm.events.v1.envelope_pb2 import EventEnvelope

from services.scheduling import domain, store
from wfm_runtime import mongo


class DirectoryViews:
    def __init__(self, db: mongo.Database) -> None:
        self.teams = db["teams"]
        self.agents = db["agents"]

    async def setup(self) -> None:
        await mongo.ensure_indexes(self.agents, (["team_id"], False))

    async def list_teams(self, after: str, limit: int) -> list[domain.Team]:
        docs = await mongo.find_all(self.teams, _after(after), sort=[("_id", 1)], limit=limit)
        return [store.team_doc_to_domain(d) for d in docs]

    async def list_agents(self, team_id: str, after: str, limit: int) -> list[domain.Agent]:
        query = _after(after)
        if team_id:
            query["team_id"] = team_id
        docs = await mongo.find_all(self.agents, query, sort=[("_id", 1)], limit=limit)
        return [store.agent_doc_to_domain(d) for d in docs]

    async def agent_versions(self, agent_ids: list[str]) -> dict[str, int]:
        docs = await mongo.find_all(self.agents, {"_id": {"$in": agent_ids}})
        return {str(d["_id"]): int(d.get("version", 0)) for d in docs}


def _after(after: str) -> dict[str, Any]:
    return {"_id": {"$gt": after}} if after else {}


class DirectoryProjection:
    """TeamCreated / AgentRegistered / AgentUpdated -> `teams` and `agents` (latest version)."""

    name = "scheduling-directory"
    source = "scheduling"
    subjects = ">"

    def __init__(self, views: DirectoryViews) -> None:
        self._views = views

    async def apply(self, envelopes: list[EventEnvelope]) -> None:
        latest: dict[tuple[str, str], EventEnvelope] = {}
        for envelope in envelopes:
            key = (envelope.aggregate_type, envelope.aggregate_id)
            if key not in latest or envelope.aggregate_version > latest[key].aggregate_version:
                latest[key] = envelope
        for (kind, entity_id), envelope in latest.items():
            if kind == store.TEAM:
                team = store.evolve_team(domain.Team(entity_id), envelope)
                await self._write(self._views.teams, entity_id, team.version, store.team_doc(team))
            elif kind == store.AGENT:
                agent = store.evolve_agent(domain.Agent(entity_id), envelope)
                await self._write(
                    self._views.agents, entity_id, agent.version, store.agent_doc(agent)
                )

    async def _write(
        self, coll: mongo.Collection, doc_id: str, version: int, doc: dict[str, Any]
    ) -> None:
        current = await mongo.get(coll, doc_id)
        if current is None or int(current.get("version", 0)) < version:
            await mongo.set_fields(coll, doc_id, doc)

    async def reset(self) -> None:
        await mongo.drop_collection(self._views.teams)
        await mongo.drop_collection(self._views.agents)
        await self._views.setup()
