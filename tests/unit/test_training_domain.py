"""Training rules (services/training/domain.py): state machine, waitlist, prerequisites,
recertification windows and the transcript."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.training import domain as d
from services.training.domain import E
from wfm_runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Violations,
)

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
COURSE = d.Course(
    "net-101",
    title="Fibre basics",
    category=d.Category.CLIENT_SPECIFIC,
    client="acme",
    credit_minutes=240,
    technical=True,
    competency="fibre",
    level=d.Level.FOUNDATION,
    validity_days=365,
)
SESSION = d.Session(
    "s1",
    course_id="net-101",
    start=datetime(2026, 3, 10, 4, 0, tzinfo=UTC),
    end=datetime(2026, 3, 10, 8, 0, tzinfo=UTC),
    time_zone="Asia/Kolkata",
    trainer="Ravi",
    capacity=2,
    version=1,
)
CHECK_IN = datetime(2026, 3, 10, 3, 55, tzinfo=UTC)  # the trainer checks the class in


def kinds(err: FailedPrecondition) -> list[str]:
    return [v.type for v in err.violations]


def enroll(session: d.Session, *agents: str, refuse: bool = False) -> d.Session:
    return d.decide_enroll(session, list(agents), refuse_if_full=refuse, now=NOW)[0]


def states(session: d.Session) -> dict[str, E]:
    return {e.agent_id: e.state for e in session.roster}


class TestValidation:
    def test_valid_course_and_session(self) -> None:
        v = Violations()
        d.validate_course(COURSE, v)
        d.validate_session(SESSION, v)
        assert v.items == []

    def test_every_bad_course_field_is_reported(self) -> None:
        v = Violations()
        bad = replace(
            COURSE,
            title="",
            client="",
            credit_minutes=0,
            level=None,
            validity_days=-1,
            prerequisite_courses=("net-101", "bad id"),
        )
        d.validate_course(bad, v)
        assert {i.field for i in v.items} == {
            "course.title",
            "course.client",
            "course.credit_minutes",
            "course.competency_level",
            "course.validity_days",
            "course.prerequisite_courses[0]",
            "course.prerequisite_courses[1]",
        }

    def test_session_must_end_after_it_starts_and_have_seats(self) -> None:
        v = Violations()
        assert SESSION.start is not None
        d.validate_session(replace(SESSION, end=SESSION.start, capacity=0, time_zone="X/Y"), v)
        assert {i.field for i in v.items} == {
            "session.end_time",
            "session.capacity",
            "session.time_zone",
        }

    def test_course_created_once(self) -> None:
        created = d.decide_create_course(d.Course("net-101"), COURSE, NOW)
        assert created.version == 1
        with pytest.raises(AlreadyExists):
            d.decide_create_course(created, COURSE, NOW)


class TestSeatsAndWaitlist:
    def test_seats_fill_then_waitlist_in_arrival_order(self) -> None:
        session, enrolled, waitlisted = d.decide_enroll(
            SESSION, ["a", "b", "c", "e"], refuse_if_full=False, now=NOW
        )
        assert (enrolled, waitlisted) == (["a", "b"], ["c", "e"])
        assert [e.agent_id for e in session.waitlist] == ["c", "e"]
        assert session.waitlist_position("e") == 2
        assert session.seats_taken == 2

    def test_refuse_if_full_breaks_the_rule_instead_of_waitlisting(self) -> None:
        session = enroll(SESSION, "a", "b")
        with pytest.raises(FailedPrecondition) as err:
            d.decide_enroll(session, ["c"], refuse_if_full=True, now=NOW)
        assert kinds(err.value) == ["SESSION_FULL"]

    def test_withdrawal_promotes_the_first_waitlisted(self) -> None:
        session = enroll(SESSION, "a", "b", "c", "e")
        session, promoted = d.decide_transition(session, "b", E.WITHDRAWN, NOW)
        assert promoted == ["c"]
        assert states(session) == {
            "a": E.ENROLLED,
            "b": E.WITHDRAWN,
            "c": E.ENROLLED,
            "e": E.WAITLISTED,
        }
        assert session.waitlist_position("e") == 1

    def test_waitlisted_withdrawal_promotes_nobody(self) -> None:
        session = enroll(SESSION, "a", "b", "c")
        session, promoted = d.decide_transition(session, "c", E.WITHDRAWN, NOW)
        assert promoted == [] and session.seats_taken == 2

    def test_enrolling_again_keeps_the_place(self) -> None:
        session = enroll(SESSION, "a", "b", "c")
        again, enrolled, waitlisted = d.decide_enroll(session, ["c"], refuse_if_full=False, now=NOW)
        assert again == session and enrolled == waitlisted == []

    def test_withdrawn_cannot_re_enroll_in_the_same_session(self) -> None:
        session, _ = d.decide_transition(enroll(SESSION, "a"), "a", E.WITHDRAWN, NOW)
        with pytest.raises(FailedPrecondition) as err:
            enroll(session, "a")
        assert kinds(err.value) == ["ALREADY_LEFT"]

    def test_check_in_closes_the_waitlist_and_releases_only_those_waiting(self) -> None:
        # Capacity 2: a, b seated, c leaves the waitlist herself, d and e still wait.
        full = enroll(SESSION, "a", "b", "c", "d", "e")
        session, _ = d.decide_transition(full, "c", E.WITHDRAWN, NOW)
        started = d.decide_start_session(session, CHECK_IN)
        states = {e.agent_id: (e.state, e.withdraw_reason) for e in started.roster}
        assert states == {
            "a": (E.IN_PROGRESS, ""),
            "b": (E.IN_PROGRESS, ""),
            "c": (E.WITHDRAWN, ""),
            "d": (E.WITHDRAWN, d.WAITLIST_CLOSED),
            "e": (E.WITHDRAWN, d.WAITLIST_CLOSED),
        }
        assert d.released_at_check_in(started) == ["d", "e"]
        assert started.seats_taken == 2 and not started.waitlist

    def test_no_enrollment_once_started(self) -> None:
        started = d.decide_start_session(enroll(SESSION, "a"), CHECK_IN)
        with pytest.raises(FailedPrecondition) as err:
            enroll(started, "b")
        assert kinds(err.value) == ["SESSION_STARTED"]

    @given(st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=20), st.integers(1, 5))
    def test_never_more_seats_than_capacity(self, arrivals: list[str], capacity: int) -> None:
        session = replace(SESSION, capacity=capacity)
        for agent in arrivals:
            entry = session.enrollment(agent)
            if entry is None:
                session = enroll(session, agent)
            elif entry.state in d.ACTIVE:
                session, _ = d.decide_transition(session, agent, E.WITHDRAWN, NOW)
            assert session.seats_taken <= capacity
            # nobody waits while a seat is free
            assert not session.waitlist or session.seats_taken == capacity


class TestStateMachine:
    def test_full_path_enrolled_in_progress_completed(self) -> None:
        session = d.decide_start_session(enroll(SESSION, "a", "b"), CHECK_IN)
        assert states(session) == {"a": E.IN_PROGRESS, "b": E.IN_PROGRESS}
        done = d.Completion(NOW, 240, 90, True)
        session, _ = d.decide_transition(session, "a", E.COMPLETED, NOW, done)
        session, _ = d.decide_transition(
            session, "b", E.FAILED, NOW, d.Completion(NOW, 200, 30, False)
        )
        assert states(session) == {"a": E.COMPLETED, "b": E.FAILED}

    def test_results_all_or_nothing_listing_every_broken_rule(self) -> None:
        session = d.decide_start_session(enroll(SESSION, "a", "b"), CHECK_IN)
        ok = d.decide_results(
            session,
            [("a", d.Completion(NOW, 240, 90, True)), ("b", d.Completion(NOW, 240, 10, False))],
            NOW,
        )
        assert states(ok) == {"a": E.COMPLETED, "b": E.FAILED}
        with pytest.raises(FailedPrecondition) as err:
            d.decide_results(
                ok,
                [("a", d.Completion(NOW, 1, 1, True)), ("zz", d.Completion(NOW, 1, 1, True))],
                NOW,
            )
        assert kinds(err.value) == ["TRANSITION", "ENROLLED"]

    @pytest.mark.parametrize(
        ("start", "target"),
        [
            (E.WAITLISTED, E.COMPLETED),
            (E.ENROLLED, E.COMPLETED),
            (E.COMPLETED, E.WITHDRAWN),
            (E.WITHDRAWN, E.ENROLLED),
            (E.NO_SHOW, E.IN_PROGRESS),
            (E.FAILED, E.COMPLETED),
        ],
    )
    def test_disallowed_moves_are_refused(self, start: E, target: E) -> None:
        entry = d.Enrollment("a", start, 1, NOW, NOW)
        session = replace(SESSION, roster=(entry,), state=d.SessionState.STARTED)
        with pytest.raises(FailedPrecondition) as err:
            d.decide_transition(session, "a", target, NOW)
        assert kinds(err.value) == ["TRANSITION"]

    def test_no_show_is_marked_after_check_in(self) -> None:
        with pytest.raises(FailedPrecondition) as err:  # before the start: nobody is late yet
            d.decide_transition(enroll(SESSION, "a"), "a", E.NO_SHOW, NOW)
        assert kinds(err.value) == ["SESSION_NOT_STARTED"]
        session = d.decide_start_session(enroll(SESSION, "a", "b"), CHECK_IN)
        session, promoted = d.decide_transition(session, "b", E.NO_SHOW, NOW)
        assert states(session) == {"a": E.IN_PROGRESS, "b": E.NO_SHOW} and not promoted
        assert session.seats_taken == 2  # the seat was held: nobody else could have had it
        with pytest.raises(FailedPrecondition) as err:
            d.decide_transition(session, "b", E.COMPLETED, NOW, d.Completion(NOW, 1, 90, True))
        assert kinds(err.value) == ["TRANSITION"]

    def test_unknown_agent(self) -> None:
        with pytest.raises(FailedPrecondition) as err:
            d.decide_transition(SESSION, "zz", E.WITHDRAWN, NOW)
        assert kinds(err.value) == ["ENROLLED"]


def record(
    course: d.Course, session: d.Session, when: datetime, passed: bool = True
) -> d.CompletionRecord:
    return d.completion_record(
        course=course,
        session=session,
        completion=d.Completion(when, 240, 80 if passed else 20, passed),
        agent_zone="Asia/Kolkata",
    )


CTX = d.EnrollmentContext("acme", COURSE, SESSION)


class TestLearnerRules:
    def test_prerequisite_courses_and_levels(self) -> None:
        course = replace(
            COURSE,
            course_id="net-201",
            prerequisite_courses=("net-101",),
            prerequisite_competencies=(d.CompetencyRequirement("fibre", d.Level.COMPETENT),),
        )
        ctx = d.EnrollmentContext("acme", course, replace(SESSION, course_id="net-201"))
        with pytest.raises(FailedPrecondition) as err:
            d.decide_book(d.Learner("a"), ctx, now=NOW)
        assert kinds(err.value) == ["PREREQUISITE", "PREREQUISITE"]
        foundation = d.Learner("a", completions=(record(COURSE, SESSION, NOW),))
        with pytest.raises(FailedPrecondition) as err:
            d.decide_book(foundation, ctx, now=NOW)
        assert kinds(err.value) == ["PREREQUISITE"]  # passed the course, level too low
        competent_course = replace(COURSE, course_id="net-150", level=d.Level.COMPETENT)
        competent = replace(
            foundation,
            completions=(*foundation.completions, record(competent_course, SESSION, NOW)),
        )
        assert d.decide_book(competent, ctx, now=NOW) is not None

    def test_failed_completion_is_not_a_prerequisite(self) -> None:
        course = replace(COURSE, course_id="net-201", prerequisite_courses=("net-101",))
        ctx = d.EnrollmentContext("acme", course, SESSION)
        failed = d.Learner("a", completions=(record(COURSE, SESSION, NOW, passed=False),))
        with pytest.raises(FailedPrecondition):
            d.decide_book(failed, ctx, now=NOW)

    def test_client_specific_course_needs_the_client(self) -> None:
        with pytest.raises(FailedPrecondition) as err:
            d.decide_book(d.Learner("a"), replace(CTX, agent_client="globex"), now=NOW)
        assert kinds(err.value) == ["CLIENT"]

    def test_no_double_enrollment_and_no_overlap(self) -> None:
        booked = d.decide_book(d.Learner("a"), CTX, now=NOW)
        assert booked is not None
        assert d.decide_book(booked, CTX, now=NOW) is None  # same session: a retry, nothing to do
        same_course = replace(SESSION, session_id="s2", start=NOW, end=NOW + timedelta(hours=1))
        with pytest.raises(FailedPrecondition) as err:
            d.decide_book(booked, replace(CTX, session=same_course), now=NOW)
        assert kinds(err.value) == ["DOUBLE_ENROLLMENT"]
        other = replace(COURSE, course_id="soft-1", category=d.Category.SOFT_SKILLS)
        assert SESSION.start is not None
        overlapping = replace(
            SESSION,
            session_id="s3",
            course_id="soft-1",
            start=SESSION.start + timedelta(hours=3),
            end=SESSION.start + timedelta(hours=5),
        )
        with pytest.raises(FailedPrecondition) as err:
            d.decide_book(booked, d.EnrollmentContext("acme", other, overlapping), now=NOW)
        assert kinds(err.value) == ["OVERLAP"]
        assert SESSION.end is not None
        back_to_back = replace(overlapping, start=SESSION.end, end=SESSION.end + timedelta(hours=1))
        assert (
            d.decide_book(booked, d.EnrollmentContext("acme", other, back_to_back), now=NOW)
            is not None
        )
        self_paced = replace(overlapping, delivery=d.Delivery.SELF_PACED)
        assert (
            d.decide_book(booked, d.EnrollmentContext("acme", other, self_paced), now=NOW)
            is not None
        )

    def test_an_undo_releases_only_its_own_requests_booking(self) -> None:
        booked = d.decide_book(d.Learner("a"), CTX, "k1", now=NOW)
        assert booked is not None and booked.bookings[0].enrollment_key == "k1"
        assert d.decide_release(booked, "s1", made_by="k2") is None
        released = d.decide_release(booked, "s1", made_by="k1")
        assert released is not None and released.bookings == ()

    def test_another_requests_booking_of_the_session_is_taken_over_with_its_time_kept(
        self,
    ) -> None:
        booked = d.decide_book(d.Learner("a"), CTX, "k1", now=NOW)
        assert booked is not None
        later = NOW + timedelta(hours=1)
        taken = d.decide_book(booked, CTX, "k2", now=later)
        assert taken is not None and len(taken.bookings) == 1
        held = taken.bookings[0]
        assert (held.enrollment_key, held.booked_time, held.key_time) == ("k2", NOW, later)
        assert held.keyed_since == later and booked.bookings[0].keyed_since == NOW
        assert d.decide_book(taken, CTX, "k2", now=later) is None  # its own retry: nothing
        assert d.decide_release(taken, "s1", made_by="k1") is None  # k1's undo: not its own

    def test_a_booking_used_again_follows_the_session_it_moved_with(self) -> None:
        # The session moved while the agent was booked but not on its roster (an enrollment
        # cut off between its steps): a retry or another request using the booking moves it
        # to the session's time, and the clash rules are checked there.
        booked = d.decide_book(d.Learner("a"), CTX, "k1", now=NOW)
        assert booked is not None and SESSION.start is not None and SESSION.end is not None
        day = timedelta(days=1)
        moved = replace(SESSION, start=SESSION.start + day, end=SESSION.end + day)
        retried = d.decide_book(booked, replace(CTX, session=moved), "k1", now=NOW)
        assert retried is not None
        held = retried.bookings[0]
        assert (held.start, held.end, held.enrollment_key) == (moved.start, moved.end, "k1")
        other = replace(COURSE, course_id="soft-1", category=d.Category.SOFT_SKILLS)
        meanwhile = replace(moved, session_id="s9", course_id="soft-1")
        busy = d.decide_book(booked, d.EnrollmentContext("acme", other, meanwhile), now=NOW)
        assert busy is not None
        with pytest.raises(FailedPrecondition) as err:
            d.decide_book(busy, replace(CTX, session=moved), "k2", now=NOW)
        assert kinds(err.value) == ["OVERLAP"]

    def test_a_refused_requests_takeover_is_handed_back_as_it_was(self) -> None:
        booked = d.decide_book(d.Learner("a"), CTX, "k1", now=NOW)
        assert booked is not None
        since = NOW + timedelta(hours=1)
        taken = d.decide_book(booked, CTX, "k2", now=since)
        assert taken is not None
        held = booked.bookings[0]
        back = d.decide_hand_back(taken, held, "k2", since)
        assert back is not None and back.bookings == booked.bookings
        assert d.decide_hand_back(back, held, "k2", since) is None  # done: nothing
        again = d.decide_book(taken, CTX, "k3", now=NOW + timedelta(hours=2))
        assert again is not None and d.decide_hand_back(again, held, "k2", since) is None
        released = d.decide_release(taken, "s1")
        assert released is not None and d.decide_hand_back(released, held, "k2", since) is None
        # Released, then booked anew by another attempt of k2: that attempt's booking stays.
        anew = d.decide_book(released, CTX, "k2", now=NOW + timedelta(hours=3))
        assert anew is not None and d.decide_hand_back(anew, held, "k2", since) is None

    def test_a_retry_takes_its_requests_booking_over_and_an_undo_frees_only_its_own(
        self,
    ) -> None:
        first = d.decide_book(d.Learner("a"), CTX, "k1", now=NOW)
        assert first is not None and first.bookings[0].keyed_since == NOW
        later = NOW + timedelta(minutes=1)
        retried = d.decide_book(first, CTX, "k1", now=later)  # another attempt of k1
        assert retried is not None
        taken = retried.bookings[0]
        assert (taken.enrollment_key, taken.booked_time, taken.key_time) == ("k1", NOW, later)
        assert d.decide_book(retried, CTX, "k1", now=later) is None  # the same attempt: nothing
        # The first attempt's undo leaves the retry's booking alone; the retry's frees it.
        assert d.decide_undo(retried, "s1", "k1", NOW) is None
        assert d.decide_undo(retried, "s1", "k2", later) is None
        freed = d.decide_undo(retried, "s1", "k1", later)
        assert freed is not None and freed.bookings == ()
        assert d.decide_undo(freed, "s1", "k1", later) is None
        undone = d.decide_undo(first, "s1", "k1", NOW)
        assert undone is not None and undone.bookings == ()
        # A retry of a request that seated the agent changes nothing: the session holds them,
        # and no undo releases a booking whose session holds the agent.
        seated = replace(CTX, session=enroll(SESSION, "a"))
        assert d.decide_book(first, seated, "k1", now=later) is None

    def test_release_and_complete_free_the_booking(self) -> None:
        booked = d.decide_book(d.Learner("a"), CTX, now=NOW)
        assert booked is not None
        released = d.decide_release(booked, "s1")
        assert released is not None and released.bookings == ()
        assert d.decide_release(released, "s1") is None
        done = d.decide_complete(booked, record(COURSE, SESSION, NOW))
        assert done is not None and done.bookings == () and len(done.completions) == 1
        assert d.decide_complete(done, record(COURSE, SESSION, NOW)) is None


class TestRecertification:
    def test_expiry_window_then_renewal_keeps_history(self) -> None:
        first = record(COURSE, SESSION, NOW)
        learner = d.Learner("a", completions=(first,))
        expires = NOW + timedelta(days=365)
        assert (
            d.due_items(learner, [COURSE], as_of=expires - timedelta(days=31), within_days=30) == []
        )
        due = d.due_items(learner, [COURSE], as_of=expires - timedelta(days=30), within_days=30)
        assert [(i.reason, i.due) for i in due] == [(d.DueReason.EXPIRING, expires)]
        late = d.due_items(learner, [], as_of=expires, within_days=0)
        assert [i.reason for i in late] == [d.DueReason.EXPIRED]
        renewed_at = expires - timedelta(days=10)
        again = record(COURSE, replace(SESSION, session_id="s9"), renewed_at)
        renewed = replace(learner, completions=(first, again))
        assert d.due_items(renewed, [COURSE], as_of=expires, within_days=30) == []
        (cert,) = d.certifications(renewed)
        assert cert.expires == renewed_at + timedelta(days=365)
        assert [c.session_id for c in cert.history] == ["s1", "s9"]

    def test_required_course_never_taken_is_due(self) -> None:
        due = d.due_items(d.Learner("a"), [COURSE], as_of=NOW, within_days=30)
        assert [(i.course_id, i.reason, i.due) for i in due] == [
            ("net-101", d.DueReason.REQUIRED, None)
        ]

    def test_a_due_course_names_the_session_booked_on_it(self) -> None:
        booked = d.Booking("s7", COURSE.course_id, NOW, NOW + timedelta(hours=2))
        other = d.Booking("s8", "other-course", NOW, NOW + timedelta(hours=2))
        learner = d.Learner("a", bookings=(other, booked))
        due = d.due_items(learner, [COURSE], as_of=NOW, within_days=30)
        assert [(i.course_id, i.booked_session) for i in due] == [("net-101", "s7")]
        unbooked = d.due_items(
            d.Learner("a", bookings=(other,)), [COURSE], as_of=NOW, within_days=30
        )
        assert [i.booked_session for i in unbooked] == [""]

    def test_a_due_list_as_of_a_past_instant_names_only_sessions_booked_by_then(self) -> None:
        learner = d.decide_book(d.Learner("a"), CTX, now=NOW)
        assert learner is not None and learner.bookings[0].booked_time == NOW

        def booked_as_of(instant: datetime, who: d.Learner = learner) -> list[str]:
            return [
                i.booked_session for i in d.due_items(who, [COURSE], as_of=instant, within_days=30)
            ]

        assert booked_as_of(NOW - timedelta(milliseconds=1)) == [""]
        assert booked_as_of(NOW) == ["s1"]  # booked at that very instant
        # A booking recorded before its instant was kept counts as known all along.
        unknown = replace(learner.bookings[0], booked_time=None)
        assert booked_as_of(NOW - timedelta(days=900), d.Learner("a", (unknown,))) == ["s1"]

    def test_failed_attempt_grants_nothing(self) -> None:
        learner = d.Learner("a", completions=(record(COURSE, SESSION, NOW, passed=False),))
        assert d.certifications(learner) == []
        assert d.competency_levels(learner) == {}


class TestTranscript:
    def test_hours_per_month_by_the_agents_local_date(self) -> None:
        # 2026-03-31 20:00 UTC is already 1 April in Kolkata (UTC+05:30): an April session.
        late = replace(SESSION, session_id="s2", start=datetime(2026, 3, 31, 20, 0, tzinfo=UTC))
        plain = replace(COURSE, course_id="soft-1", technical=False, level=d.Level.COMPETENT)
        learner = d.Learner(
            "a",
            completions=(
                record(COURSE, SESSION, NOW),
                record(plain, late, NOW, passed=False),
            ),
        )
        t = d.transcript(
            learner,
            agent_zone="Asia/Kolkata",
            start=None,
            end=None,
            required=[],
            as_of=NOW,
            within_days=30,
        )
        assert [(p.period, p.training_minutes, p.technical_minutes) for p in t.periods] == [
            ("2026-03", 240, 240),
            ("2026-04", 240, 0),
        ]
        assert t.totals.technical_completed == 1 and t.totals.completed == 1
        assert [(h.competency, h.level) for h in t.levels] == [("fibre", d.Level.FOUNDATION)]
        utc = d.transcript(
            learner, agent_zone="UTC", start=None, end=None, required=[], as_of=NOW, within_days=30
        )
        assert [p.period for p in utc.periods] == ["2026-03"]

    def test_highest_level_wins_with_its_evidence(self) -> None:
        expert = replace(COURSE, course_id="net-301", level=d.Level.EXPERT)
        learner = d.Learner(
            "a",
            completions=(
                record(expert, replace(SESSION, session_id="s3"), NOW),
                record(COURSE, SESSION, NOW + timedelta(days=1)),
            ),
        )
        (held,) = d.competency_levels(learner).values()
        assert (held.level, held.evidence_course, held.evidence_session) == (
            d.Level.EXPERT,
            "net-301",
            "s3",
        )

    def test_period_filters_by_session_start(self) -> None:
        learner = d.Learner("a", completions=(record(COURSE, SESSION, NOW),))
        assert SESSION.start is not None
        after = d.transcript(
            learner,
            agent_zone="Asia/Kolkata",
            start=SESSION.start + timedelta(seconds=1),
            end=None,
            required=[],
            as_of=NOW,
            within_days=0,
        )
        assert after.completions == [] and after.totals.training_minutes == 0

    def test_team_summary_pass_rate(self) -> None:
        learners = [
            d.Learner("a", completions=(record(COURSE, SESSION, NOW),)),
            d.Learner("b", completions=(record(COURSE, SESSION, NOW, passed=False),)),
            d.Learner("c"),
        ]
        s = d.team_summary("night", learners, None, None)
        assert (s.agents, s.completions, s.passed, s.failed, s.pass_rate) == (3, 2, 1, 1, 0.5)
        assert (s.training_minutes, s.technical_minutes, s.technical_completions) == (480, 480, 1)


ZONES = [
    "Asia/Kolkata",
    "America/New_York",
    "Europe/London",
    "America/St_Johns",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "UTC",
]
INSTANTS = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)


class TestTranscriptProperties:
    @given(st.lists(INSTANTS, min_size=1, max_size=12), st.sampled_from(ZONES))
    def test_every_completion_counts_once_in_its_local_month(
        self, starts: list[datetime], zone: str
    ) -> None:
        # Month ends, midnights and DST changes included: the month is the one on the
        # agent's wall clock when the session starts.
        learner = d.Learner(
            "a",
            completions=tuple(
                record(COURSE, replace(SESSION, session_id=f"s{i}", start=start), start)
                for i, start in enumerate(starts)
            ),
        )
        t = d.transcript(
            learner, agent_zone=zone, start=None, end=None, required=[], as_of=NOW, within_days=0
        )
        expected: dict[str, int] = {}
        for start in starts:
            month = start.astimezone(ZoneInfo(zone)).strftime("%Y-%m")
            expected[month] = expected.get(month, 0) + 240
        assert {p.period: p.training_minutes for p in t.periods} == expected
        assert sum(p.training_minutes for p in t.periods) == t.totals.training_minutes

    @given(INSTANTS, st.integers(-3, 3))
    def test_periods_are_half_open(self, start: datetime, shift_s: int) -> None:
        rec = record(COURSE, replace(SESSION, start=start), start)
        edge = start + timedelta(seconds=shift_s)
        assert d.in_period(rec, edge, None) == (start >= edge)
        assert d.in_period(rec, None, edge) == (start < edge)


class TestManagingWhatExists:
    def test_course_update_takes_only_the_masked_fields(self) -> None:
        current = replace(COURSE, version=1)
        requested = d.Course("net-101", title="Fibre essentials", credit_minutes=1)
        decided = d.decide_update_course(current, requested, ["title"])
        assert decided is not None
        updated, changed = decided
        assert (updated.title, updated.credit_minutes, changed) == (
            "Fibre essentials",
            240,
            ["title"],
        )
        assert d.decide_update_course(updated, requested, ["title"]) is None  # nothing changes
        with pytest.raises(InvalidArgument):  # the result must be a valid course
            d.decide_update_course(current, replace(requested, client=""), ["client"])
        with pytest.raises(NotFound):
            d.decide_update_course(d.Course("nope"), requested, ["title"])

    def test_growing_capacity_promotes_the_waitlist_in_order(self) -> None:
        full = enroll(SESSION, "a", "b", "c", "d", "e")
        decided = d.decide_update_session(full, replace(full, capacity=4), ["capacity"], NOW)
        assert decided is not None
        grown, changed, promoted = decided
        assert (changed, promoted) == (["capacity"], ["c", "d"])
        assert list(states(grown).values()) == [E.ENROLLED] * 4 + [E.WAITLISTED]

    def test_shrinking_below_the_seats_taken_is_refused(self) -> None:
        full = enroll(SESSION, "a", "b", "c")
        with pytest.raises(FailedPrecondition) as err:
            d.decide_update_session(full, replace(full, capacity=1), ["capacity"], NOW)
        assert kinds(err.value) == ["CAPACITY"]
        one = enroll(SESSION, "a")
        decided = d.decide_update_session(one, replace(one, capacity=1), ["capacity"], NOW)
        assert decided is not None and decided[0].capacity == 1

    def test_cancel_withdraws_everyone_still_on_it_and_closes_it(self) -> None:
        session = enroll(replace(SESSION, capacity=1), "a", "b")
        cancelled, withdrawn = d.decide_cancel_session(session, "room flooded", NOW)
        assert withdrawn == ["a", "b"] and cancelled.state is d.SessionState.CANCELLED
        assert {e.withdraw_reason for e in cancelled.roster} == {"room flooded"}
        for attempt in (
            lambda: d.decide_cancel_session(cancelled, "again", NOW),
            lambda: enroll(cancelled, "c"),
            lambda: d.decide_start_session(cancelled, CHECK_IN),
        ):
            with pytest.raises(FailedPrecondition) as err:
                attempt()
            assert kinds(err.value) == ["SESSION_CANCELLED"]

    def test_a_moved_booking_follows_and_clashes_are_listed(self) -> None:
        learner = d.decide_book(d.Learner("a"), CTX, "k", now=NOW)
        assert learner is not None and SESSION.start is not None
        other = replace(SESSION, session_id="s9", course_id="soft-1")
        later = SESSION.start + timedelta(days=1)
        learner = d.decide_book(
            learner,
            d.EnrollmentContext(
                "acme",
                replace(COURSE, course_id="soft-1"),
                replace(other, start=later, end=later + timedelta(hours=2)),
            ),
            now=NOW,
        )
        assert learner is not None
        moved = replace(SESSION, start=later, end=later + timedelta(hours=1), version=2)
        assert kinds(FailedPrecondition(d.move_clashes(learner, moved))) == ["OVERLAP"]
        after = d.decide_move_booking(learner, moved)
        assert after is not None
        booking = after.booking("s1")
        assert booking is not None and (booking.start, booking.enrollment_key) == (later, "k")
        assert booking.session_version == 2
        assert d.decide_move_booking(after, moved) is None

    def test_a_booking_never_goes_back_to_an_older_time_of_its_session(self) -> None:
        """Two moves' learner steps landing in the wrong order, or an enrollment deciding on a
        copy of the session older than the booking's, leave the booking at the later time."""
        assert SESSION.start is not None
        booked = d.decide_book(d.Learner("a"), CTX, "k", now=NOW)
        assert booked is not None
        first = replace(SESSION, start=SESSION.start + timedelta(hours=5), version=2)
        second = replace(SESSION, start=SESSION.start + timedelta(hours=9), version=3)
        learner = d.decide_move_booking(booked, second)
        assert learner is not None
        assert d.decide_move_booking(learner, first) is None  # the earlier move's late step

        stale = d.decide_book(learner, CTX, "other", now=NOW)  # decided on version 1
        assert stale is not None
        booking = stale.booking("s1")
        assert booking is not None
        assert (booking.start, booking.session_version) == (second.start, 3)
        assert booking.enrollment_key == "other"  # taken over; the session step refuses it

    def test_a_moves_hold_takes_the_new_time_before_the_session_moves(self) -> None:
        """The hold is the new time on the learner's booking: another class then is refused
        OVERLAP (naming the move), a second hold of the request changes nothing, and a hold
        where another booking (or its own hold) is refuses the move."""
        learner, moved, other_ctx = self._booked_and_moving()
        held = d.decide_hold_move(learner, moved, "mv", now=NOW)
        assert held is not None
        booking = held.booking("s1")
        assert booking is not None and booking.start == SESSION.start  # not moved yet
        assert [(h.update_key, h.start) for h in booking.move_holds] == [("mv", moved.start)]
        assert d.decide_hold_move(held, moved, "mv", now=NOW) is None
        with pytest.raises(FailedPrecondition) as err:
            d.decide_book(held, other_ctx, "k2", now=NOW)
        assert kinds(err.value) == ["OVERLAP"]
        assert "being moved to" in err.value.violations[0].description

        booked_there = d.decide_book(learner, other_ctx, "k2", now=NOW)
        assert booked_there is not None
        with pytest.raises(FailedPrecondition) as err:
            d.decide_hold_move(booked_there, moved, "mv", now=NOW)
        assert kinds(err.value) == ["OVERLAP"]

        other_moving = replace(other_ctx.session, start=moved.start, end=moved.end, version=2)
        clash = FailedPrecondition(d.move_clashes(held, other_moving))
        assert kinds(clash) == ["OVERLAP"]  # another session's move onto the held time

    def test_a_hold_at_the_bookings_own_time_is_not_needed(self) -> None:
        learner, _, _ = self._booked_and_moving()
        assert d.decide_hold_move(learner, replace(SESSION, version=2), "mv", now=NOW) is None
        assert d.decide_hold_move(d.Learner("z"), SESSION, "mv", now=NOW) is None  # no booking

    def test_the_move_step_lets_go_of_its_hold_even_on_a_later_time_already(self) -> None:
        learner, moved, _ = self._booked_and_moving()
        held = d.decide_hold_move(learner, moved, "mv", now=NOW)
        assert held is not None
        other_hold = d.decide_hold_move(held, replace(moved, start=moved.end), "other", now=NOW)
        assert other_hold is not None
        after = d.decide_move_booking(other_hold, moved, "mv")
        assert after is not None
        booking = after.booking("s1")
        assert booking is not None and booking.start == moved.start
        assert [h.update_key for h in booking.move_holds] == ["other"]  # another move's stays
        hours = timedelta(hours=2)
        assert moved.start is not None and moved.end is not None
        elsewhere = replace(moved, start=moved.start + hours, end=moved.end + hours, version=5)
        later = d.decide_move_booking(after, elsewhere)  # another move since
        assert later is not None
        replayed = d.decide_hold_move(later, moved, "mv", now=NOW)  # a retry's round of holds
        assert replayed is not None
        settled = d.decide_move_booking(replayed, moved, "mv")  # decided on version 3 < 5
        assert settled is not None and settled.booking("s1") == later.booking("s1")

    def test_dropping_holds_lets_the_time_go_and_can_follow_the_moved_session(self) -> None:
        learner, moved, other_ctx = self._booked_and_moving()
        held = d.decide_hold_move(learner, moved, "mv", now=NOW)
        assert held is not None
        dropped = d.decide_drop_holds(held, "s1", {"mv"})
        assert dropped is not None and dropped.booking("s1") == learner.booking("s1")
        assert d.decide_book(dropped, other_ctx, "k2", now=NOW) is not None  # the time is free
        assert d.decide_drop_holds(dropped, "s1", {"mv"}) is None
        followed = d.decide_drop_holds(held, "s1", {"mv"}, follow=moved)
        assert followed is not None
        booking = followed.booking("s1")
        assert booking is not None and booking.move_holds == ()
        assert (booking.start, booking.session_version) == (moved.start, moved.version)

    @staticmethod
    def _booked_and_moving() -> tuple[d.Learner, d.Session, d.EnrollmentContext]:
        """The learner booked on s1; s1 moved a day on (version 3); a soft-1 class then."""
        learner = d.decide_book(d.Learner("a"), CTX, "k", now=NOW)
        assert learner is not None and SESSION.start is not None and SESSION.end is not None
        day = timedelta(days=1)
        moved = replace(SESSION, start=SESSION.start + day, end=SESSION.end + day, version=3)
        other = replace(moved, session_id="s9", course_id="soft-1", version=1)
        soft = replace(COURSE, course_id="soft-1")
        return learner, moved, d.EnrollmentContext("acme", soft, other)

    def test_seats_are_decided_only_for_the_time_the_learners_booked(self) -> None:
        assert SESSION.start is not None
        d.require_same_time(SESSION, replace(SESSION, trainer="Asha", capacity=9))
        moved = replace(SESSION, start=SESSION.start - timedelta(hours=1))
        with pytest.raises(FailedPrecondition) as err:
            d.require_same_time(moved, SESSION)
        assert kinds(err.value) == ["SESSION_MOVED"]


def test_a_result_without_attended_minutes_counts_the_courses_credit() -> None:
    given = d.attended_by_default(d.Completion(NOW, 0, 70, True), COURSE)
    assert given.attended_minutes == COURSE.credit_minutes > 0
    kept = d.attended_by_default(d.Completion(NOW, 45, 70, True), COURSE)
    assert kept.attended_minutes == 45


def _started_at(session: d.Session, now: datetime) -> d.Session | FailedPrecondition:
    try:
        return d.decide_start_session(session, now)
    except FailedPrecondition as err:
        return err


class TestCheckInWindow:
    """StartSession is open from CHECK_IN_LEAD (an hour) before the scheduled start until
    CHECK_IN_AFTER_END (14 days) after the scheduled end: `[start - 1 h, end + 14 d)`, in
    elapsed time, whatever the wall clock does."""

    # SESSION: 2026-03-10 04:00-08:00 UTC, 09:30-13:30 in Kolkata; check-in opens 03:00 UTC.
    @pytest.mark.parametrize(
        ("now", "answer"),
        [
            (datetime(2026, 3, 1, 9, 0, tzinfo=UTC), "CHECK_IN_NOT_OPEN"),  # days early
            (datetime(2026, 3, 10, 2, 59, 59, tzinfo=UTC), "CHECK_IN_NOT_OPEN"),
            (datetime(2026, 3, 10, 3, 0, tzinfo=UTC), "STARTED"),  # exactly an hour before
            (datetime(2026, 3, 10, 4, 0, tzinfo=UTC), "STARTED"),
            (datetime(2026, 3, 10, 7, 59, 59, tzinfo=UTC), "STARTED"),  # late, but not over
            (datetime(2026, 3, 10, 8, 0, tzinfo=UTC), "STARTED"),  # at the end: after the fact
            (datetime(2026, 3, 24, 7, 59, 59, tzinfo=UTC), "STARTED"),  # 14 days on, nearly
            (datetime(2026, 3, 24, 8, 0, tzinfo=UTC), "SESSION_ENDED"),  # 14 days after the end
            (datetime(2026, 3, 31, 9, 0, tzinfo=UTC), "SESSION_ENDED"),  # three weeks later
        ],
    )
    def test_the_window_boundaries(self, now: datetime, answer: str) -> None:
        before = enroll(SESSION, "a", "b", "c")
        got = _started_at(before, now)
        if answer == "STARTED":
            assert isinstance(got, d.Session) and got.state is d.SessionState.STARTED
            assert states(got) == {"a": E.IN_PROGRESS, "b": E.IN_PROGRESS, "c": E.WITHDRAWN}
        else:
            assert isinstance(got, FailedPrecondition)
            assert kinds(got) == [answer]
            assert got.violations[0].subject == "sessions/s1"

    def test_too_early_says_when_check_in_opens_in_utc_and_on_the_sessions_clock(self) -> None:
        err = _started_at(enroll(SESSION, "a"), NOW)
        assert isinstance(err, FailedPrecondition)
        (broken,) = err.violations
        assert broken.description == (
            "check-in opens at 2026-03-10T03:00:00Z (2026-03-10 08:30 IST, Asia/Kolkata), "
            "60 minutes before the session starts at 2026-03-10T04:00:00Z "
            "(2026-03-10 09:30 IST, Asia/Kolkata); it is 2026-03-01T09:00:00Z now"
        )

    def test_too_late_says_it_ended_and_what_to_do_instead(self) -> None:
        err = _started_at(enroll(SESSION, "a"), datetime(2026, 3, 25, tzinfo=UTC))
        assert isinstance(err, FailedPrecondition)
        (broken,) = err.violations
        assert broken.description.startswith(
            "the session ended at 2026-03-10T08:00:00Z (2026-03-10 13:30 IST, Asia/Kolkata) "
            "and was never started: check-in closed 14 days after the end"
        )
        assert "UpdateSession" in broken.description and "cancel it" in broken.description

    def test_a_session_without_a_zone_is_told_in_utc(self) -> None:
        err = _started_at(replace(SESSION, time_zone=""), NOW)
        assert isinstance(err, FailedPrecondition)
        assert err.violations[0].description.startswith(
            "check-in opens at 2026-03-10T03:00:00Z, 60 minutes before"
        )

    def test_an_early_check_in_across_midnight_and_a_dst_change(self) -> None:
        # 00:30 IST on 11 March: check-in opens at 23:30 the evening before.
        midnight = replace(
            SESSION,
            start=datetime(2026, 3, 11, 0, 30, tzinfo=ZoneInfo("Asia/Kolkata")),
            end=datetime(2026, 3, 11, 2, 30, tzinfo=ZoneInfo("Asia/Kolkata")),
        )
        err = _started_at(midnight, NOW)
        assert isinstance(err, FailedPrecondition)
        assert "(2026-03-10 23:30 IST, Asia/Kolkata), 60 minutes" in err.violations[0].description
        # London springs forward at 01:00 GMT on 29 March 2026: a class at 02:30 BST opens for
        # check-in at 00:30 GMT, an hour of elapsed time but two on the wall clock.
        london = ZoneInfo("Europe/London")
        spring = replace(
            SESSION,
            start=datetime(2026, 3, 29, 2, 30, tzinfo=london),
            end=datetime(2026, 3, 29, 4, 30, tzinfo=london),
            time_zone="Europe/London",
        )
        assert d.check_in_opens(spring) == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
        err = _started_at(spring, NOW)
        assert isinstance(err, FailedPrecondition)
        assert "(2026-03-29 00:30 GMT, Europe/London)" in err.violations[0].description
        assert isinstance(_started_at(spring, datetime(2026, 3, 29, 0, 30, tzinfo=UTC)), d.Session)
        # ... and falls back at 02:00 BST on 25 October: a class at the second 01:30 (GMT)
        # opens at the first one (BST).
        autumn = replace(
            spring,
            start=datetime(2026, 10, 25, 1, 30, fold=1, tzinfo=london),
            end=datetime(2026, 10, 25, 3, 30, tzinfo=london),
        )
        err = _started_at(autumn, NOW)
        assert isinstance(err, FailedPrecondition)
        assert "(2026-10-25 01:30 BST, Europe/London), 60 minutes" in err.violations[0].description
        assert "(2026-10-25 01:30 GMT, Europe/London); it is" in err.violations[0].description

    def test_a_cancelled_or_started_session_answers_as_before_whatever_the_time(self) -> None:
        cancelled, _ = d.decide_cancel_session(enroll(SESSION, "a"), "room flooded", NOW)
        started = d.decide_start_session(enroll(SESSION, "a"), CHECK_IN)
        for now in (NOW, CHECK_IN, datetime(2026, 4, 1, tzinfo=UTC)):
            for session, answer in ((cancelled, "SESSION_CANCELLED"), (started, "SESSION_STARTED")):
                got = _started_at(session, now)
                assert isinstance(got, FailedPrecondition) and kinds(got) == [answer]

    def test_results_and_no_shows_need_only_the_check_in_not_the_clock(self) -> None:
        # Recorded after the class (the usual case) or during it, once it has been started.
        session = d.decide_start_session(enroll(SESSION, "a", "b"), CHECK_IN)
        later = datetime(2026, 3, 12, tzinfo=UTC)
        session, _ = d.decide_transition(session, "b", E.NO_SHOW, later)
        session, _ = d.decide_transition(
            session, "a", E.COMPLETED, later, d.Completion(later, 240, 90, True)
        )
        assert states(session) == {"a": E.COMPLETED, "b": E.NO_SHOW}

    @given(
        local_start=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31)),
        fold=st.booleans(),
        zone=st.sampled_from(["", *ZONES, "America/Santiago", "Asia/Kathmandu"]),
        minutes=st.integers(1, d.MAX_SESSION_DAYS * 24 * 60),
        offset_s=st.one_of(st.integers(-3 * 86_400, 3 * 86_400), st.sampled_from([-1, 0, 1])),
        near=st.sampled_from(["opens", "closes"]),
    )
    def test_open_exactly_from_an_hour_before_the_start_until_14_days_after_the_end(
        self,
        *,
        local_start: datetime,
        fold: bool,
        zone: str,
        minutes: int,
        offset_s: int,
        near: str,
    ) -> None:
        # The start is a wall-clock time in the session's zone (midnights, DST gaps and
        # repeated hours included); the window is reckoned in elapsed time.
        start = local_start.replace(tzinfo=ZoneInfo(zone or "UTC"), fold=int(fold))
        session = replace(
            SESSION,
            start=start.astimezone(UTC),
            end=start.astimezone(UTC) + timedelta(minutes=minutes),
            time_zone=zone,
        )
        assert session.start is not None and session.end is not None
        opens = session.start - timedelta(hours=1)
        closes = session.end + timedelta(days=14)
        now = (opens if near == "opens" else closes) + timedelta(seconds=offset_s)
        got = _started_at(enroll(session, "a"), now)
        if opens <= now < closes:
            assert isinstance(got, d.Session)
            assert got.state is d.SessionState.STARTED and states(got) == {"a": E.IN_PROGRESS}
            return
        assert isinstance(got, FailedPrecondition)
        (broken,) = got.violations
        when = opens if now < opens else session.end
        assert broken.type == ("CHECK_IN_NOT_OPEN" if now < opens else "SESSION_ENDED")
        utc = when.isoformat(timespec="seconds").replace("+00:00", "Z")
        shown = utc
        if zone:
            local = when.astimezone(ZoneInfo(zone))
            shown += f" ({local:%Y-%m-%d %H:%M} {local.tzname()}, {zone})"
        assert shown in broken.description


# Near the ends of the Timestamp range a session's clock time, its check-in window and a
# certification's expiry do not fit in a datetime: found by tests/integration/test_training_fuzz.py.
@pytest.mark.parametrize(
    ("start", "field"),
    [
        (datetime(9999, 12, 31, 20, tzinfo=UTC), "session.end_time"),
        (datetime(2099, 12, 31, 23, tzinfo=UTC), "session.end_time"),
        (datetime(1, 1, 1, tzinfo=UTC), "session.start_time"),
        (datetime(1999, 12, 31, 23, tzinfo=UTC), "session.start_time"),
    ],
)
def test_sessions_take_place_in_the_training_years(start: datetime, field: str) -> None:
    v = Violations()
    d.validate_session(replace(SESSION, start=start, end=start + timedelta(hours=2)), v)
    assert [i.field for i in v.items] == [field]


@pytest.mark.parametrize(
    ("when", "ok"),
    [
        (datetime(9999, 6, 1, tzinfo=UTC), False),
        (datetime(2100, 1, 1, tzinfo=UTC), False),
        (datetime(1999, 12, 31, 23, 59, tzinfo=UTC), False),
        (datetime(2000, 1, 1, tzinfo=UTC), True),
        (datetime(2099, 12, 31, 23, 59, tzinfo=UTC), True),
    ],
)
def test_results_are_dated_in_the_training_years(when: datetime, ok: bool) -> None:
    v = Violations()
    d.validate_completion(d.Completion(when, 60, 80, True), v)
    assert [i.field for i in v.items] == ([] if ok else ["completion_time"])


def test_what_is_due_as_of_the_last_instant_includes_every_expiry() -> None:
    learner = d.Learner("a", completions=(record(COURSE, SESSION, NOW),))
    last = datetime.max.replace(tzinfo=UTC)
    for within in (0, 30, d.MAX_VALIDITY_DAYS):
        due = d.due_items(learner, [COURSE], as_of=last, within_days=within)
        assert [(i.course_id, i.reason) for i in due] == [("net-101", d.DueReason.EXPIRED)]
