"""The development outbox: 'sends' by recording the message in SQL, once per notification.

It is the embedded default for both channels so the system runs with no account
anywhere; `notifications outbox` shows what it recorded. The insert is keyed by
the notification ID, so a repeated attempt records nothing new and returns the
same provider message ID, exactly like a provider honouring an idempotency key.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from activities.providers.base import BatchOutcome, DeliveryResult, EmailMessage, PushMessage
from notifications.sql import store
from notifications.sql.engine import Database
from notifications.sql.models import OutboxMessage
from notifications.sql.store.sends import record_outbox_many


class OutboxProvider:
    name = "outbox"
    max_batch = 500

    def __init__(self, db: Database, *, latency_ms: int = 0) -> None:
        self._db = db
        self._latency = latency_ms / 1000

    async def send_email(self, message: EmailMessage, *, idempotency_key: str) -> DeliveryResult:
        started = time.monotonic()
        await store.record_outbox(self._db, _email_row(message, idempotency_key))
        await self._answer_late(started)
        return DeliveryResult(provider=self.name, provider_message_id=f"outbox-{idempotency_key}")

    async def send_push(self, message: PushMessage, *, idempotency_key: str) -> DeliveryResult:
        started = time.monotonic()
        await store.record_outbox(self._db, _push_row(message, idempotency_key))
        await self._answer_late(started)
        return DeliveryResult(provider=self.name, provider_message_id=f"outbox-{idempotency_key}")

    async def send_email_batch(self, messages: Sequence[EmailMessage], *, idempotency_key: str) -> list[BatchOutcome]:
        return await self._record_many([_email_row(m, m.notification_id) for m in messages])

    async def send_push_batch(self, messages: Sequence[PushMessage], *, idempotency_key: str) -> list[BatchOutcome]:
        return await self._record_many([_push_row(m, m.notification_id) for m in messages])

    async def _record_many(self, rows: list[dict[str, Any]]) -> list[BatchOutcome]:
        # Keyed by each notification ID, as a single send is: the batch's own key adds nothing.
        started = time.monotonic()
        await record_outbox_many(self._db, rows)
        await self._answer_late(started)
        return [
            BatchOutcome(
                row["notification_id"],
                result=DeliveryResult(provider=self.name, provider_message_id=row["provider_message_id"]),
            )
            for row in rows
        ]

    async def _answer_late(self, started: float) -> None:
        if self._latency:
            # Like a provider that accepted the message but answers slowly: a worker dying
            # now leaves a recorded message, and the retry must not record a second one. The
            # latency is the whole answer time, as a real provider's, recording included.
            await asyncio.sleep(max(0.0, self._latency - (time.monotonic() - started)))


def _email_row(message: EmailMessage, key: str) -> dict[str, Any]:
    body = {"from": message.sender, "html": message.html, "text": message.text, "headers": message.headers}
    return _row(key, "email", message.to, message.subject, body)


def _push_row(message: PushMessage, key: str) -> dict[str, Any]:
    recipient = message.token or (f"user:{message.user_id}" if message.user_id else None)
    return _row(key, "push", recipient, message.title, {"message": message.body, "data": message.data})


def _row(key: str, channel: str, recipient: str | None, subject: str | None, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "notification_id": key,
        "channel": channel,
        "recipient": recipient,
        "subject": subject,
        "body": body,
        "provider_message_id": f"outbox-{key}",
    }


async def list_outbox(session: AsyncSession, limit: int = 50) -> list[OutboxMessage]:
    rows = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit))
    return list(rows)
