"""The demo floor: seeds what the running system can hold today, idempotently.

`SEED_STEPS` runs in order; each step is a function of a `Seeder`. Every entity has a fixed id
and every change a fixed idempotency key, so running the demo again changes nothing: the
services answer repeated keys with the first result. The roster, training and performance
steps live in wfm_cli.demo_floor.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import Progress

from wfm_sdk import AlreadyExists, AsyncWfm, InvalidArgument, NotFound
from wfm_sdk.aio import AvailabilityClient

T = TypeVar("T")


@dataclass(frozen=True)
class TeamSeed:
    team_id: str
    display_name: str
    client: str
    client_time_zone: str
    site: str
    agent_time_zone: str
    id_prefix: str
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    full_time_minutes: int
    part_time_minutes: tuple[int, ...]
    part_time_share: float  # of agents on part-time contracts
    annual_leave_days: int


PUNE = TeamSeed(
    team_id="pune-night",
    display_name="Pune - US Eastern night shift",
    client="acme-telecom",
    client_time_zone="America/New_York",
    site="pune",
    agent_time_zone="Asia/Kolkata",
    id_prefix="p-",
    first_names=("Asha", "Rohan", "Priya", "Vikram", "Sneha", "Arjun", "Kavya", "Nikhil",
                 "Meera", "Siddharth", "Pooja", "Aditya", "Neha", "Rahul", "Ishita"),
    last_names=("Patil", "Kulkarni", "Deshpande", "Joshi", "Shinde", "Iyer", "Nair", "Gupta"),
    full_time_minutes=2700,  # 45 hours: 5 nights of 9 hours
    part_time_minutes=(1440,),
    part_time_share=0.1,
    annual_leave_days=24,
)  # fmt: skip
UK = TeamSeed(
    team_id="uk-wfh",
    display_name="UK work from home, 08:00-23:00 seven days",
    client="brightwave-energy",
    client_time_zone="Europe/London",
    site="uk-wfh",
    agent_time_zone="Europe/London",
    id_prefix="u-",
    first_names=("Olivia", "Jack", "Amelia", "Harry", "Isla", "Oscar", "Sophie", "George",
                 "Grace", "Noah", "Chloe", "Leo", "Ruby", "Alfie", "Freya"),
    last_names=("Smith", "Jones", "Taylor", "Brown", "Evans", "Walsh", "Khan", "Hughes"),
    full_time_minutes=2250,  # 37.5 hours
    part_time_minutes=(1200, 960, 720),  # 20, 16 and 12 hour caps
    part_time_share=0.4,
    annual_leave_days=28,  # 5.6 weeks, the UK statutory minimum
)  # fmt: skip
TEAMS = (PUNE, UK)

# Where a burst of the floor's day goes: (status, reason code, weight).
MOVES = (
    ("available", "", 30),
    ("on-contact", "", 30),
    ("after-contact-work", "", 12),
    ("break", "SCHEDULED_BREAK", 8),
    ("lunch", "", 5),
    ("meeting", "TEAM_HUDDLE", 4),
    ("training", "COACHING", 4),
    ("offline", "", 3),
)


@dataclass
class Seeder:
    """What a seed step gets: the admin client, how to act as an agent, and the tally."""

    wfm: AsyncWfm
    agent_client: Callable[[str], AvailabilityClient]
    agents_per_team: int
    console: Console
    # What the system now holds from the demo (new or from an earlier run alike).
    seeded: dict[str, int] = field(default_factory=dict)
    agents: dict[str, list[str]] = field(default_factory=dict)  # team id -> agent ids
    versions: dict[str, int] = field(default_factory=dict)  # agent -> availability version

    def count(self, kind: str) -> None:
        self.seeded[kind] = self.seeded.get(kind, 0) + 1

    def progress(self) -> Progress:
        return Progress(console=self.console, transient=True, disable=not self.console.is_terminal)


def agent_ids(team: TeamSeed, count: int) -> list[str]:
    start = 1001 if team is PUNE else 2001
    return [f"{team.id_prefix}{start + i}" for i in range(count)]


async def seed_teams(seeder: Seeder) -> None:
    for team in TEAMS:
        with contextlib.suppress(AlreadyExists):  # made earlier by hand: keep it as it is
            await seeder.wfm.directory.create_team(
                team.team_id,
                display_name=team.display_name,
                client_time_zone=team.client_time_zone,
                client=team.client,
                idempotency_key=f"demo-team-{team.team_id}",
            )
        seeder.count("teams")


async def seed_agents(seeder: Seeder) -> None:
    with seeder.progress() as progress:
        for team in TEAMS:
            ids = agent_ids(team, seeder.agents_per_team)
            seeder.agents[team.team_id] = ids
            task = progress.add_task(f"agents of {team.team_id}", total=len(ids))
            for index, agent in enumerate(ids):
                await _seed_agent(seeder, team, index, agent)
                progress.advance(task)


async def _seed_agent(seeder: Seeder, team: TeamSeed, index: int, agent: str) -> None:
    part_time = index >= round(len(seeder.agents[team.team_id]) * (1 - team.part_time_share))
    weekly = team.part_time_minutes[index % len(team.part_time_minutes)]
    first = team.first_names[index % len(team.first_names)]
    last = team.last_names[(index * 3) % len(team.last_names)]
    with contextlib.suppress(AlreadyExists):
        await seeder.wfm.directory.create_agent(
            agent,
            display_name=f"{first} {last}",
            team=team.team_id,
            site=team.site,
            time_zone=team.agent_time_zone,
            contract_type="part-time" if part_time else "full-time",
            weekly_minutes=weekly if part_time else team.full_time_minutes,
            annual_leave_days=team.annual_leave_days,
            idempotency_key=f"demo-agent-{agent}",
        )
    seeder.count("agents")


async def simulate_statuses(seeder: Seeder) -> None:
    """A burst of the floor's status changes: each agent logs in and works a few moves. The
    sequence of each agent is fixed (seeded by the agent id), and so are the keys."""
    everyone = [agent for ids in seeder.agents.values() for agent in ids]
    gate = asyncio.Semaphore(8)
    with seeder.progress() as progress:
        task = progress.add_task("status changes", total=len(everyone))

        async def one(agent: str) -> None:
            async with gate:
                await _agent_day(seeder, agent)
            progress.advance(task)

        await asyncio.gather(*(one(agent) for agent in everyone))


def agent_moves(agent: str) -> list[tuple[str, str]]:
    """The agent's fixed sequence: log in as available, then 2-4 moves, each a real change.
    (A move to the status the agent is already in records nothing, and the service does not
    keep the key of a change that recorded nothing: replayed after later changes, it would
    apply. So the demo never repeats a status.)"""
    rng = random.Random(agent)
    moves = [("available", "")]
    for _ in range(rng.randint(2, 4)):
        choices = [m for m in MOVES if m[0] != moves[-1][0]]
        status, reason, _weight = rng.choices(choices, weights=[m[2] for m in choices])[0]
        moves.append((status, reason))
    return moves


async def _agent_day(seeder: Seeder, agent: str) -> None:
    moves = agent_moves(agent)
    client = seeder.agent_client(agent)
    for step, (status, reason) in enumerate(moves):

        def move(status: str = status, reason: str = reason, step: int = step) -> Awaitable[Any]:
            key = f"demo-status-{agent}-{step}"
            return client.set_status(agent, status, reason_code=reason, idempotency_key=key)

        result = await _when_known(move)
        seeder.versions[agent] = result.version
        seeder.count("status changes")


async def _when_known(call: Callable[[], Awaitable[T]], timeout_s: float = 20.0) -> T:
    """Retries NOT_FOUND for a while: a newly registered agent reaches the availability service
    through the directory's events, typically within milliseconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            return await call()
        except NotFound:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.1)


SeedStep = tuple[str, Callable[[Seeder], Awaitable[None]]]
SEED_STEPS: list[SeedStep] = [
    ("teams", seed_teams),
    ("agents", seed_agents),
    ("a burst of status changes", simulate_statuses),
]
# The service each later step needs: a system without it (or a client with no address for it)
# gets the rest of the floor.
STEP_NEEDS: dict[str, str] = {}


async def run_seed(seeder: Seeder, steps: list[SeedStep] | None = None) -> None:
    for title, step in steps or SEED_STEPS:
        service = STEP_NEEDS.get(title, "")
        if service and service not in seeder.wfm.config.addresses:
            seeder.console.print(f"skipping {title}: no {service} service", highlight=False)
            continue
        seeder.console.print(f"seeding {title} ...", highlight=False)
        try:
            await step(seeder)
        except InvalidArgument as error:
            if any(v.field == "idempotency_key" for v in error.field_violations):
                print(STALE_FLOOR, file=sys.stderr)
            raise


# A demo key answered "used for a different request": the floor was seeded by another version.
STALE_FLOOR = (
    "this system holds a demo floor seeded by another version of wfm (same keys, other "
    "requests); seed an empty system: stop `make run`, remove .local/run/default, start it again"
)


# The roster, training and performance steps (their module needs the definitions above).
from wfm_cli.demo_floor import FLOOR_STEPS  # noqa: E402

for _service, _title, _step in FLOOR_STEPS:
    SEED_STEPS.append((_title, _step))
    STEP_NEEDS[_title] = _service
