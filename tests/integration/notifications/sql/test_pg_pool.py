"""The hot path's connection pool (notifications.sql.pg_pool) against the real PostgreSQL: its bound,
its waits, and the connections it must not hand out again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import psycopg
import pytest
from sqlalchemy.exc import DBAPIError

from notifications.sql import pg
from notifications.sql.pg_pool import ConnectionPool


def _backends(url: str) -> int:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
async def make_pool(postgresql_url: str) -> AsyncIterator[Any]:
    pools: list[ConnectionPool] = []

    def make(max_size: int) -> ConnectionPool:
        pool = ConnectionPool({"dsn": postgresql_url}, max_size=max_size)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        await pool.close()


async def test_never_more_connections_than_its_size_and_every_statement_answered(
    make_pool: Any, postgresql_url: str
) -> None:
    pool = make_pool(2)
    sizes: list[int] = []

    async def one(i: int) -> int:
        value = await pg._run(pool, "fetchval", "SELECT $1::int FROM pg_sleep(0.02)", (i,))
        sizes.append(pool.size)
        return int(value)

    assert await asyncio.gather(*(one(i) for i in range(20))) == list(range(20))
    assert max(sizes) == 2
    assert await asyncio.to_thread(_backends, postgresql_url) == 2


async def test_a_caller_waits_its_time_then_gives_up_and_the_pool_carries_on(make_pool: Any) -> None:
    pool = make_pool(1)
    held = await pool.acquire(5)
    with pytest.raises(TimeoutError):
        await pool.acquire(0.1)
    waiting = asyncio.create_task(pool.acquire(5))
    await asyncio.sleep(0.05)
    pool.release(held)
    assert await waiting is held  # handed over on release, not a second connection
    pool.release(held)
    assert pool.size == 1 and await pg._run(pool, "fetchval", "SELECT 1", ()) == 1


async def test_a_statement_cancelled_midway_leaves_the_pool_serving_the_next_caller(
    make_pool: Any, postgresql_url: str
) -> None:
    """The caller waiting for the pool's one connection gets it once the cancelled statement is
    cancelled on the server too, and no connection is left behind."""
    pool = make_pool(1)
    first = asyncio.create_task(pg._run(pool, "execute", "SELECT pg_sleep(1)", ()))
    await asyncio.sleep(0.2)
    waiting = asyncio.create_task(pg._run(pool, "fetchval", "SELECT 2", ()))
    await asyncio.sleep(0.05)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await asyncio.wait_for(waiting, 5) == 2
    assert pool.size == 1
    for _ in range(50):
        if await asyncio.to_thread(_backends, postgresql_url) == 1:
            break
        await asyncio.sleep(0.1)
    assert await asyncio.to_thread(_backends, postgresql_url) == 1


async def test_a_database_that_refuses_connections_frees_every_slot(make_pool: Any, postgresql_url: str) -> None:
    pool = make_pool(2)
    name = postgresql_url.rsplit("/", 1)[1]
    admin = postgresql_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    try:
        outcomes = await asyncio.gather(
            *(pg._run(pool, "fetchval", "SELECT 1", ()) for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(o, DBAPIError) and "accepting connections" in str(o) for o in outcomes), outcomes
        assert pool.size == 0
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    assert await pg._run(pool, "fetchval", "SELECT 1", ()) == 1


async def test_closing_closes_idle_connections_and_those_in_use_when_they_come_back(
    make_pool: Any, postgresql_url: str
) -> None:
    pool = make_pool(2)
    busy = await pool.acquire(5)
    idle = await pool.acquire(5)
    pool.release(idle)
    await pool.close()
    assert idle.is_closed() and not busy.is_closed()
    pool.release(busy)
    assert busy.is_closed() and pool.size == 0
    with pytest.raises(asyncpg.InterfaceError):
        await pool.acquire(1)
    await asyncio.sleep(0.2)
    assert await asyncio.to_thread(_backends, postgresql_url) == 0
