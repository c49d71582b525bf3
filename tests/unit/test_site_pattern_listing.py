"""How a page of sites or patterns is put together from the view and this process's own commits
(roster_api._listed): the view's order, newer commits on top, nothing at or before the cursor."""

from __future__ import annotations

from services.scheduling.roster import Anchor, Pattern, Site
from services.scheduling.roster_api import _listed, _next_token
from wfm_runtime import pagination


def _site(site_id: str, version: int = 1) -> Site:
    return Site(site_id, site_id.title(), "UTC", (), version)


def _ids(sites: list[Site]) -> list[tuple[str, int]]:
    return [(s.site_id, s.version) for s in sites]


def test_commits_the_view_does_not_show_yet_take_their_place_in_name_order() -> None:
    viewed = [_site("austin"), _site("leeds"), _site("pune")]
    pending = [_site("cebu"), _site("leeds", 2), _site("zagreb")]
    page = _listed(pending, viewed, "", 4, key=lambda s: s.site_id)
    assert _ids(page) == [("austin", 1), ("cebu", 1), ("leeds", 2), ("pune", 1)]


def test_an_older_commit_never_hides_the_view_and_the_cursor_is_respected() -> None:
    viewed = [_site("leeds", 3), _site("pune")]
    pending = [_site("leeds", 2), _site("austin"), _site("cebu")]
    page = _listed(pending, viewed, "austin", 10, key=lambda s: s.site_id)
    assert _ids(page) == [("cebu", 1), ("leeds", 3), ("pune", 1)]


def test_the_filter_applies_to_the_state_that_wins() -> None:
    def pattern(pattern_id: str, anchor: Anchor, version: int = 1) -> Pattern:
        return Pattern(pattern_id, anchor=anchor, version=version)

    viewed = [pattern("a", Anchor.CLIENT), pattern("b", Anchor.CLIENT)]
    pending = [pattern("b", Anchor.AGENT, 2), pattern("c", Anchor.CLIENT)]
    page = _listed(
        pending,
        viewed,
        "",
        5,
        key=lambda p: p.pattern_id,
        keep=lambda p: p.anchor is Anchor.CLIENT,
    )
    assert [p.pattern_id for p in page] == ["a", "c"]


def test_a_token_is_issued_only_when_there_is_one_more_and_names_the_last_shown() -> None:
    three = [_site("austin"), _site("cebu"), _site("leeds")]
    assert _next_token(three, 3, "sites", lambda s: s.site_id) == ""
    token = _next_token(three, 2, "sites", lambda s: s.site_id)
    assert pagination.decode(token, "sites") == "cebu"
