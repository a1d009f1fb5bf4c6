"""A held row (notifications.sql.pg `Hold`): the first of a batch waits for others to share its INSERT,
goes once as many as could come are waiting or its linger is over, and is written even if its caller
gives up waiting."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from notifications.sql import pg, store
from notifications.sql.engine import Database
from notifications.sql.models import Notification


@pytest.fixture
def database_url(postgresql_url: str) -> str:
    return postgresql_url


@pytest.fixture
def inserts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The rows of each INSERT into notifications, in the order the statements ran."""
    rows: list[int] = []
    run = pg._run

    async def counted(pool: Any, method: str, sql: str, args: tuple[Any, ...]) -> Any:
        if sql.startswith("INSERT INTO notifications"):
            rows.append(len(args[0]) if method == "fetch" else 1)  # fetch: one array per column
        return await run(pool, method, sql, args)

    monkeypatch.setattr(pg, "_run", counted)
    return rows


def _row(nid: str) -> dict[str, Any]:
    return {"id": nid, "channel": "email", "status": "queued", "workflow_id": nid, "created_at": datetime.now(UTC)}


async def _ids(db: Database) -> set[str]:
    async with db.sessions() as session:
        return set(await session.scalars(select(Notification.id)))


async def test_the_rows_that_could_come_go_together_as_soon_as_all_are_there(db: Database, inserts: list[int]) -> None:
    hold = pg.Hold(30.0, lambda: 3)
    began = time.monotonic()
    first = asyncio.create_task(store.insert_row(db, _row("h-1"), hold))
    await asyncio.sleep(0.2)
    assert not first.done()  # waiting for the other two
    later = [store.insert_row(db, _row(f"h-{i}"), hold) for i in (2, 3)]
    assert await asyncio.gather(first, *later) == [True, True, True]
    assert time.monotonic() - began < 10  # released by the third row, not by the 30 s linger
    assert inserts == [3]
    assert await _ids(db) == {"h-1", "h-2", "h-3"}


async def test_a_row_alone_goes_when_its_linger_is_over(db: Database, inserts: list[int]) -> None:
    task = asyncio.create_task(store.insert_row(db, _row("alone"), pg.Hold(0.3, lambda: 5)))
    await asyncio.sleep(0.1)
    assert not task.done() and inserts == []
    assert await task is True
    assert inserts == [1] and await _ids(db) == {"alone"}


async def test_the_same_id_twice_in_a_held_batch_is_written_once(db: Database, inserts: list[int]) -> None:
    hold = pg.Hold(30.0, lambda: 2)
    answers = await asyncio.gather(store.insert_row(db, _row("twice"), hold), store.insert_row(db, _row("twice"), hold))
    assert sorted(answers) == [False, True] and inserts == [2]
    assert await _ids(db) == {"twice"}


async def test_a_holder_that_gives_up_still_writes_its_row_and_the_others_learn_theirs(
    db: Database, inserts: list[int]
) -> None:
    hold = pg.Hold(30.0, lambda: 10)
    holder = asyncio.create_task(store.insert_row(db, _row("gave-up"), hold))
    await asyncio.sleep(0.1)
    joiner = asyncio.create_task(store.insert_row(db, _row("joined"), hold))
    await asyncio.sleep(0.1)
    holder.cancel()  # an enqueue cancelled by its caller after its workflow started
    with pytest.raises(asyncio.CancelledError):
        await holder
    assert await asyncio.wait_for(joiner, 10) is True
    assert inserts == [2] and await _ids(db) == {"gave-up", "joined"}


async def test_rows_without_a_hold_go_at_once_as_before(db: Database, inserts: list[int]) -> None:
    assert await store.insert_row(db, _row("now")) is True
    assert inserts == [1] and await _ids(db) == {"now"}
