"""`wfm demo` (and `make demo`): seed the demo floor into a running system, then show it."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from wfm.availability.v1 import availability_service_pb2 as availability_pb

from wfm_cli import render
from wfm_cli.commands.performance import scorecard_table
from wfm_cli.context import (
    JsonOption,
    console,
    dev_token,
    handle_errors,
    options,
    print_json,
    to_dict,
)
from wfm_cli.demo import TEAMS, Seeder, agent_ids, run_seed
from wfm_cli.demo_floor import next_weekday, roster_start
from wfm_cli.timeline import coverage_chart, roster_timeline
from wfm_sdk import AsyncWfm, ClientConfig
from wfm_sdk.aio import AvailabilityClient


def demo(
    ctx: typer.Context,
    *,
    agents_per_team: Annotated[
        int, typer.Option(help="Agents in each of the two teams.", min=1, max=500)
    ] = 30,
    json_out: JsonOption = False,
) -> None:
    """Seed a demo floor into the running system, then print the board and one agent's history.

    A Pune team on the US Eastern night shift and a UK work-from-home team (60 agents, full-
    and part-time), then a burst of status changes. Running it again adds nothing.

    Against `make run` it needs no token (it signs development tokens: an admin for the
    directory, each agent for their own statuses); elsewhere give an admin's token.

    Example: wfm demo
    """
    config = options(ctx).config()
    # Seeding is bulk work: wait out the per-caller rate limit rather than fail.
    config = replace(config, max_attempts=20, max_backoff_s=2.0)
    if not config.token:
        config = config.with_token(dev_token(config, "demo-admin", ["admin"], []))
    out = console()
    if json_out:
        out.quiet = True
    result = asyncio.run(_seed_and_show(config, agents_per_team, out))
    if json_out:
        print_json(result)


async def _seed_and_show(config: ClientConfig, per_team: int, out: Any) -> dict[str, Any]:
    async with AsyncWfm(config) as wfm:

        def agent_client(agent: str) -> AvailabilityClient:
            if config.dev_token_key is None:
                return wfm.availability  # an admin may set anyone's status
            return wfm.with_token(dev_token(config, agent, ["agent"], [])).availability

        seeder = Seeder(wfm, agent_client, per_team, out)
        await run_seed(seeder)
        boards = {team.team_id: await _board(wfm, team.team_id, seeder) for team in TEAMS}
        for team_id, rows in boards.items():
            out.print(render.board_table(rows, f"board: teams/{team_id}"))
            out.print(render.board_summary(rows), highlight=False)
        agent = agent_ids(TEAMS[0], 1)[0]
        now = datetime.now(UTC)
        history = await wfm.availability.get_status_history(
            agent, start=now - timedelta(days=1), end=now + timedelta(minutes=1)
        )
        out.print(render.history_table(history, f"history of {agent} (last 24 hours)"))
        shown = await show_floor(wfm, agent, out)
        summary = ", ".join(f"{n} {kind}" for kind, n in seeder.seeded.items())
        out.print(f"demo floor ready: {summary}", highlight=False)
    return {
        "seeded": seeder.seeded,
        "boards": {team: [to_dict(row) for row in rows] for team, rows in boards.items()},
        "history": {"agent": agent, **to_dict(history)},
        **shown,
    }


async def _board(
    wfm: AsyncWfm, team: str, seeder: Seeder, timeout_s: float = 15.0
) -> list[availability_pb.Availability]:
    """The board as the Watch stream's first message shows it, once the board (a view, updated
    from events within milliseconds) shows every status change the demo made."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        stream = wfm.availability.watch_availability(team=team)
        try:
            first = await anext(stream)
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        rows = sorted(first.snapshot.availabilities, key=lambda a: a.agent_id)
        behind = [r for r in rows if r.version < seeder.versions.get(r.agent_id, 0)]
        if not behind or loop.time() > deadline:
            return rows
        await asyncio.sleep(0.1)


async def show_floor(wfm: AsyncWfm, agent: str, out: Any) -> dict[str, Any]:
    """A roster, coverage, a transcript and a scorecard, from the services the client knows."""
    shown: dict[str, Any] = {}
    addresses = wfm.config.addresses
    first = roster_start()
    if "scheduling" in addresses:
        roster = await _eventually(
            lambda: wfm.roster.get_agent_roster(
                agent=f"agents/{agent}",
                start_date=first.isoformat(),
                end_date=(first + timedelta(days=13)).isoformat(),
            ),
            lambda r: any(day.shifts for day in r.days),
        )
        zone = next((s.start_agent_local.time_zone for d in roster.days for s in d.shifts), "UTC")
        client = next((s.start_client_local.time_zone for d in roster.days for s in d.shifts), "")
        out.print(
            roster_timeline(
                roster,
                zone,
                client,
                first=first.isoformat(),
                last=(first + timedelta(days=13)).isoformat(),
            )
        )
        working_day = next_weekday(first).isoformat()  # the Pune night team's
        coverage = await wfm.roster.get_coverage(
            team=f"teams/{TEAMS[0].team_id}", start_date=working_day, end_date=working_day
        )
        out.print(coverage_chart(coverage))
        shown.update(roster=to_dict(roster), coverage=to_dict(coverage))
    if "training" in addresses:
        transcript = await _eventually(
            lambda: wfm.training.get_transcript(name=f"agents/{agent}/transcript"),
            lambda t: bool(t.completions),
        )
        _print_transcript_to(out, transcript)
        shown["transcript"] = to_dict(transcript)
    if "performance" in addresses:
        today = datetime.now(UTC).date()
        period = {
            "start_date": (today - timedelta(days=2)).isoformat(),
            "end_date": today.isoformat(),
        }
        card = await _eventually(
            lambda: wfm.performance.get_scorecard(name=f"agents/{agent}/scorecard", period=period),
            lambda c: c.metrics.cases_resolved > 0,
        )
        out.print(scorecard_table(card))
        shown["scorecard"] = to_dict(card)
    return shown


async def _eventually(call: Any, ready: Any, timeout_s: float = 15.0) -> Any:
    """Views follow events within milliseconds; wait for them a little, then show what is."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        result = await call()
        if ready(result) or loop.time() > deadline:
            return result
        await asyncio.sleep(0.2)


def _print_transcript_to(out: Any, transcript: Any) -> None:
    from wfm_cli.commands.training import transcript_table

    out.print(transcript_table(transcript))


def register(app: typer.Typer) -> None:
    app.command("demo")(handle_errors(demo))
