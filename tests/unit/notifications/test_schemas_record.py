"""`NotificationRecord`: the seed's JSON record of a notification row, its times always in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from notifications.schemas import NotificationRecord
from notifications.sql.rows import as_row, row_values
from notifications.types import NotificationInput, Status

NOW = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)
INPUT = NotificationInput(
    notificationId="n-1", channel="email", priority=4, type="welcome", to="a@example.com", subject="Hi"
)


def test_the_enqueue_row_reads_as_the_seed_record() -> None:
    record = NotificationRecord.from_row(as_row({**row_values(INPUT, Status.QUEUED, NOW), "run_id": "r-1"}))
    body = record.to_json()
    assert body["notificationId"] == "n-1" and body["runId"] == "r-1" and body["status"] == "queued"
    assert body["recipient"] == "a@example.com" and body["priority"] == 4 and body["attempts"] == 0
    assert body["createdAt"] == body["updatedAt"] == "2026-12-06T15:00:00Z"
    assert body["completedAt"] is None and record.mirrored


def test_naive_times_read_as_utc_and_aware_ones_are_kept() -> None:
    naive = NOW.replace(tzinfo=None)  # as SQLite hands them back
    berlin = datetime(2026, 12, 6, 17, 0, tzinfo=timezone(timedelta(hours=2)))
    values = {**row_values(INPUT, Status.SENT, NOW), "created_at": naive, "completed_at": naive, "send_at": berlin}
    record = NotificationRecord.from_row(as_row(values))
    assert record.created_at == NOW and record.created_at.tzinfo is UTC
    assert record.completed_at == NOW and record.completed_at.tzinfo is UTC
    assert record.send_at == berlin and record.send_at.utcoffset() == timedelta(hours=2)
    assert record.updated_at is not None and record.updated_at.tzinfo is UTC
