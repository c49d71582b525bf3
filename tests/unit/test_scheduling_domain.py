"""Directory rules (services/scheduling/domain.py): teams and agents."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from services.scheduling.domain import (
    MAX_WEEKLY_MINUTES,
    PART_TIME_MAX_WEEKLY_MINUTES,
    UPDATABLE_AGENT_FIELDS,
    Agent,
    ContractType,
    Team,
    decide_create_team,
    decide_register_agent,
    decide_update_agent,
    validate_agent,
    validate_team,
)
from wfm_runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument, Violations

CREATED = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 8, 13, 0, tzinfo=UTC)

TEAM = Team("night", "Night shift", "America/New_York", "acme-telecom")
AGENT = Agent(
    "E1001",
    display_name="Priya",
    team_id="night",
    site="pune",
    time_zone="Asia/Kolkata",
    contract_type=ContractType.FULL_TIME,
    weekly_minutes=2400,
)
STORED = replace(AGENT, version=3, create_time=CREATED, update_time=CREATED)


def team_violations(team: Team) -> list[str]:
    v = Violations()
    validate_team(team, v)
    return [item.field for item in v.items]


def agent_violations(agent: Agent, prefix: str = "agent.") -> list[str]:
    v = Violations()
    validate_agent(agent, v, prefix)
    return [item.field for item in v.items]


# --- validate_team -------------------------------------------------------------------------
class TestValidateTeam:
    def test_valid(self) -> None:
        assert team_violations(TEAM) == []

    def test_operating_hours_and_rest(self) -> None:
        night = replace(TEAM, operating_hours=((1, "18:30", 540), (7, "18:30", 540)))
        assert team_violations(night) == []
        bad = replace(
            TEAM,
            operating_hours=((0, "25:00", 0), (1, "08:00", 60), (1, "09:00", 60)),
            min_rest_minutes=-1,
        )
        assert team_violations(bad) == [
            "team.min_rest_minutes",
            "team.operating_hours",
            "team.operating_hours[0].iso_weekday",
            "team.operating_hours[0].open_local_time",
            "team.operating_hours[0].length_minutes",
        ]

    @pytest.mark.parametrize("team_id", ["", "-night", "night shift", "a/b", "n" * 64, "é"])
    def test_bad_id(self, team_id: str) -> None:
        assert team_violations(replace(TEAM, team_id=team_id)) == ["team_id"]

    @pytest.mark.parametrize("name", ["", "x" * 201])
    def test_bad_display_name(self, name: str) -> None:
        assert team_violations(replace(TEAM, display_name=name)) == ["team.display_name"]

    @pytest.mark.parametrize(
        "zone", ["", "Mars/Olympus_Mons", "america/new_york", "EST+5", "../../etc/passwd", " UTC"]
    )
    def test_bad_client_time_zone(self, zone: str) -> None:
        assert team_violations(replace(TEAM, client_time_zone=zone)) == ["team.client_time_zone"]

    def test_client_too_long(self) -> None:
        assert team_violations(replace(TEAM, client="c" * 101)) == ["team.client"]
        assert team_violations(replace(TEAM, client="c" * 100)) == []

    def test_all_violations_together(self) -> None:
        bad = Team("", "", "Nowhere", "c" * 101)
        assert team_violations(bad) == [
            "team_id",
            "team.display_name",
            "team.client_time_zone",
            "team.client",
        ]


# --- validate_agent ------------------------------------------------------------------------
class TestValidateAgent:
    def test_valid(self) -> None:
        assert agent_violations(AGENT) == []

    def test_caps(self) -> None:
        assert MAX_WEEKLY_MINUTES == 3600
        assert PART_TIME_MAX_WEEKLY_MINUTES == 1800

    @pytest.mark.parametrize(
        ("contract", "minutes", "ok"),
        [
            (ContractType.FULL_TIME, 1, True),
            (ContractType.FULL_TIME, 3600, True),
            (ContractType.FULL_TIME, 3601, False),
            (ContractType.FULL_TIME, 0, False),
            (ContractType.FULL_TIME, -60, False),
            (ContractType.PART_TIME, 1, True),
            (ContractType.PART_TIME, 1800, True),
            (ContractType.PART_TIME, 1801, False),
            (ContractType.PART_TIME, 2400, False),
            (ContractType.PART_TIME, 0, False),
        ],
    )
    def test_weekly_minutes(self, contract: ContractType, minutes: int, ok: bool) -> None:
        v = Violations()
        validate_agent(replace(AGENT, contract_type=contract, weekly_minutes=minutes), v)
        assert [i.field for i in v.items] == ([] if ok else ["agent.weekly_minutes"])
        if not ok:
            cap = 1800 if contract is ContractType.PART_TIME else 3600
            assert f"between 1 and {cap}" in v.items[0].description
            assert contract.value in v.items[0].description

    @pytest.mark.parametrize("zone", ["", "Asia/Calcutta ", "Asia/Pune", "IST"])
    def test_bad_zone(self, zone: str) -> None:
        assert agent_violations(replace(AGENT, time_zone=zone)) == ["agent.time_zone"]

    @pytest.mark.parametrize("zone", ["Asia/Kolkata", "Asia/Calcutta", "Europe/London", "UTC"])
    def test_good_zone(self, zone: str) -> None:
        assert agent_violations(replace(AGENT, time_zone=zone)) == []

    @pytest.mark.parametrize("team_id", ["", "teams/night", "night shift"])
    def test_bad_team(self, team_id: str) -> None:
        assert agent_violations(replace(AGENT, team_id=team_id)) == ["agent.team"]

    def test_display_name_and_site(self) -> None:
        assert agent_violations(replace(AGENT, display_name="")) == ["agent.display_name"]
        assert agent_violations(replace(AGENT, display_name="x" * 201)) == ["agent.display_name"]
        assert agent_violations(replace(AGENT, site="s" * 101)) == ["agent.site"]
        assert agent_violations(replace(AGENT, site="")) == []

    @pytest.mark.parametrize(
        ("days", "ok"),
        [((), True), ((1, 2, 3, 4, 5), True), ((2, 3, 4, 5, 6, 7), True), ((0,), False),
         ((8,), False), ((1, 1), False)],
    )  # fmt: skip
    def test_working_days(self, days: tuple[int, ...], ok: bool) -> None:
        found = agent_violations(replace(AGENT, working_days=days))
        assert found == ([] if ok else ["agent.working_days"])

    def test_no_working_days_named_is_monday_to_friday(self) -> None:
        assert AGENT.working_weekdays == {1, 2, 3, 4, 5}
        assert replace(AGENT, working_days=(6, 7)).working_weekdays == {6, 7}

    def test_prefix_and_collected_violations(self) -> None:
        bad = Agent("E1", display_name="", team_id="", time_zone="Nowhere", weekly_minutes=0)
        assert agent_violations(bad, prefix="") == [
            "display_name",
            "team",
            "time_zone",
            "weekly_minutes",
        ]


# --- decide_create_team / decide_register_agent ---------------------------------------------
class TestCreate:
    def test_create_team(self) -> None:
        created = decide_create_team(Team("night"), TEAM, NOW)
        assert created == replace(TEAM, version=1, create_time=NOW, update_time=NOW)

    def test_create_existing_team(self) -> None:
        with pytest.raises(AlreadyExists) as raised:
            decide_create_team(replace(TEAM, version=1), TEAM, NOW)
        assert (raised.value.resource_type, raised.value.resource_name) == ("team", "teams/night")

    def test_register_agent(self) -> None:
        registered = decide_register_agent(Agent("E1001"), AGENT, team_exists=True, now=NOW)
        assert registered == replace(AGENT, version=1, create_time=NOW, update_time=NOW)

    def test_register_existing_agent(self) -> None:
        with pytest.raises(AlreadyExists) as raised:
            decide_register_agent(STORED, AGENT, team_exists=True, now=NOW)
        assert raised.value.resource_name == "agents/E1001"

    def test_existence_is_checked_before_the_team(self) -> None:
        with pytest.raises(AlreadyExists):
            decide_register_agent(STORED, AGENT, team_exists=False, now=NOW)

    def test_register_into_missing_team(self) -> None:
        with pytest.raises(FailedPrecondition) as raised:
            decide_register_agent(Agent("E1001"), AGENT, team_exists=False, now=NOW)
        [violation] = raised.value.violations
        assert (violation.type, violation.subject) == ("TEAM_EXISTS", "teams/night")
        assert "night" in violation.description


# --- decide_update_agent -------------------------------------------------------------------
class TestUpdateAgent:
    def update(
        self, paths: set[str], team_exists: bool = True, **changes: Any
    ) -> tuple[Agent, list[str]] | None:
        changed = replace(AGENT, **changes)
        return decide_update_agent(STORED, changed, frozenset(paths), team_exists, NOW)

    def test_updatable_fields(self) -> None:
        assert (
            frozenset(
                {
                    "display_name",
                    "team",
                    "site",
                    "time_zone",
                    "contract_type",
                    "weekly_minutes",
                    "annual_leave_days",
                    "working_days",
                }
            )
            == UPDATABLE_AGENT_FIELDS
        )

    def test_same_values_are_a_no_op(self) -> None:
        assert self.update(set(UPDATABLE_AGENT_FIELDS)) is None

    def test_changes_outside_the_mask_are_ignored(self) -> None:
        assert self.update({"site"}, display_name="Someone else", weekly_minutes=1) is None

    def test_one_field(self) -> None:
        result = self.update({"site"}, site="uk-wfh")
        assert result is not None
        agent, changed = result
        assert changed == ["site"]
        assert agent == replace(STORED, site="uk-wfh", update_time=NOW)
        assert agent.create_time == CREATED
        assert agent.version == STORED.version  # the runner assigns the new version

    def test_changed_fields_are_sorted_and_only_the_real_changes(self) -> None:
        result = self.update(
            {"weekly_minutes", "display_name", "site", "time_zone"},
            weekly_minutes=1200,
            display_name="Priya S",
            time_zone="Asia/Kolkata",  # unchanged
        )
        assert result is not None
        agent, changed = result
        assert changed == ["display_name", "weekly_minutes"]
        assert (agent.display_name, agent.weekly_minutes, agent.site) == ("Priya S", 1200, "pune")

    def test_team_change_to_existing_team(self) -> None:
        result = self.update({"team"}, team_exists=True, team_id="day")
        assert result is not None
        agent, changed = result
        assert agent.team_id == "day"
        assert changed == ["team"]

    def test_team_change_to_missing_team(self) -> None:
        with pytest.raises(FailedPrecondition) as raised:
            self.update({"team"}, team_exists=False, team_id="ghost")
        assert raised.value.violations[0].subject == "teams/ghost"

    def test_missing_team_does_not_matter_when_the_team_is_unchanged(self) -> None:
        result = self.update({"team", "site"}, team_exists=False, site="uk-wfh")
        assert result is not None and result[1] == ["site"]

    def test_part_time_with_full_time_hours_is_invalid(self) -> None:
        with pytest.raises(InvalidArgument) as raised:
            self.update({"contract_type"}, contract_type=ContractType.PART_TIME)
        assert [v.field for v in raised.value.violations] == ["agent.weekly_minutes"]

    def test_part_time_with_part_time_hours(self) -> None:
        result = self.update(
            {"contract_type", "weekly_minutes"},
            contract_type=ContractType.PART_TIME,
            weekly_minutes=1200,
        )
        assert result is not None
        assert result[1] == ["contract_type", "weekly_minutes"]

    @pytest.mark.parametrize(
        ("paths", "changes", "field"),
        [
            ({"weekly_minutes"}, {"weekly_minutes": 3601}, "agent.weekly_minutes"),
            ({"weekly_minutes"}, {"weekly_minutes": 0}, "agent.weekly_minutes"),
            ({"time_zone"}, {"time_zone": "Mars/Base"}, "agent.time_zone"),
            ({"display_name"}, {"display_name": ""}, "agent.display_name"),
            ({"team"}, {"team_id": ""}, "agent.team"),
            ({"site"}, {"site": "s" * 101}, "agent.site"),
            ({"working_days"}, {"working_days": (1, 9)}, "agent.working_days"),
        ],
    )
    def test_invalid_new_values(self, paths: set[str], changes: dict[str, Any], field: str) -> None:
        with pytest.raises(InvalidArgument) as raised:
            self.update(paths, **changes)
        assert [v.field for v in raised.value.violations] == [field]


class TestUpdateTeam:
    def test_changes_only_the_masked_fields(self) -> None:
        from services.scheduling.domain import decide_update_team

        stored = replace(TEAM, version=2, create_time=CREATED, update_time=CREATED)
        changes = replace(TEAM, display_name="ignored", min_rest_minutes=600)
        result = decide_update_team(stored, changes, frozenset({"min_rest_minutes"}), NOW)
        assert result is not None
        team, changed = result
        assert (team.min_rest_minutes, team.display_name, changed) == (
            600,
            TEAM.display_name,
            ["min_rest_minutes"],
        )
        assert team.update_time == NOW
        same = decide_update_team(team, changes, frozenset({"min_rest_minutes"}), NOW)
        assert same is None

    def test_validates_the_result_and_needs_the_team(self) -> None:
        from services.scheduling.domain import decide_update_team
        from wfm_runtime.errors import NotFound

        stored = replace(TEAM, version=1)
        bad = replace(TEAM, operating_hours=((8, "25:00", 0),))
        with pytest.raises(InvalidArgument):
            decide_update_team(stored, bad, frozenset({"operating_hours"}), NOW)
        with pytest.raises(NotFound):
            decide_update_team(Team("ghost"), TEAM, frozenset({"client"}), NOW)
