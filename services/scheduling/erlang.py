"""Erlang C: agents needed per interval from forecast contacts, handling time and a service level.

Pure. Traffic A = contacts x average handling time / interval length (Erlangs). With N agents
(N > A), the probability that a contact waits is Erlang C(N, A), computed from Erlang B by the
stable recurrence B(0) = 1, B(n) = A B(n-1) / (n + A B(n-1)), C = N B / (N - A (1 - B)). The
service level (share answered within T seconds) is 1 - C e^(-(N - A) T / AHT). The requirement
is the smallest N meeting the target.
"""

from __future__ import annotations

import math

MAX_AGENTS = 100_000


def erlang_c(agents: int, traffic: float) -> float:
    """Probability that a contact has to wait (1.0 when the agents cannot keep up)."""
    if agents <= traffic:
        return 1.0
    blocking = 1.0
    for n in range(1, agents + 1):
        blocking = traffic * blocking / (n + traffic * blocking)
    return agents * blocking / (agents - traffic * (1 - blocking))


def service_level(agents: int, traffic: float, handle_s: float, answer_s: float) -> float:
    if traffic <= 0:
        return 1.0
    waits = erlang_c(agents, traffic)
    return 1.0 - waits * math.exp(-(agents - traffic) * answer_s / handle_s)


def agents_needed(
    contacts: int, interval_s: int, handle_s: int, target: float, answer_s: int
) -> int:
    """Fewest agents answering `target` of `contacts` within `answer_s` seconds."""
    if contacts <= 0:
        return 0
    traffic = contacts * handle_s / interval_s
    blocking = 1.0  # Erlang B, extended one agent at a time: linear in the answer
    for agents in range(1, MAX_AGENTS + 1):
        blocking = traffic * blocking / (agents + traffic * blocking)
        if agents <= traffic:
            continue
        waits = agents * blocking / (agents - traffic * (1 - blocking))
        if 1.0 - waits * math.exp(-(agents - traffic) * answer_s / handle_s) >= target:
            return agents
    return MAX_AGENTS
