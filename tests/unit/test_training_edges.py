"""Edge cases of the training rules (services/training/domain.py) found in a bug hunt: each
test here failed before the fix it names, or pins an edge the main tests do not reach."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from services.training import domain as d

COURSE = d.Course(
    "pci-1",
    title="Card data handling",
    category=d.Category.COMPLIANCE,
    credit_minutes=60,
    validity_days=365,
    required_for_clients=("acme",),
)
SESSION = d.Session(
    "s1",
    course_id="pci-1",
    start=datetime(2026, 1, 5, 9, tzinfo=UTC),
    end=datetime(2026, 1, 5, 10, tzinfo=UTC),
    time_zone="Europe/London",
    trainer="Jo",
    capacity=10,
    version=1,
)


def passed(course: d.Course, session_id: str, when: datetime) -> d.CompletionRecord:
    return d.completion_record(
        course=course,
        session=replace(SESSION, session_id=session_id),
        completion=d.Completion(when, 60, 90, True),
        agent_zone="Europe/London",
    )


class TestCertifications:
    def test_a_pass_after_the_course_stopped_expiring_clears_the_old_expiry(self) -> None:
        # HR set validity to 0 (never expires) after the first pass: the agent who passes again
        # holds a pass that never expires, so nothing is due; the old expiry must not keep the
        # course EXPIRED for ever (no renewal could ever clear it).
        first = passed(COURSE, "s1", datetime(2026, 1, 5, 10, tzinfo=UTC))
        again = passed(replace(COURSE, validity_days=0), "s2", datetime(2027, 2, 1, tzinfo=UTC))
        learner = d.Learner("a", completions=(first, again))
        as_of = datetime(2027, 3, 1, tzinfo=UTC)
        assert d.due_items(learner, [COURSE], as_of=as_of, within_days=30) == []
        assert d.certifications(learner) == []

    def test_what_was_due_as_of_an_instant_ignores_completions_dated_later(self) -> None:
        # ListDue's as_of_time makes a due list reproducible: asked again after the agent
        # passed (and renewed), the list as of a day before each still shows what was due then.
        first = passed(COURSE, "s1", datetime(2026, 1, 5, 10, tzinfo=UTC))
        renewed = passed(COURSE, "s2", datetime(2027, 1, 2, tzinfo=UTC))
        learner = d.Learner("a", completions=(first, renewed))

        def due(as_of: datetime) -> list[tuple[str, d.DueReason]]:
            items = d.due_items(learner, [COURSE], as_of=as_of, within_days=30)
            return [(i.course_id, i.reason) for i in items]

        assert due(datetime(2026, 1, 4, tzinfo=UTC)) == [("pci-1", d.DueReason.REQUIRED)]
        assert due(datetime(2026, 12, 20, tzinfo=UTC)) == [("pci-1", d.DueReason.EXPIRING)]
        assert due(datetime(2027, 1, 3, tzinfo=UTC)) == []

    def test_validity_days_are_24_hour_days_from_the_completion_instant(self) -> None:
        # Pinned as docs/training.md states it: a pass on 29 February valid 365 days expires
        # on 28 February at the same UTC time; across a summer-time change the agent's wall
        # clock shows the expiry an hour later than the pass, never on a shifted instant.
        leap = passed(COURSE, "s1", datetime(2028, 2, 29, 17, tzinfo=UTC))
        assert leap.expire_time == datetime(2029, 2, 28, 17, tzinfo=UTC)
        london_winter = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)  # 23:30 GMT, BST from the 29th
        short = passed(replace(COURSE, validity_days=1), "s2", london_winter)
        assert short.expire_time == datetime(2026, 3, 29, 23, 30, tzinfo=UTC)
