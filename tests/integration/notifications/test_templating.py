"""Templates at enqueue time: a notification whose template cannot render is refused before anything is stored.

The rendering itself (no server) is in tests/unit/notifications/test_templating.py.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from notifications.errors import NotificationValidationError
from notifications.sql.models import Notification
from tests.support.system import System


async def test_enqueue_rejects_before_storing(system: System) -> None:
    nid = f"tpl-{uuid.uuid4().hex[:8]}"
    with pytest.raises(NotificationValidationError) as info:
        await system.client.enqueue_email({"notificationId": nid, "to": "a@example.com", "type": "welcome"})
    assert info.value.errors == [{"field": "data.name", "message": info.value.errors[0]["message"]}]
    with pytest.raises(NotificationValidationError) as info:
        await system.client.enqueue_push({"notificationId": nid, "userId": "u1", "type": "unknown_kind"})
    assert info.value.errors[0]["field"] == "type"
    async with system.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Notification)) == 0

    record = await system.client.enqueue_email(
        {"notificationId": nid, "to": "a@example.com", "type": "welcome", "data": {"name": "Amina"}}
    )
    row = await system.row(record.notification_id)
    assert row is not None and row.subject == "Welcome to Uzima Health, Amina"
    assert "Welcome, Amina!" in row.content["html"] and "Welcome, Amina!" in row.content["text"]
