"""Wiring of the availability service: `python -m services.availability.main`."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from wfm.availability.v1 import availability_service_pb2 as pb
from wfm.availability.v1 import availability_service_pb2_grpc as pb_grpc

from services.availability.api import AvailabilityApi
from services.availability.policy import POLICY
from services.availability.store import AvailabilityStore
from services.availability.views import (
    AvailabilityViews,
    BoardProjection,
    Directory,
    DirectoryFollower,
    DirectoryProjection,
)
from wfm_runtime.config import Settings
from wfm_runtime.service import ServiceRuntime, run_main

SERVICE = "availability"


@dataclass
class AvailabilityService:
    runtime: ServiceRuntime
    views: AvailabilityViews
    directory: Directory
    port: int = 0
    follower: DirectoryFollower | None = None  # API workers only
    api: AvailabilityApi | None = None

    async def stop(self) -> None:
        if self.follower is not None:
            await self.follower.close()
        await self.runtime.close()


async def start(settings: Settings, port: int | None = None) -> AvailabilityService:
    runtime = ServiceRuntime(settings, consumes=["scheduling"])
    views = AvailabilityViews(runtime.views_db)
    directory = Directory(views)
    await views.setup()
    await directory.refresh()
    follower = None
    if settings.is_api_worker:  # the primary's projectors write the views (wfm_runtime.workers)
        follower = DirectoryFollower(runtime.bus, directory)
    else:
        runtime.add_projection(BoardProjection(views))
        runtime.add_projection(DirectoryProjection(views, directory))
    await runtime.open()
    if follower is not None:
        follower.start()
    api = AvailabilityApi(
        runtime.commands,
        AvailabilityStore(views.board),
        views,
        directory,
        runtime.bus,
    )

    def register(server: grpc.aio.Server) -> list[str]:
        pb_grpc.add_AvailabilityServiceServicer_to_server(api, server)
        return [pb.DESCRIPTOR.services_by_name["AvailabilityService"].full_name]

    async def team_of_agent(agent_id: str) -> str | None:
        agent = await directory.agent(agent_id)
        return agent.team_id if agent else None

    bound = await runtime.start_grpc(register, port, policy=POLICY, team_of_agent=team_of_agent)
    return AvailabilityService(runtime, views, directory, bound, follower, api)


if __name__ == "__main__":
    run_main(SERVICE, start, api_workers=True)
