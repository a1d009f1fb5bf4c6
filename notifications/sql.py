"""Portable idempotent writes for SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


async def insert_ignore(
    executor: AsyncSession | AsyncConnection, model: type[Any], values: dict[str, Any], conflict_columns: list[str]
) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when a row was inserted."""
    bind = executor.get_bind() if isinstance(executor, AsyncSession) else executor
    module = postgresql if bind.dialect.name == "postgresql" else sqlite
    stmt = module.insert(model).values(**values).on_conflict_do_nothing(index_elements=conflict_columns)
    result = await executor.execute(stmt)
    return bool(getattr(result, "rowcount", 0))
