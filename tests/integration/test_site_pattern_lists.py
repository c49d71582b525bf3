"""ListSites and ListShiftPatterns over gRPC against the real servers: name order across pages,
what this process just committed included at once (as Get reads it), the anchor filter, bad
page sizes, tokens and filters refused with the field named, and who may call them."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from wfm.scheduling.v1 import roster_service_pb2 as rpb
from wfm.scheduling.v1 import roster_service_pb2_grpc as rpb_grpc

from services.scheduling import roster_views
from services.scheduling.roster_store import PATTERN, SITE
from tests import roster_helpers as h
from tests.conftest import System
from wfm_runtime import pagination
from wfm_runtime.testing import channel, eventually

pytestmark = pytest.mark.integration

SITES = {  # created in this order, listed by name
    "pune": ("Pune", "Asia/Kolkata"),
    "leeds": ("Leeds", "Europe/London"),
    "manila": ("Manila", "Asia/Manila"),
    "austin": ("Austin", "America/Chicago"),
    "cebu": ("Cebu", "Asia/Manila"),
}
PATTERNS = {  # id: (start, anchor)
    "us-day": ("08:00", rpb.ANCHOR_CLIENT),
    "early": ("06:00", rpb.ANCHOR_AGENT),
    "uk-eve": ("16:00", rpb.ANCHOR_CLIENT),
    "late": ("14:00", rpb.ANCHOR_AGENT),
    "mid": ("11:00", rpb.ANCHOR_CLIENT),
}
ROLES = ("agent", "team_leader", "scheduler", "hr", "trainer", "admin")


async def _add_sites(roster: Any) -> None:
    for site_id, (name, zone) in SITES.items():
        await roster.CreateSite(
            rpb.CreateSiteRequest(
                site_id=site_id,
                site=rpb.Site(display_name=name, time_zone=zone),
                idempotency_key=f"site-{site_id}",
            )
        )


async def _add_patterns(roster: Any) -> None:
    for pattern_id, (start, anchor) in PATTERNS.items():
        await roster.CreateShiftPattern(
            rpb.CreateShiftPatternRequest(
                shift_pattern_id=pattern_id,
                shift_pattern=rpb.ShiftPattern(
                    display_name=pattern_id.upper(),
                    start_local_time=start,
                    length_minutes=8 * 60,
                    anchor=anchor,
                    activities=[h.BREAK],
                    iso_weekdays=[1, 2, 3, 4, 5],
                ),
                idempotency_key=f"pattern-{pattern_id}",
            )
        )


async def _pages(call: Any, request: Any, items: str) -> list[list[Any]]:
    """Every page of a List RPC, following next_page_token from `request` on."""
    pages = []
    while True:
        page = await call(request)
        pages.append(list(getattr(page, items)))
        if not page.next_page_token:
            return pages
        request.page_token = page.next_page_token


def _names(pages: list[list[Any]]) -> list[str]:
    return [item.name for page in pages for item in page]


def _bad_fields(details: list[Any]) -> set[str]:
    return {
        v.field
        for d in details
        if isinstance(d, error_details_pb2.BadRequest)
        for v in d.field_violations
    }


def _forget_commits(system: System, kind: str, ids: Any) -> None:
    """Drops what the service remembers of its own commits: reads then come from the view."""
    for aggregate_id in ids:
        system.scheduling.runtime.commands.forget(kind, aggregate_id)


async def test_sites_list_in_name_order_across_pages_from_the_first_moment(
    system: System,
) -> None:
    roster = h.roster_stub(system)
    await _add_sites(roster)
    # Right after the creates (the view may not have them yet), as GetSite would show them.
    pages = await _pages(roster.ListSites, rpb.ListSitesRequest(page_size=2), "sites")
    assert [len(p) for p in pages] == [2, 2, 1]
    assert _names(pages) == [f"sites/{s}" for s in sorted(SITES)]
    leeds = pages[1][0]
    assert (leeds.display_name, leeds.time_zone, leeds.version) == ("Leeds", "Europe/London", 1)

    await roster.SetPublicHolidays(
        rpb.SetPublicHolidaysRequest(
            site="sites/leeds",
            year=2027,
            public_holidays=[rpb.PublicHoliday(date="2027-12-27", display_name="Christmas")],
            idempotency_key="leeds-2027",
        )
    )
    everything = await roster.ListSites(rpb.ListSitesRequest())
    assert everything.next_page_token == ""  # default page size 50: one page
    changed = {s.name: s for s in everything.sites}["sites/leeds"]
    assert changed.version == 2
    assert [(d.date, d.display_name) for d in changed.public_holidays] == [
        ("2027-12-27", "Christmas")
    ]

    # Once projected, the view alone serves the same list.
    views = system.scheduling.roster_views
    await eventually(
        lambda: views.sites("", 10),
        lambda found: (
            [(s.site_id, s.version) for s in found]
            == [("austin", 1), ("cebu", 1), ("leeds", 2), ("manila", 1), ("pune", 1)]
        ),
    )
    _forget_commits(system, SITE, SITES)
    from_view = await _pages(roster.ListSites, rpb.ListSitesRequest(page_size=3), "sites")
    assert [len(p) for p in from_view] == [3, 2]
    assert [s for p in from_view for s in p] == list(everything.sites)
    # Anyone signed in may read them, as GetSite.
    agent = h.roster_stub(system, "p-1", "agent")
    assert _names([list((await agent.ListSites(rpb.ListSitesRequest())).sites)]) == _names(
        [list(everything.sites)]
    )


async def test_a_page_token_stays_valid_while_sites_are_added_before_it(
    system: System,
) -> None:
    roster = h.roster_stub(system)
    await _add_sites(roster)
    first = await roster.ListSites(rpb.ListSitesRequest(page_size=2))
    assert [s.name for s in first.sites] == ["sites/austin", "sites/cebu"]
    await roster.CreateSite(
        rpb.CreateSiteRequest(
            site_id="bogota",
            site=rpb.Site(display_name="Bogota", time_zone="America/Bogota"),
            idempotency_key="site-bogota",
        )
    )
    rest = await _pages(
        roster.ListSites,
        rpb.ListSitesRequest(page_size=2, page_token=first.next_page_token),
        "sites",
    )
    # The next page starts after the last name shown: nothing repeated, nothing skipped.
    assert _names(rest) == ["sites/leeds", "sites/manila", "sites/pune"]


async def test_shift_patterns_list_by_name_and_filter_by_clock(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    roster = h.roster_stub(system)
    await _add_patterns(roster)
    every = await _pages(
        roster.ListShiftPatterns, rpb.ListShiftPatternsRequest(page_size=2), "shift_patterns"
    )
    assert [len(p) for p in every] == [2, 2, 1]
    assert _names(every) == [f"shiftPatterns/{p}" for p in sorted(PATTERNS)]
    early = every[0][0]
    assert early == await roster.GetShiftPattern(
        rpb.GetShiftPatternRequest(name="shiftPatterns/early")
    )
    assert (early.start_local_time, early.length_minutes, early.anchor) == (
        "06:00",
        480,
        rpb.ANCHOR_AGENT,
    )
    assert list(early.iso_weekdays) == [1, 2, 3, 4, 5] and list(early.activities) == [h.BREAK]

    client_clock = rpb.ListShiftPatternsRequest(page_size=1, anchor=rpb.ANCHOR_CLIENT)
    on_client = await _pages(roster.ListShiftPatterns, client_clock, "shift_patterns")
    assert [len(p) for p in on_client] == [1, 1, 1]
    assert _names(on_client) == [
        "shiftPatterns/mid",
        "shiftPatterns/uk-eve",
        "shiftPatterns/us-day",
    ]
    on_agent = await roster.ListShiftPatterns(rpb.ListShiftPatternsRequest(anchor=rpb.ANCHOR_AGENT))
    assert [p.name for p in on_agent.shift_patterns] == [
        "shiftPatterns/early",
        "shiftPatterns/late",
    ]
    assert on_agent.next_page_token == ""

    # From the view alone, read two documents at a time: the filter carries on batch by batch.
    views = system.scheduling.roster_views
    await eventually(lambda: views.patterns("", 10), lambda found: len(found) == len(PATTERNS))
    _forget_commits(system, PATTERN, PATTERNS)
    monkeypatch.setattr(roster_views, "SCAN_BATCH", 2)
    from_view = await _pages(
        roster.ListShiftPatterns,
        rpb.ListShiftPatternsRequest(page_size=1, anchor=rpb.ANCHOR_CLIENT),
        "shift_patterns",
    )
    assert from_view == on_client
    assert _names(
        await _pages(
            roster.ListShiftPatterns, rpb.ListShiftPatternsRequest(page_size=4), "shift_patterns"
        )
    ) == _names(every)


async def test_bad_page_sizes_tokens_and_filters_are_refused_naming_the_field(
    system: System,
) -> None:
    roster = h.roster_stub(system)
    await _add_sites(roster)
    await _add_patterns(roster)
    site_token = (await roster.ListSites(rpb.ListSitesRequest(page_size=1))).next_page_token
    client_token = (
        await roster.ListShiftPatterns(
            rpb.ListShiftPatternsRequest(page_size=1, anchor=rpb.ANCHOR_CLIENT)
        )
    ).next_page_token
    assert site_token and client_token
    cases: list[tuple[str, Any, Any, str]] = [
        ("negative size", roster.ListSites, rpb.ListSitesRequest(page_size=-1), "page_size"),
        (
            "garbage token",
            roster.ListSites,
            rpb.ListSitesRequest(page_token="nope!!"),
            "page_token",
        ),
        (
            "a token of the teams list",
            roster.ListSites,
            rpb.ListSitesRequest(page_token=pagination.encode("night", "teams")),
            "page_token",
        ),
        (
            "a sites token for patterns",
            roster.ListShiftPatterns,
            rpb.ListShiftPatternsRequest(page_token=site_token),
            "page_token",
        ),
        (
            "a client-clock token for the agent clock",
            roster.ListShiftPatterns,
            rpb.ListShiftPatternsRequest(page_token=client_token, anchor=rpb.ANCHOR_AGENT),
            "page_token",
        ),
        (
            "a client-clock token without the filter",
            roster.ListShiftPatterns,
            rpb.ListShiftPatternsRequest(page_token=client_token),
            "page_token",
        ),
        (
            "negative pattern size",
            roster.ListShiftPatterns,
            rpb.ListShiftPatternsRequest(page_size=-3),
            "page_size",
        ),
        (
            "unknown anchor",
            roster.ListShiftPatterns,
            rpb.ListShiftPatternsRequest(anchor=9),  # type: ignore[arg-type]
            "anchor",
        ),
        (
            "a token too long",
            roster.ListShiftPatterns,
            rpb.ListShiftPatternsRequest(page_token="x" * 2000),
            "page_token",
        ),
    ]
    for what, call, request, field in cases:
        code, details, _ = await h.refusal(call(request))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, what
        assert _bad_fields(details) == {field}, what
    # The same token with the filter it was issued for goes on.
    following = await roster.ListShiftPatterns(
        rpb.ListShiftPatternsRequest(page_size=1, page_token=client_token, anchor=rpb.ANCHOR_CLIENT)
    )
    assert [p.name for p in following.shift_patterns] == ["shiftPatterns/uk-eve"]
    # A page size over the maximum is capped, not refused.
    capped = await roster.ListSites(rpb.ListSitesRequest(page_size=5000))
    assert len(capped.sites) == len(SITES) and capped.next_page_token == ""


async def test_every_role_may_list_as_it_may_get_and_no_role_may_not(system: System) -> None:
    await _add_sites(h.roster_stub(system))
    await _add_patterns(h.roster_stub(system))
    for role in ROLES:
        stub = h.roster_stub(system, f"{role}-1", role, teams=("t1",))
        sites = await stub.ListSites(rpb.ListSitesRequest())
        patterns = await stub.ListShiftPatterns(rpb.ListShiftPatternsRequest())
        assert len(sites.sites) == len(SITES), role
        assert len(patterns.shift_patterns) == len(PATTERNS), role

    address = f"127.0.0.1:{system.scheduling.port}"
    refusals = {
        "a token with no role": (system.minter.token("nobody"), grpc.StatusCode.PERMISSION_DENIED),
        "no token": ("", grpc.StatusCode.UNAUTHENTICATED),
        "an expired token": (
            system.minter.token("s-1", "scheduler", ttl_s=-120),
            grpc.StatusCode.UNAUTHENTICATED,
        ),
    }
    for what, (token, expected) in refusals.items():
        ch = channel(address, token)
        system.channels.append(ch)
        stub = rpb_grpc.RosterServiceStub(ch)
        for call, request in (
            (stub.ListSites, rpb.ListSitesRequest()),
            (stub.ListShiftPatterns, rpb.ListShiftPatternsRequest()),
            (stub.GetSite, rpb.GetSiteRequest(name="sites/pune")),
        ):
            code, _, _ = await h.refusal(call(request))
            assert code == expected, what
