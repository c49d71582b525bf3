"""wfm_sdk against the real services: typed results, the Watch stream, typed errors."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from tests.conftest import System
from wfm_sdk import (
    Aborted,
    AlreadyExists,
    AsyncWfm,
    ClientConfig,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Wfm,
)
from wfm_sdk.aio import AvailabilityClient

pytestmark = pytest.mark.integration


def config(system: System, token: str) -> ClientConfig:
    return ClientConfig(
        addresses={
            "availability": f"127.0.0.1:{system.availability.port}",
            "scheduling": f"127.0.0.1:{system.scheduling.port}",
        },
        token=token,
        plaintext=True,
    )


async def test_async_client_round_trip_and_typed_errors(system: System) -> None:
    admin = config(system, system.minter.token("admin-1", "admin"))
    async with AsyncWfm(admin) as wfm:
        team = await wfm.directory.create_team(
            "night", display_name="Night", client_time_zone="America/New_York"
        )
        assert team.name == "teams/night" and team.version == 1
        with pytest.raises(FailedPrecondition) as no_team:
            await wfm.directory.create_agent(
                "a-9", display_name="A", team="nowhere", time_zone="UTC", weekly_minutes=600
            )
        assert no_team.value.rule_violations  # every broken rule, decoded
        agent = await wfm.directory.create_agent(
            "a-1", display_name="Asha", team="night", time_zone="Asia/Kolkata", weekly_minutes=600
        )
        assert agent.version == 1
        moved = await wfm.directory.update_agent("a-1", site="leeds", expected_version=1)
        assert (moved.site, moved.version, moved.time_zone) == ("leeds", 2, "Asia/Kolkata")
        with pytest.raises(Aborted):
            await wfm.directory.update_agent("a-1", site="york", expected_version=1)
        with pytest.raises(ValueError, match="nothing to change"):
            await wfm.directory.update_agent("a-1")
        with pytest.raises(InvalidArgument) as bad:
            await wfm.directory.create_team("Bad Id", display_name="x", client_time_zone="Mars/X")
        assert {v.field for v in bad.value.field_violations} == {
            "team_id",
            "team.client_time_zone",
        }
        with pytest.raises(NotFound) as missing:
            await wfm.directory.get_agent("ghost")
        assert missing.value.reason == "NOT_FOUND"
        await system.known_to_availability("a-1")

        stream = wfm.availability.watch_availability(team="night")
        first = await anext(stream)
        assert [a.agent_id for a in first.snapshot.availabilities] == ["a-1"]
        me: AvailabilityClient = wfm.with_token(system.minter.token("a-1", "agent")).availability
        changed = await me.set_status("a-1", "on-contact")
        assert changed.version == 1 and changed.productive
        update = await asyncio.wait_for(anext(stream), 10)
        assert update.change.agent_id == "a-1" and update.change.version == 1
        await stream.aclose()  # type: ignore[attr-defined]
        with pytest.raises(Aborted):
            await me.set_status("a-1", "break", expected_version=0)
        with pytest.raises(PermissionDenied):
            await me.set_status("a-2", "break")


async def test_blocking_client_from_a_worker_thread(system: System) -> None:
    await system.add_team("day")
    admin = config(system, system.minter.token("admin-1", "admin"))

    def use_it() -> list[str]:
        with Wfm(admin) as wfm:
            wfm.directory.create_agent(
                "b-1", display_name="B", team="day", time_zone="UTC", weekly_minutes=600
            )
            return [a.name for a in wfm.directory.all_agents(team="day")]

    names = await asyncio.to_thread(use_it)
    assert names in ([], ["agents/b-1"])  # the list is a view, at most milliseconds behind


async def test_roster_training_and_performance_clients(perf_system: System) -> None:
    from wfm.performance.v1 import performance_service_pb2 as perf_pb
    from wfm.scheduling.v1 import roster_service_pb2 as roster_pb

    system = perf_system
    assert system.performance is not None
    token = system.minter.token("admin-1", "admin")
    admin = replace(
        config(system, token),
        addresses={
            "scheduling": f"127.0.0.1:{system.scheduling.port}",
            "training": f"127.0.0.1:{system.training.port}",
            "performance": f"127.0.0.1:{system.performance.port}",
        },
    )
    async with AsyncWfm(admin) as wfm:
        site = await wfm.roster.create_site(
            site_id="pune", site={"display_name": "Pune", "time_zone": "Asia/Kolkata"}
        )
        assert (site.name, site.version) == ("sites/pune", 1)  # a key was generated
        with pytest.raises(AlreadyExists):
            await wfm.roster.create_site(
                site_id="pune", site={"display_name": "Other", "time_zone": "UTC"}
            )
        request = roster_pb.GetSiteRequest(name="sites/pune")
        assert (await wfm.roster.get_site(request)).display_name == "Pune"
        with pytest.raises(TypeError, match="not both"):
            await wfm.roster.get_site(request, name="sites/pune")
        with pytest.raises(AttributeError):
            wfm.roster.no_such_rpc  # noqa: B018
        await wfm.roster.create_site(
            site_id="leeds", site={"display_name": "Leeds", "time_zone": "Europe/London"}
        )
        first = await wfm.roster.list_sites(page_size=1)
        assert [s.name for s in first.sites] == ["sites/leeds"] and first.next_page_token
        listed = await wfm.roster.all_pages("list_sites", "sites")
        assert [(s.name, s.time_zone) for s in listed] == [
            ("sites/leeds", "Europe/London"),
            ("sites/pune", "Asia/Kolkata"),
        ]
        with pytest.raises(InvalidArgument) as refused:
            await wfm.roster.list_shift_patterns(page_token=first.next_page_token)
        assert [v.field for v in refused.value.field_violations] == ["page_token"]
        assert (await wfm.roster.list_shift_patterns(anchor="ANCHOR_CLIENT")).shift_patterns == []
        # One request message reused for a second site: each send is a change of its own.
        reused = roster_pb.CreateSiteRequest(
            site_id="york", site=roster_pb.Site(display_name="York", time_zone="Europe/London")
        )
        assert (await wfm.roster.create_site(reused)).name == "sites/york"
        reused.site_id, reused.site.display_name = "bath", "Bath"
        assert (await wfm.roster.create_site(reused)).name == "sites/bath"
        assert (await wfm.roster.get_site(name="sites/bath")).display_name == "Bath"

    def use_blocking_client() -> Any:  # in a thread: the services run on this loop
        with Wfm(admin) as blocking:
            made = blocking.training.create_course(
                course_id="fibre-101",
                course={
                    "title": "Fibre",
                    "credit_minutes": 60,
                    "category": "COURSE_CATEGORY_TECHNICAL",
                },
            )
            assert made.name == "courses/fibre-101"
            with pytest.raises(NotFound):
                blocking.training.get_course(name="courses/nope")
            with pytest.raises(InvalidArgument):
                blocking.training.create_course(course_id="Bad Id", course={"title": "x"})

            def cases() -> Any:
                for number in range(3):
                    case = perf_pb.Case(agent="", channel=perf_pb.CHANNEL_PHONE)  # no agent
                    yield perf_pb.RecordCasesRequest(case_id=f"c{number}", case=case)

            reply = blocking.performance.record_cases(cases())
        return reply

    reply = await asyncio.to_thread(use_blocking_client)
    assert [r.case_id for r in reply.results] == ["c0", "c1", "c2"]
    assert reply.failed_count == 3 and {r.error_code for r in reply.results} == {3}
