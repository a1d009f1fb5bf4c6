"""`Database.run`: the per-send transactions (a writer thread on SQLite, run_sync on PostgreSQL)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, func, select

from notifications.config import Settings
from notifications.db import Database
from notifications.migrate import upgrade
from notifications.models import Notification, OutboxMessage
from notifications.sql import insert_ignore_sync
from notifications.store import begin_attempt, insert_notification, set_paused
from notifications.types import NotificationInput, Status


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


async def test_a_pause_during_an_attempt_start_is_kept(tmp_path: Path) -> None:
    """The attempt start reads the pause flag and then writes the row: a pause written in between
    (by the client, from another connection) must not be overwritten. On SQLite this holds because
    `Database.run` opens with BEGIN IMMEDIATE; pysqlite alone would begin only at the first write."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'n.db'}", data_dir=tmp_path)
    await asyncio.to_thread(upgrade, settings)
    db = Database.from_settings(settings)
    inp = NotificationInput(notificationId="n-1", channel="email", priority=5, to="a@example.com", subject="s")
    probed = threading.Event()

    def slow_after_probe(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO DELIVERY_ATTEMPTS"):
            probed.set()
            time.sleep(0.5)  # the probe has read `paused`; the row update has not run yet

    try:
        async with db.connection() as conn:
            await insert_notification(conn, inp, Status.QUEUED)
        event.listen(db._sync_engine, "before_cursor_execute", slow_after_probe)
        start = asyncio.create_task(begin_attempt(db, inp, "run-1", 1))
        await asyncio.to_thread(probed.wait, 5)
        await set_paused(db, "n-1", True)  # the client's pause, from another connection
        assert (await start).attempt == 1
        async with db.sessions() as session:
            row = await session.get(Notification, "n-1")
        assert row is not None and row.paused and row.attempts == 1
    finally:
        await db.dispose()
