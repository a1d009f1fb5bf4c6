"""Rows seeded straight into the SQL mirror, for tests of what reads or purges them."""

from __future__ import annotations

from datetime import datetime

from notifications.sql.models import Notification


def finished_email(nid: str, at: datetime, *, status: str = "sent", recipient: str = "a@example.com") -> Notification:
    """An email notification's row that ended (`status`) at `at`, after one attempt."""
    return Notification(
        id=nid,
        channel="email",
        status=status,
        priority=5,
        recipient=recipient,
        content={},
        attempts=1,
        workflow_id=f"notification-{nid}",
        completed_at=at,
        created_at=at,
        updated_at=at,
    )
