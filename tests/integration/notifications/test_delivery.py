"""A notification enqueued through the Python client ends `sent`: in SQL, in the query, in visibility."""

from __future__ import annotations

import uuid

import pytest

from notifications import enqueue_email_notification, enqueue_push_notification
from tests.support.system import System, wait_until
from workflows.notification import NotificationWorkflow

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


async def test_email_is_sent_and_mirrored(system: System) -> None:
    nid = f"507f1f77bcf86cd7994390e-{uuid.uuid4().hex[:8]}"
    async with system.worker():
        record = await enqueue_email_notification(
            {
                "notificationId": nid,
                "to": "user@example.com",
                "subject": "Welcome to Uzima",
                "html": "<h1>Welcome!</h1><p>Thanks for joining Uzima Health.</p>",
                "text": "Welcome to Uzima Health. Thanks for joining!",
                "type": "welcome",
                "userId": "507f1f77bcf86cd7994390e",
            },
            7,
            client=system.client,
        )
        assert record.notification_id == nid
        assert record.status in ("queued", "retrying", "sent")
        assert record.priority == 7
        row = await system.wait_status(record.notification_id, "sent")
        handle = system.client.handle(record.notification_id)
        await handle.result()
        status = await handle.query(NotificationWorkflow.status)

    assert row.attempts == 1 and row.provider == "outbox"
    assert row.provider_message_id == f"outbox-{nid}"
    assert row.completed_at is not None and row.error_code is None
    [attempt] = await system.attempts(record.notification_id)
    assert attempt.outcome == "sent" and attempt.attempt == 1 and attempt.finished_at is not None
    [message] = await system.outbox()
    assert message.recipient == "user@example.com" and message.subject == "Welcome to Uzima"

    assert status["status"] == "sent" and status["attempts"] == 1
    assert status["messageId"] == f"outbox-{nid}"
    assert status["notificationId"] == nid and status["priority"] == 7

    async def visible() -> bool:
        count = await system.temporal.count_workflows(
            f'WorkflowId = "notification-{nid}" AND NotificationStatus = "sent" AND NotificationChannel = "email" '
            'AND NotificationType = "welcome" AND NotificationPriority = 7'
        )
        return count.count == 1

    await wait_until(visible, timeout=10)


async def test_push_is_sent_and_mirrored(system: System) -> None:
    async with system.worker():
        record = await enqueue_push_notification(
            {
                "notificationId": f"507f1f77bcf86cd7994390f-{uuid.uuid4().hex[:8]}",
                "userId": "507f1f77bcf86cd7994390e",
                "title": "New Appointment",
                "message": "You have a new appointment scheduled.",
                "data": {"appointmentId": "507f1f77bcf86cd7994390g", "type": "appointment_reminder"},
            },
            8,
            client=system.client,
        )
        row = await system.wait_status(record.notification_id, "sent")
        status = await system.client.handle(record.notification_id).query(NotificationWorkflow.status)
    assert row.channel == "push" and row.user_id == "507f1f77bcf86cd7994390e"
    assert status["status"] == "sent" and status["channel"] == "push"
    [message] = await system.outbox()
    assert message.body["data"] == {"appointmentId": "507f1f77bcf86cd7994390g", "type": "appointment_reminder"}


async def test_web_ui_reads_well(system: System) -> None:
    """What the Web UI shows: a static summary, a summary on the send (a local activity marker), live details."""
    from temporalio.api.sdk.v1 import WorkflowMetadata
    from temporalio.converter import DataConverter

    nid = f"ui-{uuid.uuid4().hex[:8]}"
    async with system.worker():
        await system.client.enqueue_email(
            {"notificationId": nid, "to": "patient@example.com", "subject": "s", "html": "<p>x</p>", "type": "welcome"},
            7,
        )
        await system.wait_status(nid, "sent")
        handle = system.client.handle(nid)
        await handle.result()
        metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        description = await handle.describe()
        history = await handle.fetch_history()
    assert await description.static_summary() == "email · welcome · to p***@e***.com"
    assert "patient@example.com" not in (await description.static_details() or "")
    details = metadata.current_details
    assert "**Status:** sent" in details and "**Attempt:** 1 of 5" in details and "**Paused:** no" in details
    [send] = [e for e in history.events if e.HasField("marker_recorded_event_attributes")]
    summary = DataConverter.default.payload_converter.from_payloads([send.user_metadata.summary])[0]
    assert summary == "send email to p***@e***.com (attempt 1+)"


async def test_status_falls_back_to_sql_when_no_worker_answers(system: System) -> None:
    import time

    nid = f"fallback-{uuid.uuid4().hex[:8]}"
    async with system.worker():
        await system.client.enqueue_email({"notificationId": nid, "to": "a@example.com", "subject": "s", "html": "x"})
        await system.wait_status(nid, "sent")
    system.client.settings = system.settings.model_copy(update={"query_timeout_seconds": 1.0})
    started = time.monotonic()
    status = await system.client.status(nid)  # no worker is running to answer the query
    assert time.monotonic() - started < 5
    assert status["notificationId"] == nid and status["status"] == "sent" and status["attempts"] == 1
