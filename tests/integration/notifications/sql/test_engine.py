"""`Database.run`: the per-send transactions (a writer thread on SQLite, run_sync on PostgreSQL)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, func, select

from notifications.config import Settings
from notifications.sql.dialect import insert_ignore_sync
from notifications.sql.engine import Database
from notifications.sql.migrate import upgrade
from notifications.sql.models import Notification, OutboxMessage
from notifications.sql.store import begin_attempt, insert_notification, set_paused
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


async def _migrated_sqlite(tmp_path: Path) -> Settings:
    """Settings for a fresh, migrated SQLite file `n.db` in tmp_path."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'n.db'}", data_dir=tmp_path)
    await asyncio.to_thread(upgrade, settings)
    return settings


async def _recorded(db: Database) -> set[str]:
    async with db.sessions() as session:
        return set(await session.scalars(select(OutboxMessage.notification_id)))


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
            total = await session.scalar(select(func.count()).select_from(OutboxMessage))
        assert await _recorded(db) == {f"n-{i}" for i in range(10)} and total == 10  # nothing of the failed one
    finally:
        await db.dispose()


async def test_sqlite_runs_inline_and_waits_for_a_locked_database_on_the_writer(tmp_path: Path) -> None:
    """A free database: the transaction runs on the caller's thread. A database another connection
    has locked: the loop stays free while the writer thread waits, and the transaction lands."""
    db = Database.from_settings(await _migrated_sqlite(tmp_path))

    def record_on(conn: Connection, key: str) -> int:
        _record(conn, key)
        return threading.get_ident()

    holder = sqlite3.connect(tmp_path / "n.db", isolation_level=None)
    try:
        assert await db.run(record_on, "free") == threading.get_ident()
        holder.execute("BEGIN IMMEDIATE")  # another process's write transaction
        pending = asyncio.create_task(db.run(record_on, "locked"))
        slept = time.monotonic()
        await asyncio.sleep(0.3)
        assert time.monotonic() - slept < 2  # the loop is not blocked while the database is locked
        assert not pending.done()
        holder.execute("COMMIT")
        assert await asyncio.wait_for(pending, 10) != threading.get_ident()
        assert await _recorded(db) == {"free", "locked"}
    finally:
        holder.close()
        await db.dispose()


@pytest.mark.parametrize("locked", [False, True], ids=["inline", "writer"])
async def test_a_pause_during_an_attempt_start_is_kept(tmp_path: Path, locked: bool) -> None:
    """The attempt start reads the pause flag and then writes the row: a pause written in between
    (by the client, from another connection) must not be overwritten. On SQLite this holds because
    `Database.run` opens with BEGIN IMMEDIATE; pysqlite alone would begin only at the first write.
    Checked on both of its paths: on the caller's thread, and on the writer thread when the
    database was locked as the attempt started."""
    settings = await _migrated_sqlite(tmp_path)
    db = Database.from_settings(settings)
    inp = NotificationInput(notificationId="n-1", channel="email", priority=5, to="a@example.com", subject="s")
    probed = threading.Event()
    pausing = threading.Event()

    def slow_after_probe(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO DELIVERY_ATTEMPTS"):
            probed.set()  # the probe has read `paused`; the row update has not run yet
            pausing.wait(5)
            time.sleep(0.3)  # the client's UPDATE is under way, waiting for the write lock

    def client_pauses() -> None:  # the client, in another thread with its own connection
        probed.wait(5)
        client = Database(settings.sqlalchemy_url)

        async def pause() -> None:
            async with client.connection() as conn:
                await conn.exec_driver_sql("SELECT 1")  # connected: the UPDATE follows at once
                pausing.set()
            await set_paused(client, "n-1", True)
            await client.dispose()

        asyncio.run(pause())

    holder = sqlite3.connect(tmp_path / "n.db", isolation_level=None)
    try:
        async with db.connection() as conn:
            await insert_notification(conn, inp, Status.QUEUED)
        for engine in (db._inline_engine, db._sync_engine):
            event.listen(engine, "before_cursor_execute", slow_after_probe)
        client = threading.Thread(target=client_pauses)
        client.start()
        if locked:
            holder.execute("BEGIN IMMEDIATE")
            asyncio.get_running_loop().call_later(0.2, holder.execute, "COMMIT")
        assert (await begin_attempt(db, inp, "run-1", 1)).attempt == 1
        await asyncio.to_thread(client.join, 10)
        async with db.sessions() as session:
            row = await session.get(Notification, "n-1")
        assert row is not None and row.paused and row.attempts == 1
    finally:
        holder.close()
        await db.dispose()


async def test_inline_transactions_leave_checkpoints_to_the_writer(tmp_path: Path) -> None:
    """Inline commits never checkpoint on the event loop, yet the WAL stays bounded: every
    few hundred of them the writer thread checkpoints it."""
    db = Database.from_settings(await _migrated_sqlite(tmp_path))
    wal = tmp_path / "n.db-wal"
    try:
        for i in range(2000):
            await db.run(_record, f"n-{i}")
        await asyncio.sleep(0.5)  # the last checkpoint, fired and forgotten
        await db.run(_record, "after")  # writes from the start of the checkpointed WAL
        wal_pages = wal.stat().st_size // 4096
        assert wal_pages < 1500, wal_pages  # about 4 pages per transaction without checkpoints
    finally:
        await db.dispose()
    assert not wal.exists() or wal.stat().st_size == 0  # the last connection closed checkpoints it all
