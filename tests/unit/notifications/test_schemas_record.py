"""`NotificationRecord`: the seed's JSON record of a notification row, its times always in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from notifications.schemas import NotificationRecord
from notifications.sql.rows import as_row, row_values
from notifications.types import NotificationInput, Status

NOW = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)
NAIVE = NOW.replace(tzinfo=None)  # as SQLite hands times back
INPUT = NotificationInput(
    notificationId="n-1", channel="email", priority=4, type="welcome", to="a@example.com", subject="Hi"
)
TIMES = [name for name, field in NotificationRecord.model_fields.items() if "datetime" in str(field.annotation)]


def test_the_enqueue_row_reads_as_the_seed_record() -> None:
    record = NotificationRecord.from_row(as_row({**row_values(INPUT, Status.QUEUED, NOW), "run_id": "r-1"}))
    body = record.to_json()
    assert body["notificationId"] == "n-1" and body["runId"] == "r-1" and body["status"] == "queued"
    assert body["recipient"] == "a@example.com" and body["priority"] == 4 and body["attempts"] == 0
    assert body["createdAt"] == body["updatedAt"] == "2026-12-06T15:00:00Z"
    assert body["completedAt"] is None and record.mirrored


def test_every_naive_time_of_a_row_reads_as_utc() -> None:
    assert len(TIMES) == 12
    values = {**row_values(INPUT, Status.SENT, NOW), "run_id": "r-1"}
    record = NotificationRecord.from_row(as_row(values))
    fields = record.model_dump() | {name: NAIVE for name in TIMES}
    again = NotificationRecord(**fields)
    assert all(getattr(again, name) == NOW and getattr(again, name).tzinfo is UTC for name in TIMES)


def test_naive_times_under_their_json_names_read_as_utc_too() -> None:
    body = NotificationRecord.from_row(as_row({**row_values(INPUT, Status.SENT, NOW), "run_id": "r"})).to_json()
    for name in TIMES:
        alias = NotificationRecord.model_fields[name].alias
        assert alias is not None
        body[alias] = NAIVE
    record = NotificationRecord.model_validate(body)
    assert all(getattr(record, name) == NOW and getattr(record, name).tzinfo is UTC for name in TIMES)


def test_aware_times_are_kept_as_they_are() -> None:
    berlin = datetime(2026, 12, 6, 17, 0, tzinfo=timezone(timedelta(hours=2)))
    record = NotificationRecord.from_row(as_row({**row_values(INPUT, Status.SENT, NOW), "send_at": berlin}))
    assert record.send_at == berlin and record.send_at is not None and record.send_at.utcoffset() == timedelta(hours=2)
