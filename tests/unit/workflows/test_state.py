"""What the workflow reports, from one state object, without a server."""

from __future__ import annotations

from notifications.types import (
    AttemptReport,
    DeliveryPolicy,
    LoggedAttempt,
    NotificationInput,
    SendResult,
    Status,
)
from workflows.state import NotificationState

NOW = "2026-12-01T10:00:00+00:00"


def state() -> NotificationState:
    return NotificationState(DeliveryPolicy(maxAttempts=5))


def entry(attempt: int, outcome: str = "transient_error") -> LoggedAttempt:
    return LoggedAttempt(attempt=attempt, outcome=outcome, startedAt=NOW, finishedAt=NOW)


def test_retrying_is_published_only_when_forced_and_terminal_statuses_once() -> None:
    s = state()
    assert s.set_status(Status.RETRYING, NOW) is False
    assert s.set_status(Status.RETRYING, NOW, force_publish=True) is True
    assert s.set_status(Status.RETRYING, NOW, force_publish=True) is False  # already published
    assert s.set_status(Status.SENT, NOW) is True and s.published == Status.SENT
    assert s.updated_at == NOW


def test_an_older_report_changes_nothing_but_its_log_row_is_kept() -> None:
    s = state()
    assert s.reported(AttemptReport(2, "PROVIDER_UNAVAILABLE", "503", NOW, "later"))
    late = AttemptReport(1, "TIMEOUT", "slow", NOW, None, unlogged=entry(1))
    assert s.reported(late) is False
    assert (s.attempts, s.error_code, s.next_retry_at) == (2, "PROVIDER_UNAVAILABLE", "later")
    assert list(s.unlogged) == [1]


def test_sent_clears_the_last_error_and_keeps_the_most_attempts() -> None:
    s = state()
    s.attempt_failed(3, "TIMEOUT", "slow")
    s.sent(SendResult(attempt=2, provider="resend", providerMessageId="re-1", completedAt=NOW))
    assert (s.attempts, s.provider, s.message_id, s.error_code, s.completed_at) == (3, "resend", "re-1", None, NOW)


def test_query_details_and_mirror_agree() -> None:
    s = state()
    s.hold.pause(None, "maintenance", send_pending=False)
    s.attempt_failed(1, "PROVIDER_UNAVAILABLE", "503")
    s.next_retry_at = "soon"
    s.set_status(Status.RETRYING, NOW)
    s.note_unlogged(entry(1))
    inp = NotificationInput(notificationId="n1", channel="email", priority=5, enqueuedAt=NOW)
    query = s.query(inp, "notification-n1", "run-1", NOW)
    update = s.status_update(inp)
    assert query["status"] == update.status == "retrying"
    assert query["paused"] is update.paused is True and query["pauseReason"] == "maintenance"
    assert query["attempts"] == update.attempts == 1 and query["maxAttempts"] == 5
    assert query["errorCode"] == update.errorCode == "PROVIDER_UNAVAILABLE"
    assert update.attemptLog == [entry(1)]
    assert s.details().split("\n\n") == [
        "**Status:** retrying",
        "**Attempt:** 1 of 5",
        "**Next retry:** soon",
        "**Paused:** yes, by this notification",
        "**Last error:** PROVIDER_UNAVAILABLE: 503",
    ]


def test_a_log_row_reported_again_while_the_mirror_ran_is_kept_for_the_next() -> None:
    s = state()
    first = entry(1)
    s.note_unlogged(first)
    written = s.status_update(NotificationInput(notificationId="n1", channel="push", priority=5)).attemptLog
    s.note_unlogged(entry(2))
    s.forget_logged(written)
    assert list(s.unlogged) == [2]
