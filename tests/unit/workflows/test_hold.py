"""The hold state machine, transition by transition, without a server."""

from __future__ import annotations

import pytest

from workflows.hold import AttemptFlags, Hold, Refusal


def test_a_new_notification_is_held_by_nothing() -> None:
    hold = Hold()
    assert not hold.held and hold.held_by == ""


def test_own_pause_without_a_pending_send_cancels_nothing() -> None:
    hold = Hold()
    assert hold.pause(None, "maintenance", send_pending=False) is False
    assert hold.held and hold.paused and hold.reason == "maintenance" and hold.held_by == "this notification"
    assert not hold.attempt.paused


def test_own_pause_cancels_a_send_waiting_for_its_backoff() -> None:
    hold = Hold()
    hold.start_attempt()
    assert hold.pause("workflow", None, send_pending=True) is True
    assert hold.attempt.paused


def test_queue_pause_holds_but_never_cancels_a_pending_send() -> None:
    hold = Hold()
    hold.start_attempt()
    assert hold.pause("queue", "deploy", send_pending=True) is False
    assert hold.queue_paused and not hold.paused and hold.reason is None and hold.held_by == "the queue"
    assert not hold.attempt.paused


def test_own_pause_wins_the_description_when_both_hold() -> None:
    hold = Hold(queue_paused=True)
    hold.pause(None, None, send_pending=False)
    assert hold.held_by == "this notification"


def test_own_resume_releases_and_marks_the_sql_flag_stale() -> None:
    hold = Hold()
    hold.pause(None, "x", send_pending=False)
    hold.resume(None)
    assert not hold.held and hold.reason is None and hold.resumed
    assert hold.start_attempt() == AttemptFlags(after_resume=True, queue_recheck=False)


def test_the_stale_flag_lasts_until_an_attempt_reads_the_pause_flag() -> None:
    hold = Hold()
    hold.resume(None)
    hold.start_attempt()
    assert hold.start_attempt().after_resume  # a pause cancelled the first before it read SQL
    hold.passed_checks()
    assert not hold.start_attempt().after_resume


def test_queue_resume_releases_and_is_remembered_for_the_running_attempt() -> None:
    hold = Hold(queue_paused=True)
    hold.start_attempt()
    hold.resume("queue")
    assert not hold.held and hold.attempt.queue_resumed and not hold.resumed


def test_starting_an_attempt_forgets_what_happened_during_the_last_one() -> None:
    hold = Hold()
    hold.start_attempt()
    hold.pause(None, None, send_pending=True)
    hold.resume("queue")
    hold.resume(None)
    hold.start_attempt()
    assert not hold.attempt.paused and not hold.attempt.queue_resumed


def test_recheck_timer_releases_the_queue_hold_for_one_attempt() -> None:
    hold = Hold(queue_paused=True)
    hold.recheck_elapsed()
    assert not hold.held
    assert hold.start_attempt() == AttemptFlags(after_resume=False, queue_recheck=True)
    assert hold.start_attempt().queue_recheck is False


def test_a_resume_does_not_make_an_attempt_a_recheck() -> None:
    hold = Hold(queue_paused=True)
    hold.resume("queue")
    assert hold.start_attempt().queue_recheck is False


@pytest.mark.parametrize(
    ("refusal", "paused", "queue_paused"),
    [(Refusal.NOTIFICATION_PAUSED, True, False), (Refusal.QUEUE_PAUSED, False, True)],
)
def test_a_refused_attempt_holds_by_what_refused_it(refusal: Refusal, paused: bool, queue_paused: bool) -> None:
    hold = Hold()
    hold.start_attempt()
    hold.refused(refusal)
    assert (hold.paused, hold.queue_paused) == (paused, queue_paused)


def test_race_a_queue_resume_during_an_attempt_that_read_the_old_flag_retries_at_once() -> None:
    """The attempt read 'paused', the resume signal came before its answer: not held again."""
    hold = Hold(queue_paused=True)
    hold.recheck_elapsed()
    hold.start_attempt()
    hold.resume("queue")
    hold.refused(Refusal.QUEUE_PAUSED, retry_at_once=hold.attempt.queue_resumed)
    assert not hold.held


def test_race_a_queue_pause_after_the_resume_still_holds_the_retry() -> None:
    hold = Hold()
    hold.start_attempt()
    hold.resume("queue")
    hold.pause("queue", None, send_pending=True)
    hold.refused(Refusal.QUEUE_PAUSED, retry_at_once=False)  # the flow asks the patch only on a resume
    assert hold.queue_paused


def test_race_a_notification_refusal_ignores_a_queue_resume() -> None:
    hold = Hold()
    hold.start_attempt()
    hold.resume("queue")
    hold.refused(Refusal.NOTIFICATION_PAUSED, retry_at_once=True)
    assert hold.paused and not hold.queue_paused


def test_race_a_pause_and_resume_both_during_the_backoff() -> None:
    """Paused (the retry cancelled), then resumed before the cancellation came back: runs again."""
    hold = Hold()
    hold.start_attempt()
    assert hold.pause(None, None, send_pending=True)
    hold.resume(None)
    assert not hold.held and hold.attempt.paused  # the flow reads the cancellation as 'held', then goes on
    assert hold.start_attempt().after_resume


def test_only_the_two_refusal_types_are_refusals() -> None:
    assert Refusal.of("QueuePaused") is Refusal.QUEUE_PAUSED
    assert Refusal.of("NotificationPaused") is Refusal.NOTIFICATION_PAUSED
    assert Refusal.of("PROVIDER_UNAVAILABLE") is None and Refusal.of(None) is None
