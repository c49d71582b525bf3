"""Wiring of the training service: `python -m services.training.main`."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from wfm.training.v1 import training_service_pb2 as pb
from wfm.training.v1 import training_service_pb2_grpc as pb_grpc

from services.training.api import TrainingApi
from services.training.flows import Flows
from services.training.policy import POLICY
from services.training.reconciler import BookingReconciler
from services.training.store import TrainingStore
from services.training.views import (
    Directory,
    DirectoryProjection,
    TrainingProjection,
    TrainingViews,
)
from wfm_runtime.config import Settings
from wfm_runtime.service import ServiceRuntime, run_main

SERVICE = "training"


@dataclass
class TrainingService:
    runtime: ServiceRuntime
    views: TrainingViews
    directory: Directory
    store: TrainingStore
    reconciler: BookingReconciler
    port: int = 0

    async def stop(self) -> None:
        await self.runtime.close()


async def start(settings: Settings, port: int | None = None) -> TrainingService:
    runtime = ServiceRuntime(settings, consumes=["scheduling"])
    views = TrainingViews(runtime.views_db)
    directory = Directory(views)
    await views.setup()
    await directory.refresh()
    runtime.add_projection(TrainingProjection(views))
    runtime.add_projection(DirectoryProjection(views, directory))
    training = TrainingStore(runtime.store, views.courses, views.sessions, views.learners)
    # Bookings an enrollment cut off between its steps left behind: on start-up and each minute.
    reconciler = BookingReconciler(Flows(runtime.commands, training), views, directory)
    runtime.add_background("booking-reconciler", reconciler.run_forever)
    await runtime.open()
    api = TrainingApi(runtime.commands, training, views, directory)

    def register(server: grpc.aio.Server) -> list[str]:
        pb_grpc.add_TrainingServiceServicer_to_server(api, server)
        return [pb.DESCRIPTOR.services_by_name["TrainingService"].full_name]

    async def team_of_agent(agent_id: str) -> str | None:
        agent = await directory.agent(agent_id)
        return agent.team_id if agent else None

    bound = await runtime.start_grpc(register, port, policy=POLICY, team_of_agent=team_of_agent)
    return TrainingService(runtime, views, directory, training, reconciler, bound)


if __name__ == "__main__":
    run_main(SERVICE, start)
