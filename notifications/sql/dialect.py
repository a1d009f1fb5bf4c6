"""Portable idempotent writes for SQLite and PostgreSQL."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Connection, Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


@functools.cache
def insert_ignore_statement(dialect: str, table: Table, conflict_columns: tuple[str, ...]) -> Insert:
    # Built once: SQLAlchemy then finds the compiled form by a memoized cache key instead of
    # walking a fresh statement's values on every call (a hot path: several inserts per send).
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing(index_elements=list(conflict_columns))


async def insert_ignore(
    executor: AsyncSession | AsyncConnection, model: type[Any], values: dict[str, Any], conflict_columns: list[str]
) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when a row was inserted."""
    bind = executor.get_bind() if isinstance(executor, AsyncSession) else executor
    stmt = insert_ignore_statement(bind.dialect.name, model.__table__, tuple(conflict_columns))
    result = await executor.execute(stmt, values)
    return bool(getattr(result, "rowcount", 0))


def insert_ignore_sync(conn: Connection, model: type[Any], values: dict[str, Any], conflict_columns: list[str]) -> bool:
    """`insert_ignore` inside a `Database.run` transaction."""
    stmt = insert_ignore_statement(conn.dialect.name, model.__table__, tuple(conflict_columns))
    return bool(conn.execute(stmt, values).rowcount)
