"""A campaign end to end on the outbox: every recipient a notification, sent once, through batches."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from activities.providers import OutboxProvider, Providers
from notifications.sql.models import OutboxMessage
from tests.support.system import System, wait_until


def recipients(n: int, domain: str = "example.com") -> list[dict[str, Any]]:
    return [{"to": f"user{i}@{domain}", "name": f"User {i}"} for i in range(n)]


def campaign(**extra: Any) -> dict[str, Any]:
    return {
        "name": "Winter newsletter",
        "channel": "email",
        "subject": "Hello {{ name }}",
        "html": "<p>Hi {{ name }}, {{ season }} is here</p>",
        "data": {"season": "winter"},
        **extra,
    }


async def completed(system: System, cid: str) -> dict[str, Any]:
    record: dict[str, Any] = {}

    async def done() -> bool:
        record.update(await system.client.campaign(cid))
        return record["status"] == "completed"

    await wait_until(done, timeout=60)
    return record


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_campaign_sends_each_recipient_once(system: System) -> None:
    outbox = OutboxProvider(system.db)
    people = [*recipients(1200), {"to": "USER7@example.com", "name": "again"}]  # listed twice
    async with system.worker(Providers(email=outbox, push=outbox), campaign_batch_size=200):
        created = await system.client.create_campaign(campaign(recipients=people))
        assert created["added"] == 1200 and created["duplicates"] == 1 and created["rejected"] == []
        cid = created["campaignId"]
        record = await completed(system, cid)
    assert record["total"] == 1200 and record["sent"] == 1200 and record["queued"] == 0
    assert record["failed"] == 0 and record["ratePerSecond"] and record["etaSeconds"] == 0
    async with system.db.sessions() as session:
        sent = await session.scalar(select(func.count(func.distinct(OutboxMessage.recipient))))
        messages = await session.scalar(select(func.count()).select_from(OutboxMessage))
        subject = await session.scalar(
            select(OutboxMessage.subject).where(OutboxMessage.recipient == "user3@example.com")
        )
    assert sent == messages == 1200 and subject == "Hello User 3"
    row = await system.client.get(f"{cid}-4")
    assert row.status == "sent" and row.campaign_id == cid and row.subject == "Hello User 3"
    log = await system.client.delivery_log(f"{cid}-4")
    assert [a.outcome for a in log] == ["sent"]


async def test_a_push_campaign_to_tokens_and_users(system: System) -> None:
    outbox = OutboxProvider(system.db)
    people = [{"to": f"token-{i:04d}-" + "x" * 40, "city": "Nairobi"} for i in range(150)]
    people += [{"userId": f"user-{i}", "city": "Mombasa"} for i in range(50)]
    async with system.worker(Providers(email=outbox, push=outbox)):
        created = await system.client.create_campaign(
            {
                "name": "Clinic closed",
                "channel": "push",
                "title": "Closed in {{ city }}",
                "message": "Back {{ day }}",
                "data": {"day": "Monday"},
                "recipients": people,
            }
        )
        record = await completed(system, created["campaignId"])
    assert record["sent"] == 200 and record["channel"] == "push"
    messages = {m.recipient: m for m in await system.outbox()}
    assert messages["user:user-7"].subject == "Closed in Mombasa"
    assert messages["token-0003-" + "x" * 40].body["message"] == "Back Monday"
