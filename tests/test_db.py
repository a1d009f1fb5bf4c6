"""`Database.run`: the per-send transactions (a writer thread on SQLite, run_sync on PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Connection, func, select

from notifications.config import Settings
from notifications.db import Database
from notifications.migrate import upgrade
from notifications.models import OutboxMessage
from notifications.sql import insert_ignore_sync


def _record(conn: Connection, key: str) -> bool:
    return insert_ignore_sync(
        conn,
        OutboxMessage,
        {"notification_id": key, "channel": "email", "body": {}, "provider_message_id": f"outbox-{key}"},
        ["notification_id"],
    )


def _record_then_fail(conn: Connection, key: str) -> None:
    _record(conn, key)
    raise RuntimeError("after the first statement")


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_run_is_one_transaction(database_url: str, tmp_path: object) -> None:
    settings = Settings(database_url=database_url, data_dir=tmp_path)
    await asyncio.to_thread(upgrade, settings)
    db = Database.from_settings(settings)
    try:
        # concurrent callers each get their own whole transaction, and an idempotent insert says so
        inserted = await asyncio.gather(*(db.run(_record, f"n-{i % 10}") for i in range(40)))
        assert inserted.count(True) == 10
        with pytest.raises(RuntimeError):
            await db.run(_record_then_fail, "rolled-back")
        async with db.sessions() as session:
            keys = set(await session.scalars(select(OutboxMessage.notification_id)))
            total = await session.scalar(select(func.count()).select_from(OutboxMessage))
        assert keys == {f"n-{i}" for i in range(10)} and total == 10  # nothing of the failed one
    finally:
        await db.dispose()
