"""`wfm` without a system: configuration errors, an unreachable service, help and completion."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.cli.conftest import CLEAN_ENV
from wfm_cli import exitcodes
from wfm_cli.app import app
from wfm_runtime.testing import TokenMinter


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_no_address_is_a_configuration_error() -> None:
    result = CliRunner().invoke(app, ["teams", "list"], env=CLEAN_ENV)
    assert result.exit_code == exitcodes.CONFIG
    assert "no address for the scheduling service: set WFM_SCHEDULING_ADDR" in result.stderr


def test_a_config_file_named_with_config_must_exist(tmp_path: Path) -> None:
    typo = tmp_path / "cofnig.toml"
    result = CliRunner().invoke(app, ["--config", str(typo), "teams", "list"], env=CLEAN_ENV)
    assert result.exit_code == exitcodes.CONFIG
    assert f"the config file {typo} does not exist" in result.stderr


def test_unreachable_service_says_so_after_retrying() -> None:
    address = f"127.0.0.1:{_closed_port()}"
    args = ["--scheduling-addr", address, "--plaintext", "--token", "t", "--timeout", "1"]
    result = CliRunner().invoke(app, [*args, "teams", "list", "--json"], env=CLEAN_ENV)
    assert result.exit_code == exitcodes.UNAVAILABLE
    assert '"code": "UNAVAILABLE"' in result.stderr and result.stdout == ""


def test_help_has_examples_and_completion_is_offered() -> None:
    top = CliRunner().invoke(app, ["--help"], env=CLEAN_ENV)
    assert top.exit_code == 0
    for command in ("status", "board", "history", "teams", "agents", "audit", "token", "demo"):
        assert command in top.stdout
    assert "--install-completion" in top.stdout
    sub = CliRunner().invoke(app, ["status", "set", "--help"], env=CLEAN_ENV)
    assert "wfm status set break --reason SCHEDULED_BREAK" in sub.stdout
    usage = CliRunner().invoke(app, ["status", "set"], env=CLEAN_ENV)
    assert usage.exit_code == exitcodes.USAGE and "Missing argument" in usage.stderr


def test_odd_values_are_refused_before_any_call() -> None:
    base = ["--availability-addr", "127.0.0.1:1", "--scheduling-addr", "127.0.0.1:1"]
    newline = CliRunner().invoke(
        app, [*base, "--token", "a\nb", "status", "get", "--agent", "a-1"], env=CLEAN_ENV
    )
    assert newline.exit_code == exitcodes.CONFIG
    assert "cannot be sent in a header" in newline.stderr
    too_far = CliRunner().invoke(
        app, [*base, "--token", "t", "history", "--agent", "a-1", "--hours", "1e12"], env=CLEAN_ENV
    )
    assert too_far.exit_code == exitcodes.USAGE and "--hours" in too_far.stderr
    week = ["agents", "create", "a-1", "--name", "A", "--team", "t", "--zone", "UTC"]
    endless = CliRunner().invoke(
        app, [*base, "--token", "t", *week, "--weekly-hours", "inf"], env=CLEAN_ENV
    )
    assert endless.exit_code == exitcodes.USAGE and "--weekly-hours" in endless.stderr


def test_whoami_reads_the_token_and_the_configuration(tmp_path: Path) -> None:
    token = TokenMinter(tmp_path / "k.pem").token("tl-7", "team_leader", teams=("pune-night",))
    args = ["--token", token, "--availability-addr", "10.0.0.1:443", "whoami"]
    shown = CliRunner().invoke(app, args, env=CLEAN_ENV)
    assert shown.exit_code == 0
    assert "subject          tl-7" in shown.stdout and "teams            pune-night" in shown.stdout
    data = json.loads(CliRunner().invoke(app, [*args, "--json"], env=CLEAN_ENV).stdout)
    assert data["roles"] == ["team_leader"] and data["addresses"] == {
        "availability": "10.0.0.1:443"
    }
    assert data["transport"] == "TLS" and data["expires"].endswith(" UTC")


def test_shell_completion_offers_statuses(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "wfm"
    if not script.exists():
        pytest.skip("the wfm console script is not installed (make bootstrap)")
    env = {**os.environ, "_WFM_COMPLETE": "complete_bash", "COMP_WORDS": "wfm status set b"}
    env["COMP_CWORD"] = "3"
    done = subprocess.run(
        [str(script)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["break"]


ROUND_TWO = [
    ["roster"], ["coverage", "show"], ["shifts", "assign"], ["shifts", "bulk-assign"],
    ["shifts", "publish"], ["shifts", "cancel"], ["leave", "request"], ["leave", "list"],
    ["leave", "balance"], ["leave", "approve"], ["leave", "deny"], ["courses", "create"],
    ["courses", "list"], ["sessions", "create"], ["sessions", "list"], ["enroll"],
    ["complete"], ["transcript"], ["due"], ["scorecard"], ["scorecards"], ["flags", "show"],
    ["cases", "record"],
]  # fmt: skip
ROUND_THREE = [
    ["leave", "cancel"], ["shifts", "update"], ["coverage", "set"], ["flags", "thresholds", "get"],
    ["flags", "thresholds", "set"], ["explain"], ["adherence"],
]  # fmt: skip
SETUP = [
    ["sites", "create"], ["sites", "get"], ["sites", "list"], ["sites", "holidays"],
    ["patterns", "create"], ["patterns", "get"], ["patterns", "list"], ["teams", "update"],
]  # fmt: skip


@pytest.mark.parametrize("command", ROUND_TWO + ROUND_THREE + SETUP, ids=" ".join)
def test_every_command_has_help_with_an_example_and_json(command: list[str]) -> None:
    shown = CliRunner().invoke(app, [*command, "--help"], env=CLEAN_ENV)
    assert shown.exit_code == 0, shown.output
    assert f"wfm {command[0]}" in shown.stdout or "Example" in shown.stdout
    assert "Example" in shown.stdout and "--json" in shown.stdout


@pytest.mark.parametrize(
    ("group", "old_form"),
    [("coverage", ["pune-night", "--help"]), ("flags", ["--team", "pune-night", "--help"])],
)
def test_a_group_that_grew_subcommands_still_takes_its_old_form(
    group: str, old_form: list[str]
) -> None:
    listed = CliRunner().invoke(app, [group, "--help"], env=CLEAN_ENV)
    assert listed.exit_code == 0 and "show" in listed.stdout
    old = CliRunner().invoke(app, [group, *old_form], env=CLEAN_ENV)
    assert old.exit_code == 0, old.output
    assert f"Usage: wfm {group} show" in old.stdout


def test_a_flat_requirement_covers_its_range_and_wraps_past_midnight() -> None:
    from wfm_cli.commands.roster import flat_requirement

    day = flat_requirement(5, start="09:00", end="17:00", interval=30)
    assert len(day) == 48 and day[17] == 0 and day[18] == 5 and day[33] == 5 and day[34] == 0
    night = flat_requirement(3, start="18:00", end="03:00", interval=15)
    assert len(night) == 96 and sum(night) == 3 * 36
    assert night[0] == 3 and night[11] == 3 and night[12] == 0 and night[71] == 0
    assert flat_requirement(2, start="00:00", end="24:00", interval=30) == [2] * 48


def test_bad_coverage_input_is_refused_before_any_call(tmp_path: Path) -> None:
    base = ["--scheduling-addr", "127.0.0.1:1", "--plaintext", "--token", "t", "coverage", "set"]
    both = CliRunner().invoke(app, [*base, "t1", "--date", "2027-03-01", "--weekday", "mon",
                                    "--value", "3"], env=CLEAN_ENV)  # fmt: skip
    assert both.exit_code == exitcodes.USAGE and "exactly one of --date" in both.stderr
    bad_time = CliRunner().invoke(
        app, [*base, "t1", "--weekday", "mon", "--value", "3", "--from", "25:00"], env=CLEAN_ENV
    )
    assert bad_time.exit_code == exitcodes.USAGE and "--from" in bad_time.stderr
    junk = tmp_path / "req.txt"
    junk.write_text("1 2 three")
    bad_file = CliRunner().invoke(
        app, [*base, "t1", "--weekday", "mon", "--file", str(junk)], env=CLEAN_ENV
    )
    assert bad_file.exit_code == exitcodes.USAGE and "whole numbers" in bad_file.stderr


def test_a_missing_training_address_is_a_config_error_in_plain_words() -> None:
    base = ["--scheduling-addr", "127.0.0.1:1", "--plaintext", "--token", "t"]
    result = CliRunner().invoke(app, [*base, "courses", "list"], env=CLEAN_ENV)
    assert result.exit_code == exitcodes.CONFIG
    assert "no address for the training service: set WFM_TRAINING_ADDR" in result.stderr


def test_case_files_parse_json_lines_and_csv_alike(tmp_path: Path) -> None:
    from wfm_cli.commands.performance import read_cases

    jsonl = tmp_path / "cases.jsonl"
    jsonl.write_text(
        '{"case_id": "c-1", "agent": "a-1001", "channel": "chat", "talk_duration": "420s",'
        ' "sla_target": "600s", "sla_met": true, "csat_score": 5,'
        ' "resolve_time": "2026-11-24T14:09:00Z"}\n\n'
    )
    table = tmp_path / "cases.csv"
    table.write_text(
        "case_id,agent,channel,resolve_time,talk_seconds,sla_target_seconds,sla_met,csat_score\n"
        "c-1,a-1001,chat,2026-11-24T14:09:00Z,420,600,yes,5\n"
    )
    from_json, from_csv = read_cases(jsonl), read_cases(table)
    assert [r.case for r in from_json] == [r.case for r in from_csv]
    case = from_json[0].case
    assert (case.agent, case.channel, case.talk_duration.seconds, case.csat_score) == (
        "agents/a-1001",
        3,
        420,
        5,
    )
    # The key follows the content: the same case gets the same key, a corrected one another.
    assert from_json[0].idempotency_key == from_csv[0].idempotency_key
    table.write_text(table.read_text().replace(",5\n", ",4\n"))
    assert read_cases(table)[0].idempotency_key != from_json[0].idempotency_key


def test_an_unknown_role_for_as_is_a_usage_error() -> None:
    # As `wfm token --role`: a token with a role no policy knows was signed and every call
    # answered PERMISSION_DENIED ("no role may not call ...").
    base = ["--scheduling-addr", "127.0.0.1:1", "--as", "x", "--role", "admin"]
    result = CliRunner().invoke(app, [*base, "--role", "wizard", "teams", "list"], env=CLEAN_ENV)
    assert result.exit_code == exitcodes.USAGE and "unknown role 'wizard'" in result.stderr
    token = CliRunner().invoke(app, ["token", "--subject", "x", "--role", "wizard"], env=CLEAN_ENV)
    assert token.exit_code == exitcodes.USAGE and "unknown role 'wizard'" in token.stderr
