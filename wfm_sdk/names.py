"""Resource names and enum values as people type them (`a-1001`, `break`, `part-time`)."""

from __future__ import annotations

from wfm.availability.v1 import availability_service_pb2 as availability_pb
from wfm.scheduling.v1 import directory_service_pb2 as directory_pb


def agent_name(agent: str) -> str:
    """`a-1001`, `agents/a-1001` or `agents/a-1001/availability` -> `agents/a-1001`."""
    agent = agent.strip()
    if agent.startswith("agents/"):
        return "/".join(agent.split("/")[:2])
    return f"agents/{agent}"


def agent_id(agent: str) -> str:
    return agent_name(agent).removeprefix("agents/")


def availability_name(agent: str) -> str:
    return f"{agent_name(agent)}/availability"


def team_name(team: str) -> str:
    """`pune-night` or `teams/pune-night` -> `teams/pune-night` (empty stays empty)."""
    team = team.strip()
    if not team or team.startswith("teams/"):
        return team
    return f"teams/{team}"


def _words(enum_name: str, prefix: str) -> str:
    return enum_name.removeprefix(prefix).lower().replace("_", "-")


STATUS_PREFIX = "AGENT_STATUS_"
CONTRACT_PREFIX = "CONTRACT_TYPE_"
STATUSES: dict[str, int] = {
    _words(v.name, STATUS_PREFIX): v.number
    for v in availability_pb.AgentStatus.DESCRIPTOR.values
    if v.number != 0
}
CONTRACTS: dict[str, int] = {
    _words(v.name, CONTRACT_PREFIX): v.number
    for v in directory_pb.ContractType.DESCRIPTOR.values
    if v.number != 0
}
_STATUS_ALIASES = {"acw": "after-contact-work", "on-call": "on-contact", "ready": "available"}


def parse_status(value: str | int) -> int:
    """`break`, `on-contact`, `acw`, `AGENT_STATUS_BREAK` or the number -> the enum number."""
    if isinstance(value, int):
        return value
    words = value.strip().lower().replace("_", "-").removeprefix("agent-status-")
    words = _STATUS_ALIASES.get(words, words)
    if words not in STATUSES:
        raise ValueError(f"unknown status {value!r}: one of {', '.join(STATUSES)}")
    return STATUSES[words]


def parse_contract(value: str | int) -> int:
    if isinstance(value, int):
        return value
    words = value.strip().lower().replace("_", "-").removeprefix("contract-type-")
    if words not in CONTRACTS:
        raise ValueError(f"unknown contract type {value!r}: one of {', '.join(CONTRACTS)}")
    return CONTRACTS[words]


def status_words(number: int) -> str:
    """AGENT_STATUS_AFTER_CONTACT_WORK -> `after-contact-work` (unknown numbers as digits)."""
    try:
        return _words(availability_pb.AgentStatus.Name(number), STATUS_PREFIX)  # type: ignore[arg-type]
    except ValueError:
        return str(number)


def contract_words(number: int) -> str:
    try:
        return _words(directory_pb.ContractType.Name(number), CONTRACT_PREFIX)  # type: ignore[arg-type]
    except ValueError:
        return str(number)
