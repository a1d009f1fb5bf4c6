"""Engine and sessions for the SQL mirror, SQLite (embedded default) or PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from notifications.config import Settings, to_sync_url

P = ParamSpec("P")
T = TypeVar("T")


class Database:
    """One database per process: an async engine, plus on SQLite a sync one for `run`.

    Sessions are short and per unit of work.
    """

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        self._sync_engine: Engine | None = None
        self._writer: ThreadPoolExecutor | None = None
        if self.is_sqlite:
            # A file has no server to drop the connection: no ping before every checkout.
            ensure_sqlite_dir(url)
            kwargs["connect_args"] = {"timeout": 30}
            # `run`'s transactions: used on the writer thread only, one connection at a time.
            self._sync_engine = create_engine(
                to_sync_url(url), connect_args={"timeout": 30, "check_same_thread": False}, pool_size=1
            )
            event.listen(self._sync_engine, "connect", _sqlite_pragmas)
            event.listen(self._sync_engine, "connect", _driver_autocommit)
            event.listen(self._sync_engine, "begin", _begin_immediate)
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(settings.sqlalchemy_url, pool_size=max(settings.email_concurrency, settings.push_concurrency))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A transaction on a bare connection: no ORM unit of work."""
        async with self.engine.begin() as conn:
            yield conn

    async def run(self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(connection, ...)` as one transaction: the per-send hot path (issue 6).

        On SQLite the whole transaction runs on one writer thread with the plain
        sqlite3 driver: one hand-off to a thread per transaction instead of one per
        statement through aiosqlite (about a quarter of the CPU), and this process's
        `run` calls queue in order. It opens with BEGIN IMMEDIATE, so its reads see
        what it then writes on: no other writer gets in between (pysqlite on its own
        would begin only at the first write). On PostgreSQL the same function runs
        on the async connection (`run_sync`), so each store function is written once.
        A call cancelled while its function runs still finishes it and commits.
        """
        if self._sync_engine is None:
            async with self.engine.begin() as conn:
                return await conn.run_sync(fn, *args, **kwargs)
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        return await asyncio.get_running_loop().run_in_executor(self._writer, self._in_transaction, fn, args, kwargs)

    def _in_transaction(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        assert self._sync_engine is not None
        with self._sync_engine.begin() as conn:
            return fn(conn, *args, **kwargs)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._sync_engine is None:
            return
        writer, self._writer = self._writer, None  # a later `run` starts a new thread
        if writer is None:
            self._sync_engine.dispose()
            return
        await asyncio.get_running_loop().run_in_executor(writer, self._sync_engine.dispose)
        writer.shutdown(wait=False)


def ensure_sqlite_dir(url: str) -> None:
    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (API, stats) run beside the writer; busy_timeout absorbs short lock waits.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _driver_autocommit(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy's recipe for SQLite transactions: the driver emits no BEGIN of its own...
    dbapi_connection.isolation_level = None


def _begin_immediate(conn: Connection) -> None:
    # ...and each transaction takes the write lock up front.
    conn.exec_driver_sql("BEGIN IMMEDIATE")
