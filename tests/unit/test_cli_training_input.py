"""What the training commands of the CLI read before sending anything: `--requires`
COMPETENCY=LEVEL, list options that may clear a list, and a class's results as CSV."""

from __future__ import annotations

import pytest
from wfm.training.v1 import training_service_pb2 as training_pb

from wfm_cli.training_input import (
    MAX_COMPLETIONS,
    completion_entry,
    given,
    read_completions,
    requirement,
)


def test_a_requirement_is_a_competency_and_a_level() -> None:
    found = requirement(" fibre = Competent ")
    assert found.competency == "fibre"
    assert found.level == training_pb.COMPETENCY_LEVEL_COMPETENT


@pytest.mark.parametrize("text", ["fibre", "=expert", "fibre=guru", "fibre="])
def test_a_bad_requirement_says_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match=r"COMPETENCY=LEVEL|a level is one of foundation"):
        requirement(text)


def test_an_option_not_given_changes_nothing_and_an_empty_one_clears() -> None:
    assert given(None) is None
    assert given([""]) == []
    assert given(["acme", " ", " globex "]) == ["acme", "globex"]


def test_a_results_file_with_column_names_and_blank_lines() -> None:
    text = "agent,score,passed,hours\n\na-1,88,passed,4\nagents/a-2, 40 ,no,3.5\n"
    first, second = read_completions(text, "results.csv")
    assert first.agent == "agents/a-1"
    assert (first.completion.score, first.completion.passed) == (88, True)
    assert first.completion.attended_minutes == 240
    assert second.agent == "agents/a-2"
    assert (second.completion.passed, second.completion.attended_minutes) == (False, 210)


def test_every_bad_line_is_listed_with_its_number() -> None:
    text = "\n".join(
        [
            "a-1,88,passed,4",
            "a-2,101,passed,4",  # score out of range
            "a-3,70,maybe,4",  # not a pass or a fail
            "a-4,70",  # two columns short
            "a-1,60,no,4",  # the same agent twice
            ",60,no,4",  # no agent
            "a-5,60,no,-1",  # negative hours
            "a-6,60,no,nan",
        ]
    )
    with pytest.raises(ValueError) as caught:
        read_completions(text, "results.csv")
    message = str(caught.value)
    assert message.startswith("results.csv: 7 problems, nothing sent:")
    for expected in (
        "line 2: score: a whole number 0-100, got 101",
        "line 3: passed: passed or failed",
        "line 4: columns agent,score,passed[,hours] expected, got 2",
        "line 5: agents/a-1 is already on line 1",
        "line 6: the agent is missing",
        "line 7: hours:",
        "line 8: hours:",
    ):
        assert expected in message
    assert "line 1:" not in message


def test_hours_left_out_or_empty_are_the_courses() -> None:
    short, empty = read_completions("a-1,88,passed\na-2,50,failed,\n", "results.csv")
    assert short.completion.attended_minutes == 0 == empty.completion.attended_minutes
    assert (short.completion.score, empty.completion.passed) == (88, False)


def test_an_empty_file_or_too_many_results_are_refused() -> None:
    with pytest.raises(ValueError, match="no results"):
        read_completions("agent,score,passed,hours\n", "empty.csv")
    many = "\n".join(f"a-{n},80,passed,1" for n in range(MAX_COMPLETIONS + 1))
    with pytest.raises(ValueError, match=f"at most {MAX_COMPLETIONS} per call"):
        read_completions(many, "many.csv")


def test_quoted_cells_are_read_as_csv() -> None:
    (entry,) = read_completions('"a-9","75",FAILED,2\n', "quoted.csv")
    assert entry.agent == "agents/a-9" and not entry.completion.passed
    assert completion_entry(["a-9", "0", "1", "0"]).completion.passed
