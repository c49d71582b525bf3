"""Wiring of the performance service: `python -m services.performance.main`."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from wfm.performance.v1 import performance_service_pb2 as pb
from wfm.performance.v1 import performance_service_pb2_grpc as pb_grpc

from services.performance.api import PerformanceApi
from services.performance.policy import POLICY
from services.performance.store import Repository
from services.performance.views import (
    CATCH_UP_BATCH,
    CaseProjection,
    Certifications,
    DayBook,
    Directory,
    DirectoryProjection,
    RedFlagWatch,
    ScheduleProjection,
    StatusProjection,
    ThresholdsProjection,
    TrainingProjection,
)
from wfm_runtime.config import Settings
from wfm_runtime.service import ServiceRuntime, run_main

SERVICE = "performance"


@dataclass
class PerformanceService:
    runtime: ServiceRuntime
    repo: Repository
    directory: Directory
    book: DayBook
    watch: RedFlagWatch
    port: int = 0

    async def stop(self) -> None:
        await self.runtime.close()


async def start(settings: Settings, port: int | None = None) -> PerformanceService:
    runtime = ServiceRuntime(settings, consumes=["scheduling", "availability", "training"])
    repo = Repository(runtime.views_db)
    directory = Directory(repo)
    await directory.refresh()
    book = DayBook(repo, directory)
    certifications = Certifications(repo)
    await certifications.refresh()
    watch = RedFlagWatch(repo, directory, book, runtime.commands, certifications)
    book.watch = watch
    await book.recover()  # figures a stopped process left pending
    runtime.add_projection(DirectoryProjection(repo, directory, book))
    runtime.add_projection(StatusProjection(book), batch=CATCH_UP_BATCH)
    runtime.add_projection(CaseProjection(book), batch=CATCH_UP_BATCH)
    runtime.add_projection(ScheduleProjection(book))
    runtime.add_projection(TrainingProjection(book, repo, certifications))
    runtime.add_projection(ThresholdsProjection(repo, directory, watch))
    runtime.add_background("red-flag-sweep", watch.sweep_forever)
    await runtime.open()
    api = PerformanceApi(runtime.commands, repo, directory, book)

    def register(server: grpc.aio.Server) -> list[str]:
        pb_grpc.add_PerformanceServiceServicer_to_server(api, server)
        return [pb.DESCRIPTOR.services_by_name["PerformanceService"].full_name]

    async def team_of_agent(agent_id: str) -> str | None:
        agent = await directory.agent(agent_id)
        return agent.team_id if agent else None

    bound = await runtime.start_grpc(register, port, policy=POLICY, team_of_agent=team_of_agent)
    return PerformanceService(runtime, repo, directory, book, watch, bound)


if __name__ == "__main__":
    run_main(SERVICE, start)
