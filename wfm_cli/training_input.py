"""What the training commands read from the command line and from files, checked before
anything is sent: competency levels (`fibre=competent`), repeatable options that may clear a
list, and a class's results as CSV (`wfm complete-all`)."""

from __future__ import annotations

import csv

from wfm.training.v1 import training_service_pb2 as training_pb

from wfm_sdk import names

LEVELS = ["foundation", "competent", "expert", "master"]
MAX_COMPLETIONS = 500  # RecordCompletions takes 1-500 entries
MAX_SHOWN = 20  # bad lines listed; the rest are counted
MAX_ATTENDED_MINUTES = 2**31 - 1  # Completion.attended_minutes is an int32
PASSED = {"passed", "pass", "true", "yes", "y", "1"}
FAILED = {"failed", "fail", "false", "no", "n", "0"}


def level_number(words: str) -> int:
    """`competent` -> COMPETENCY_LEVEL_COMPETENT (the enum lists the levels in order, from 1)."""
    level = words.strip().lower()
    if level not in LEVELS:
        raise ValueError(f"a level is one of {', '.join(LEVELS)}, got {words!r}")
    return LEVELS.index(level) + 1


def requirement(text: str) -> training_pb.CompetencyRequirement:
    """`fibre=competent` -> the competency `fibre` held at `competent` or above."""
    competency, equals, level = text.partition("=")
    if not equals or not competency.strip():
        raise ValueError(f"COMPETENCY=LEVEL expected, e.g. fibre=competent, got {text!r}")
    return training_pb.CompetencyRequirement(
        competency=competency.strip(),
        level=level_number(level),  # type: ignore[arg-type]
    )


def given(values: list[str] | None) -> list[str] | None:
    """A repeatable option's values without empty ones; None when the option was not given.
    So `--required-for ''` alone gives [] and clears the list, which a mask can then name."""
    if values is None:
        return None
    return [value.strip() for value in values if value.strip()]


def read_completions(text: str, source: str) -> list[training_pb.CompletionEntry]:
    """A class's results, one `agent,score,passed[,hours]` line each (an optional first line of
    column names and blank lines allowed). Every bad line is reported at once, with its
    number, so nothing is sent until the whole file is right."""
    entries: list[training_pb.CompletionEntry] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    for number, cells in _rows(text):
        try:
            entry = completion_entry(cells)
        except ValueError as exc:
            problems.append(f"line {number}: {exc}")
            continue
        if entry.agent in first_line:
            problems.append(
                f"line {number}: {entry.agent} is already on line {first_line[entry.agent]}"
            )
            continue
        first_line[entry.agent] = number
        entries.append(entry)
    if not entries and not problems:
        problems.append("no results: one line per agent, agent,score,passed,hours")
    if len(entries) > MAX_COMPLETIONS:
        problems.append(f"{len(entries)} results: at most {MAX_COMPLETIONS} per call")
    if problems:
        raise ValueError(_listed(source, problems))
    return entries


def _rows(text: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) of every non-blank line, without the column names if given. Each
    line is read on its own so the numbers are the file's lines."""
    rows = [
        (number, [cell.strip() for cell in next(csv.reader([line]))])
        for number, line in enumerate(text.splitlines(), 1)
        if line.strip()
    ]
    if rows and rows[0][1][0].lower() == "agent":
        return rows[1:]
    return rows


def completion_entry(cells: list[str]) -> training_pb.CompletionEntry:
    """One line: agent, score 0-100, passed or failed, and hours attended (left out or empty:
    the course's hours, which the service fills in)."""
    if len(cells) not in (3, 4):
        raise ValueError(f"columns agent,score,passed[,hours] expected, got {len(cells)}")
    agent, score, passed, hours = [*cells, ""][:4]
    if not agent:
        raise ValueError("the agent is missing")
    return training_pb.CompletionEntry(
        agent=names.agent_name(agent),
        completion=training_pb.Completion(
            score=_score(score), passed=_passed(passed), attended_minutes=_minutes(hours)
        ),
    )


def _score(text: str) -> int:
    try:
        score = int(text)
    except ValueError:
        raise ValueError(f"score: a whole number 0-100, got {text!r}") from None
    if not 0 <= score <= 100:
        raise ValueError(f"score: a whole number 0-100, got {score}")
    return score


def _passed(text: str) -> bool:
    if text.lower() in PASSED:
        return True
    if text.lower() in FAILED:
        return False
    raise ValueError(f"passed: passed or failed (yes/no, true/false, 1/0), got {text!r}")


def _minutes(hours: str) -> int:
    """Attended minutes, which the transcript counts as training time; 0 when not given."""
    if not hours:
        return 0
    try:
        value = float(hours)
    except ValueError:
        raise ValueError(f"hours: the hours attended, e.g. 4 or 3.5, got {hours!r}") from None
    # The minutes go in an int32: more would stop the whole check instead of naming the line.
    if not 0 <= value * 60 <= MAX_ATTENDED_MINUTES:
        raise ValueError(f"hours: the hours attended, e.g. 4 or 3.5, got {hours!r}")
    return round(value * 60)


def _listed(source: str, problems: list[str]) -> str:
    shown = "\n  ".join(problems[:MAX_SHOWN])
    more = f"\n  ... and {len(problems) - MAX_SHOWN} more" if len(problems) > MAX_SHOWN else ""
    return f"{source}: {len(problems)} problems, nothing sent:\n  {shown}{more}"
