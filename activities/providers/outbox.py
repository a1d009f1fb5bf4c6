"""The development outbox: 'sends' by recording the message in SQL, once per notification.

It is the embedded default for both channels so the system runs with no account
anywhere; `notifications outbox` shows what it recorded. The insert is keyed by
the notification ID, so a repeated attempt records nothing new and returns the
same provider message ID, exactly like a provider honouring an idempotency key.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from activities.providers.base import DeliveryResult, EmailMessage, PushMessage
from notifications.sql import store
from notifications.sql.engine import Database
from notifications.sql.models import OutboxMessage


class OutboxProvider:
    name = "outbox"

    def __init__(self, db: Database, *, latency_ms: int = 0) -> None:
        self._db = db
        self._latency = latency_ms / 1000

    async def send_email(self, message: EmailMessage, *, idempotency_key: str) -> DeliveryResult:
        body = {"from": message.sender, "html": message.html, "text": message.text, "headers": message.headers}
        return await self._record(idempotency_key, "email", message.to, message.subject, body)

    async def send_push(self, message: PushMessage, *, idempotency_key: str) -> DeliveryResult:
        recipient = message.token or (f"user:{message.user_id}" if message.user_id else None)
        body = {"message": message.body, "data": message.data}
        return await self._record(idempotency_key, "push", recipient, message.title, body)

    async def _record(
        self, key: str, channel: str, recipient: str | None, subject: str | None, body: dict[str, Any]
    ) -> DeliveryResult:
        message_id = f"outbox-{key}"
        started = time.monotonic()
        await store.record_outbox(
            self._db,
            {
                "notification_id": key,
                "channel": channel,
                "recipient": recipient,
                "subject": subject,
                "body": body,
                "provider_message_id": message_id,
            },
        )
        if self._latency:
            # Like a provider that accepted the message but answers slowly: a worker dying
            # now leaves a recorded message, and the retry must not record a second one. The
            # latency is the whole answer time, as a real provider's, recording included.
            await asyncio.sleep(max(0.0, self._latency - (time.monotonic() - started)))
        return DeliveryResult(provider=self.name, provider_message_id=message_id)


async def list_outbox(session: AsyncSession, limit: int = 50) -> list[OutboxMessage]:
    rows = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit))
    return list(rows)
