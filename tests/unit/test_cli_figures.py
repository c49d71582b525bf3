"""How `wfm flags` prints a flagged figure next to the limit it broke."""

from __future__ import annotations

import pytest

from wfm_cli.commands.performance import flag_figure


@pytest.mark.parametrize(
    ("metric", "value", "limit", "shown"),
    [
        ("adherence_percent", 71.43, 85.0, "71.4%"),  # one decimal where it tells them apart
        ("adherence_percent", 84.96, 85.0, "84.96%"),  # 85.0% would read as no breach
        ("csat_average", 3.96, 4.0, "3.96"),
        ("absenteeism_percent", 8.004, 8.0, "8.004%"),
        ("average_handle_time_seconds", 600.5, 600.0, "10.01 min"),
    ],
)
def test_a_flagged_figure_never_prints_equal_to_its_limit(
    metric: str, value: float, limit: float, shown: str
) -> None:
    assert flag_figure(metric, value, limit) == shown
