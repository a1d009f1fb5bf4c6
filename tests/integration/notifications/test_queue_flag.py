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
