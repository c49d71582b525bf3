"""`wfm cases record|scorecard|scorecards|flags` as team leaders (and integrations) use them,
against the real performance service."""

from __future__ import annotations

import asyncio
import functools
import json
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from wfm.performance.v1 import performance_service_pb2 as pb

from tests.cli.conftest import Cli
from tests.conftest import System
from wfm_cli import board, exitcodes
from wfm_cli.commands import performance as performance_commands
from wfm_runtime.testing import eventually
from wfm_runtime.timefmt import utc_now

pytestmark = pytest.mark.integration
PUNE = ZoneInfo("Asia/Kolkata")
CSV_HEADER = (
    "case_id,agent,channel,open_time,resolve_time,talk_seconds,first_contact_resolution,"
    "sla_target_seconds,sla_met,csat_score"
)


async def _team(system: System, agents: list[str]) -> None:
    assert system.performance is not None
    await system.add_team("night")
    for agent in agents:
        await system.add_agent(agent, "night")
    directory = system.performance.directory
    for agent in agents:
        await eventually(lambda a=agent: directory.agent(a))  # type: ignore[misc]


def _cases_file(tmp_path: Path) -> tuple[Path, str]:
    """Three cases resolved two hours ago: a1 misses the SLA once."""
    resolved = utc_now() - timedelta(hours=2)
    opened = resolved - timedelta(minutes=10)
    day = resolved.astimezone(PUNE).date()
    at = f"{opened:%Y-%m-%dT%H:%M:%SZ},{resolved:%Y-%m-%dT%H:%M:%SZ}"
    lines = [
        CSV_HEADER,
        f"x1,a1,phone,{at},300,true,600,false,4",
        f"x2,a1,chat,{at},240,true,600,true,5",
        f"x3,a2,phone,{at},420,false,600,true,",
    ]
    path = tmp_path / "cases.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, day.isoformat()


async def test_cases_from_a_file_make_scorecards_flags_and_rerunning_changes_nothing(
    wfm: Cli, perf_system: System, tmp_path: Path
) -> None:
    system = perf_system
    await _team(system, ["a1", "a2"])
    path, day = _cases_file(tmp_path)
    recorded = await wfm("cases", "record", str(path))
    assert recorded.exit_code == 0, recorded.stderr
    assert "recorded 3 cases, 0 refused" in recorded.stdout
    assert system.perf is not None
    await system.perf.SetRedFlagThresholds(
        pb.SetRedFlagThresholdsRequest(
            thresholds=pb.RedFlagThresholds(
                name="teams/night/redFlagThresholds", min_sla_compliance_percent=95
            ),
            idempotency_key="th1",
        )
    )
    leader = wfm.token("tl-1", "team_leader", teams=("night",))
    period = ["--from", day, "--to", day]

    async def card() -> dict[str, object]:
        run = await wfm("scorecard", "a1", *period, "--json", token=leader)
        assert run.exit_code == 0, run.stderr
        return dict(run.json()["metrics"])

    metrics = await eventually(card, lambda m: m.get("cases_resolved") == 2)
    assert metrics["sla_compliance_percent"] == 50.0 and metrics["csat_average"] == 4.5
    shown = (await wfm("scorecard", "a1", *period, token=leader)).stdout
    assert "sla compliance percent" in shown and "50.0%" in shown

    ranked = await wfm(
        "scorecards", "--team", "night", "--sort", "SLA_Compliance_Percent", "--desc", *period,
        "--json", token=leader,
    )  # fmt: skip
    assert [c["agent"] for c in ranked.json()["scorecards"]] == ["agents/a2", "agents/a1"]
    team = ranked.json()["team_summary"]  # pooled: 2 of the 3 cases met the SLA
    assert team["agent_count"] == 2 and team["metrics"]["cases_resolved"] == 3
    assert team["metrics"]["sla_compliance_percent"] == pytest.approx(200 / 3)
    board = (await wfm("scorecards", "--team", "night", *period, token=leader)).stdout
    assert "team (2 agents)" in board and "66.7%" in board

    async def flagged() -> str:
        return (await wfm("flags", "--team", "night", *period, token=leader)).stdout

    shown = await eventually(flagged, lambda out: "1 red flags" in out)
    assert "a1" in shown and "sla compliance percent" in shown
    assert "50.0%" in shown and "min 95.0%" in shown  # as the scorecard shows a figure

    again = await wfm("cases", "record", str(path), "--json")
    assert again.exit_code == 0, again.stderr
    assert [r["case"]["version"] for r in again.json()["results"]] == ["1", "1", "1"]


async def test_a_bad_file_is_refused_whole_with_line_numbers(
    wfm: Cli, perf_system: System, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"case_id": "c1", "agent": "a1", "channel": "phone"}\n'
        "not json\n"
        '{"agent": "a1"}\n'
        '{"case_id": "c4", "channel": "pigeon"}\n'
    )
    run = await wfm("cases", "record", str(bad))
    assert run.exit_code == exitcodes.INVALID_ARGUMENT
    assert "3 bad cases, nothing sent" in run.stderr
    assert "line 2: not JSON" in run.stderr and "line 3: case_id is missing" in run.stderr
    assert "line 4:" in run.stderr
    leader = wfm.token("tl-1", "team_leader", teams=("night",))
    other = await wfm("scorecards", "--team", "day", token=leader)
    assert other.exit_code == exitcodes.PERMISSION_DENIED, other.stderr
    sort = await wfm("scorecards", "--team", "night", "--sort", "speed", token=leader)
    assert sort.exit_code == exitcodes.USAGE and "adherence_percent" in sort.stderr


async def test_adherence_now_for_the_team_leaders_own_team(wfm: Cli, perf_system: System) -> None:
    from wfm.availability.v1 import availability_service_pb2 as apb

    from tests.integration.test_performance_adherence import _shift_around_now

    await _team(perf_system, [])
    await perf_system.add_team("rta")
    await perf_system.add_agent("r1", "rta")
    await eventually(lambda: perf_system.performance.directory.agent("r1"))  # type: ignore[union-attr]
    await perf_system.known_to_availability("r1")
    await _shift_around_now(perf_system, "r1")
    await perf_system.avail.SetStatus(
        apb.SetStatusRequest(
            name="agents/r1/availability", status=apb.AGENT_STATUS_LUNCH, idempotency_key="l"
        )
    )
    leader = wfm.token("tl-1", "team_leader", teams=("rta",))

    async def shown() -> str:
        run = await wfm("adherence", token=leader)  # the token's own team
        assert run.exit_code == 0, run.stderr
        return run.stdout

    # Both the status and the published shift: performance may see either first.
    out = await eventually(shown, lambda out: "lunch" in out and "work" in out)
    assert "out of adherence" in out and "IST" in out
    assert out.rstrip().endswith("1 of 1 out of adherence")
    data = (await wfm("adherence", "--team", "rta", "--json", token=leader)).json()
    assert [(a["agent"], a["state"]) for a in data["agents"]] == [
        ("agents/r1", "ADHERENCE_STATE_OUT_OF_ADHERENCE")
    ]
    other = await wfm("adherence", "--team", "night", token=leader)
    assert other.exit_code == exitcodes.PERMISSION_DENIED


async def test_adherence_watch_reads_again_each_tick_until_ctrl_c(
    wfm: Cli, perf_system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`wfm adherence --watch`: the agent back from an unplanned lunch shows in adherence on
    the next read; Ctrl-C ends the screen with exit 0."""
    from wfm.availability.v1 import availability_service_pb2 as apb

    from tests.integration.test_performance_adherence import _shift_around_now

    await perf_system.add_team("rta")
    await perf_system.add_agent("r1", "rta")
    await eventually(lambda: perf_system.performance.directory.agent("r1"))  # type: ignore[union-attr]
    await perf_system.known_to_availability("r1")
    await _shift_around_now(perf_system, "r1")

    async def set_status(status: apb.AgentStatus.ValueType, key: str) -> None:
        await perf_system.avail.SetStatus(
            apb.SetStatusRequest(name="agents/r1/availability", status=status, idempotency_key=key)
        )

    leader = perf_system.perf_as("tl-1", "team_leader", teams=("rta",))

    async def read_state() -> int:
        found = await leader.GetTeamAdherence(
            pb.GetTeamAdherenceRequest(name="teams/rta/adherence")
        )
        return found.agents[0].state if found.agents else 0

    await set_status(apb.AGENT_STATUS_LUNCH, "lunch")
    await eventually(read_state, lambda state: state == pb.ADHERENCE_STATE_OUT_OF_ADHERENCE)

    loop = asyncio.get_running_loop()
    ticks: list[float] = []

    def tick(seconds: float) -> None:  # runs on the command's thread, as time.sleep would
        ticks.append(seconds)
        if len(ticks) % 2 == 0:
            raise KeyboardInterrupt
        if len(ticks) == 1:
            back = set_status(apb.AGENT_STATUS_AVAILABLE, "back")
            asyncio.run_coroutine_threadsafe(back, loop).result(timeout=10)
            in_adherence = eventually(read_state, lambda s: s == pb.ADHERENCE_STATE_IN_ADHERENCE)
            asyncio.run_coroutine_threadsafe(in_adherence, loop).result(timeout=20)

    monkeypatch.setattr(performance_commands, "poll", functools.partial(board.poll, sleep=tick))
    token = wfm.token("tl-1", "team_leader", teams=("rta",))
    lines = await wfm("adherence", "--watch", "--json", "--every", "3", token=token)
    assert lines.exit_code == 0, lines.stderr
    assert ticks == [3, 3]  # read, tick, read again, Ctrl-C at the next tick
    reads = [json.loads(line) for line in lines.stdout.splitlines()]
    assert [r["agents"][0]["state"] for r in reads] == [
        "ADHERENCE_STATE_OUT_OF_ADHERENCE",
        "ADHERENCE_STATE_IN_ADHERENCE",
    ]
    screen = await wfm("adherence", "--watch", token=token)  # stopped at its first tick
    assert screen.exit_code == 0, screen.stderr
    assert ticks == [3, 3, 10, 10]  # every 10 s unless --every says otherwise
    heading = " ".join(screen.stdout.split())  # the title may wrap to the table's width
    assert "0 of 1 out of adherence - read at" in heading and "in adherence" in screen.stdout
