"""The SQL row converges to the workflow's state even when the database is briefly unavailable."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from activities.providers import Providers
from tests.support.scripted import ScriptedProvider
from tests.support.system import PG_ADMIN_URL, System
from workflows.notification import NotificationWorkflow


def set_connections(database: str, allowed: bool) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_row_converges_after_database_outage(system: System) -> None:
    database = system.settings.database_url.rsplit("/", 1)[1]
    provider = ScriptedProvider(gate=asyncio.Event())
    nid = f"outage-{uuid.uuid4().hex[:8]}"
    try:
        async with system.worker(Providers(email=provider, push=provider)):
            await system.client.enqueue_email(
                {"notificationId": nid, "to": "a@example.com", "subject": "s", "html": "<p>x</p>"}
            )
            await asyncio.wait_for(provider.entered.wait(), 20)
            await asyncio.to_thread(set_connections, database, False)
            provider.gate.set()  # type: ignore[union-attr]

            async def workflow_says_sent() -> bool:
                return (await system.client.handle(nid).query(NotificationWorkflow.status))["status"] == "sent"

            for _ in range(100):
                if await workflow_says_sent():
                    break
                await asyncio.sleep(0.1)
            assert await workflow_says_sent()
            await asyncio.sleep(1.5)  # the mirror activity keeps retrying meanwhile
            await asyncio.to_thread(set_connections, database, True)
            row = await system.wait_status(nid, "sent", timeout=30)
            await system.client.handle(nid).result()
    finally:
        await asyncio.to_thread(set_connections, database, True)
    history = await system.client.handle(nid).fetch_history()
    sends = [e for e in history.events if e.HasField("marker_recorded_event_attributes")]
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    # one send (a local activity); its own SQL write failed, so the mirror activity caught up
    assert len(sends) == 1 and scheduled == ["record_status"]
    assert provider.delivered[nid] == 1
    assert row.provider_message_id == f"scripted-{nid}" and row.attempts == 1 and row.completed_at is not None
    assert [(a.attempt, a.outcome) for a in await system.attempts(nid)] == [(1, "sent")]
