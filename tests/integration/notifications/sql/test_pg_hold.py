"""A held row (`store.insert_row` with a linger): the first of a batch waits for others to share its
INSERT, goes when its caller releases it (no more can come) or its linger is over, and is written even
if its caller gives up waiting."""

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


def _row(nid: str) -> dict[str, Any]:
    return {"id": nid, "channel": "email", "status": "queued", "workflow_id": nid, "created_at": datetime.now(UTC)}


async def _ids(db: Database) -> set[str]:
    async with db.sessions() as session:
        return set(await session.scalars(select(Notification.id)))


def _batches(db: Database) -> pg.InsertBatches:
    assert db.pg is not None
    return db.pg.batches


async def _joined(*rows: str, db: Database) -> list[asyncio.Task[bool]]:
    """Rows arriving while the first is held: each joins its batch as its task first runs."""
    tasks = [asyncio.create_task(store.insert_row(db, _row(nid), LONG)) for nid in rows]
    await asyncio.sleep(0.1)
    return tasks


LONG = 30.0  # longer than any test waits: a held row that goes went because it was released


async def test_held_rows_go_together_once_released(db: Database, inserts: list[tuple[str, int]]) -> None:
    began = time.monotonic()
    first = asyncio.create_task(store.insert_row(db, _row("h-1"), LONG))
    second, third = await _joined("h-2", "h-3", db=db)
    await asyncio.sleep(0.2)
    assert not first.done() and not second.done() and inserts == []  # more could come
    store.release_held(db)  # the caller knows none can
    assert await asyncio.wait_for(asyncio.gather(first, second, third), 10) == [True, True, True]
    assert time.monotonic() - began < 10  # released, not timed out
    assert inserts == [("fetch", 3)]
    assert await _ids(db) == {"h-1", "h-2", "h-3"}


async def test_a_held_row_released_alone_takes_the_one_row_statement(
    db: Database, inserts: list[tuple[str, int]]
) -> None:
    task = asyncio.create_task(store.insert_row(db, _row("left"), LONG))
    await asyncio.sleep(0.2)
    assert not task.done()
    store.release_held(db)  # the other caller failed before its row (a duplicate, Temporal unreachable)
    assert await asyncio.wait_for(task, 10) is True
    assert inserts == [("execute", 1)]


async def test_a_row_alone_goes_when_its_linger_is_over(db: Database, inserts: list[tuple[str, int]]) -> None:
    task = asyncio.create_task(store.insert_row(db, _row("alone"), 0.3))
    await asyncio.sleep(0.1)
    assert not task.done() and inserts == []
    assert await task is True
    assert inserts == [("execute", 1)] and await _ids(db) == {"alone"}


async def test_the_same_id_twice_in_a_held_batch_is_written_once(db: Database, inserts: list[tuple[str, int]]) -> None:
    first = asyncio.create_task(store.insert_row(db, _row("twice"), LONG))
    (again,) = await _joined("twice", db=db)
    store.release_held(db)
    answers = await asyncio.wait_for(asyncio.gather(first, again), 10)
    assert sorted(answers) == [False, True] and inserts == [("fetch", 2)]
    assert await _ids(db) == {"twice"}


async def test_a_holder_that_gives_up_still_writes_its_row_and_the_others_learn_theirs(
    db: Database, inserts: list[tuple[str, int]]
) -> None:
    holder = asyncio.create_task(store.insert_row(db, _row("gave-up"), LONG))
    (joiner,) = await _joined("joined", db=db)
    holder.cancel()  # an enqueue cancelled by its caller after its workflow started
    with pytest.raises(asyncio.CancelledError):
        await holder
    assert await asyncio.wait_for(joiner, 10) is True
    assert inserts == [("fetch", 2)] and await _ids(db) == {"gave-up", "joined"}


async def test_a_database_refusing_connections_answers_every_held_row(
    db: Database, inserts: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    async def refused(pool: Any, method: str, sql: str, args: tuple[Any, ...]) -> Any:
        raise OperationalError(sql, None, ConnectionRefusedError("down"))

    monkeypatch.setattr(pg, "_run", refused)
    first = asyncio.create_task(store.insert_row(db, _row("down-1"), LONG))
    (second,) = await _joined("down-2", db=db)
    store.release_held(db)
    answers = await asyncio.wait_for(asyncio.gather(first, second, return_exceptions=True), 10)
    assert all(isinstance(a, OperationalError) for a in answers), answers
    assert not _batches(db)._busy  # the next row finds nothing in its way
    monkeypatch.undo()
    assert await store.insert_row(db, _row("up")) is True


async def test_rows_without_a_hold_go_at_once_as_before(db: Database, inserts: list[tuple[str, int]]) -> None:
    assert await store.insert_row(db, _row("now")) is True
    assert inserts == [("execute", 1)] and await _ids(db) == {"now"}
