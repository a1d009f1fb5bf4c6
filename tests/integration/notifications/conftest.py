"""Fixtures shared by the notifications library's integration tests."""

from __future__ import annotations

from typing import Any

import pytest

from notifications.sql import pg


@pytest.fixture
def inserts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Each INSERT into notifications on PostgreSQL's hot path, in the order they ran: `execute` for
    one row sent at once, `fetch` for a batch (one array per column), and its rows."""
    statements: list[tuple[str, int]] = []
    run = pg._run

    async def counted(pool: Any, method: str, sql: str, args: tuple[Any, ...]) -> Any:
        if sql.startswith("INSERT INTO notifications"):
            statements.append((method, len(args[0]) if method == "fetch" else 1))
        return await run(pool, method, sql, args)

    monkeypatch.setattr(pg, "_run", counted)
    return statements
