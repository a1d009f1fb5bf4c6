"""The enqueue's read of its queue's pause flag: one read shared by every enqueue that needs it at once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from notifications.client import NotificationClient
from notifications.config import Settings
from notifications.sql import queries, store
from notifications.sql.engine import Database
from notifications.sql.migrate import upgrade


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_burst_of_enqueues_reads_the_flag_once(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(database_url=database_url, data_dir=tmp_path)
    await asyncio.to_thread(upgrade, settings)
    db = Database.from_settings(settings)
    reads: list[str] = []
    read = queries.queue_paused

    async def counted(database: Any, channel: str) -> bool:
        reads.append(channel)
        return await read(database, channel)

    monkeypatch.setattr(queries, "queue_paused", counted)
    client = NotificationClient(None, db, settings)  # type: ignore[arg-type]  # no Temporal needed here
    try:
        assert await asyncio.gather(*(client._queue_paused("email") for _ in range(50))) == [False] * 50
        assert reads == ["email"]
        await store.set_queue_paused(db, "push", True, reason="test", actor="test")
        assert await asyncio.gather(*(client._queue_paused("push") for _ in range(50))) == [True] * 50
        assert reads == ["email", "push"]
        assert await client._queue_paused("push")  # "paused" is never reused: read again
        assert reads == ["email", "push", "push"]
    finally:
        await db.dispose()


async def test_an_enqueue_after_a_resume_does_not_join_a_read_from_before_it(
    system: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read begun while the queue was paused is still in flight when the resume commits: the
    enqueues after the resume read afresh (not "paused"), and the old answer is not cached."""
    client = system.client
    await client.pause_queue("email", reason="test", actor="test")
    gate = asyncio.Event()
    read = queries.queue_paused

    async def slow(database: Any, channel: str) -> bool:
        value = await read(database, channel)
        await gate.wait()
        return value

    monkeypatch.setattr(queries, "queue_paused", slow)
    before = asyncio.create_task(client._queue_paused("email"))
    await asyncio.sleep(0.2)  # it has read "paused" and waits at the gate
    monkeypatch.setattr(queries, "queue_paused", read)
    await client.resume_queue("email", actor="test")
    assert await client._queue_paused("email") is False
    gate.set()
    assert await before is True  # begun before the resume: it may say so
    assert client._queue_flags["email"][0] is False
    assert await client._queue_paused("email") is False
