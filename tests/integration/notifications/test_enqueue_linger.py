"""ENQUEUE_LINGER_MS on PostgreSQL: enqueues in flight together share one INSERT of their rows; an
enqueue alone writes its row at once. Every caller gets its own record and every row is written."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from notifications.sql import pg

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
def inserts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Each INSERT into notifications: `execute` for a row sent at once, `fetch` for a batch, and its rows."""
    statements: list[tuple[str, int]] = []
    run = pg._run

    async def counted(pool: Any, method: str, sql: str, args: tuple[Any, ...]) -> Any:
        if sql.startswith("INSERT INTO notifications"):
            statements.append((method, len(args[0]) if method == "fetch" else 1))
        return await run(pool, method, sql, args)

    monkeypatch.setattr(pg, "_run", counted)
    return statements


def _email(nid: str) -> dict[str, str]:
    return {"notificationId": nid, "to": "reader@example.com", "subject": "Hi", "text": "Hello", "type": "news"}


async def test_enqueues_in_flight_together_share_inserts(
    system_with: Callable[..., Any], inserts: list[tuple[str, int]]
) -> None:
    async with system_with(enqueue_linger_ms=1000) as system:
        records = await asyncio.gather(*(system.client.enqueue_email(_email(f"together-{i}")) for i in range(6)))
        assert [r.notification_id for r in records] == [f"together-{i}" for i in range(6)]
        assert all(r.status == "queued" and r.mirrored for r in records)
        assert sum(rows for _, rows in inserts) == 6 and len(inserts) < 6, inserts
        assert inserts[0][0] == "fetch"  # the first row waited for others rather than going alone
        for i in range(6):
            row = await system.row(f"together-{i}")
            assert row is not None and row.status == "queued" and row.run_id == records[i].run_id


async def test_an_enqueue_alone_writes_its_row_at_once(
    system_with: Callable[..., Any], inserts: list[tuple[str, int]]
) -> None:
    async with system_with(enqueue_linger_ms=1000) as system:
        record = await system.client.enqueue_email(_email("alone"))
        assert record.mirrored and inserts == [("execute", 1)]  # sent at once, not held
        assert (await system.client.get("alone")).status == "queued"


async def test_no_linger_when_it_is_zero(system_with: Callable[..., Any], inserts: list[tuple[str, int]]) -> None:
    async with system_with(enqueue_linger_ms=0) as system:
        records = await asyncio.gather(*(system.client.enqueue_email(_email(f"zero-{i}")) for i in range(4)))
        assert all(r.mirrored for r in records) and sum(rows for _, rows in inserts) == 4
        assert inserts[0] == ("execute", 1)  # the first row found none in flight and went at once
        assert all([await system.row(f"zero-{i}") for i in range(4)])
