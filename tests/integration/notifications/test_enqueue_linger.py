"""ENQUEUE_LINGER_MS on PostgreSQL: enqueues in flight together share one INSERT of their rows; an
enqueue alone writes its row at once. Every caller gets its own record and every row is written."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from notifications.types import NotificationInput

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def _email(nid: str) -> dict[str, str]:
    return {"notificationId": nid, "to": "reader@example.com", "subject": "Hi", "text": "Hello", "type": "news"}


def _linger_of_30_s(client: Any) -> None:
    """Longer than any test waits: a row that goes at all went because no more could come."""
    client._linger_s = 30.0


async def test_enqueues_in_flight_together_share_one_insert(
    system_with: Callable[..., Any], inserts: list[tuple[str, int]]
) -> None:
    async with system_with(enqueue_linger_ms=1000) as system:
        _linger_of_30_s(system.client)
        enqueues = asyncio.gather(*(system.client.enqueue_email(_email(f"together-{i}")) for i in range(6)))
        records = await asyncio.wait_for(enqueues, 20)  # released once the sixth start was back
        assert [r.notification_id for r in records] == [f"together-{i}" for i in range(6)]
        assert all(r.status == "queued" and r.mirrored for r in records)
        assert inserts == [("fetch", 6)]
        for i in range(6):
            row = await system.row(f"together-{i}")
            assert row is not None and row.status == "queued" and row.run_id == records[i].run_id
        assert system.client._starting == 0


async def test_a_duplicate_in_flight_does_not_keep_another_row_waiting(
    system_with: Callable[..., Any], inserts: list[tuple[str, int]]
) -> None:
    async with system_with(enqueue_linger_ms=1000) as system:
        first = await system.client.enqueue_email(_email("dup"))
        inserts.clear()
        _linger_of_30_s(system.client)
        start = system.client._starts.start
        started: list[str] = []

        async def dup_comes_back_last(inp: NotificationInput, reuse: Any) -> str | None:
            if inp.notificationId == "dup":
                await asyncio.sleep(0.5)  # "fresh" is held by then, waiting for this one
            run_id = await start(inp, reuse)
            started.append(inp.notificationId)
            return run_id

        system.client._starts.start = dup_comes_back_last  # type: ignore[method-assign]
        again, fresh = await asyncio.wait_for(
            asyncio.gather(system.client.enqueue_email(_email("dup")), system.client.enqueue_email(_email("fresh"))), 20
        )
        assert again.notification_id == "dup" and again.run_id == first.run_id  # one notification
        assert fresh.notification_id == "fresh" and fresh.mirrored
        assert inserts == [("execute", 1)] and system.client._starting == 0
        assert started == ["fresh", "dup"]


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
