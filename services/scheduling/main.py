"""Wiring of the scheduling service: `python -m services.scheduling.main`."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from wfm.scheduling.v1 import directory_service_pb2 as pb
from wfm.scheduling.v1 import directory_service_pb2_grpc as pb_grpc
from wfm.scheduling.v1 import roster_service_pb2 as roster_pb
from wfm.scheduling.v1 import roster_service_pb2_grpc as roster_grpc

from services.scheduling.api import DirectoryApi
from services.scheduling.policy import POLICY
from services.scheduling.roster_api import RosterApi
from services.scheduling.roster_views import RosterProjection, RosterViews
from services.scheduling.store import DirectoryStore
from services.scheduling.views import DirectoryProjection, DirectoryViews
from wfm_runtime.config import Settings
from wfm_runtime.service import ServiceRuntime, run_main

SERVICE = "scheduling"


@dataclass
class SchedulingService:
    runtime: ServiceRuntime
    views: DirectoryViews
    roster_views: RosterViews
    port: int = 0

    async def stop(self) -> None:
        await self.runtime.close()


async def start(settings: Settings, port: int | None = None) -> SchedulingService:
    runtime = ServiceRuntime(settings)
    views = DirectoryViews(runtime.views_db)
    await views.setup()
    roster_views = RosterViews(runtime.views_db)
    await roster_views.setup()
    runtime.add_projection(DirectoryProjection(views))
    runtime.add_projection(RosterProjection(roster_views))
    await runtime.open()
    directory = DirectoryStore(views.teams, views.agents)
    api = DirectoryApi(runtime.commands, directory, views)
    rosters = RosterApi(runtime.commands, roster_views.store, roster_views, api)

    def register(server: grpc.aio.Server) -> list[str]:
        pb_grpc.add_DirectoryServiceServicer_to_server(api, server)
        roster_grpc.add_RosterServiceServicer_to_server(rosters, server)
        return [
            pb.DESCRIPTOR.services_by_name["DirectoryService"].full_name,
            roster_pb.DESCRIPTOR.services_by_name["RosterService"].full_name,
        ]

    async def team_of_agent(agent_id: str) -> str | None:
        agent = await api.latest_agent(agent_id)
        return agent.team_id if agent else None

    bound = await runtime.start_grpc(register, port, policy=POLICY, team_of_agent=team_of_agent)
    return SchedulingService(runtime, views, roster_views, bound)


if __name__ == "__main__":
    run_main(SERVICE, start)
