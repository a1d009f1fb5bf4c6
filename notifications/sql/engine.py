"""Engine and sessions for the SQL mirror, SQLite (embedded default) or PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import asyncpg
import asyncpg.exceptions
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from notifications.config import Settings, to_sync_url
from notifications.errors import NotificationUnavailableError
from notifications.sql.pg import PgHotPath
from notifications.sql.pg_pool import ConnectionPool

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger("notifications.db")
# Inline transactions between two WAL checkpoints on the writer thread: a send's transaction adds
# a few pages to the WAL, so about SQLite's own default of one checkpoint per 1000 pages.
_CHECKPOINT_EVERY = 200
# The writer waits for a write lock held elsewhere in tries of 50 ms (SQLite's busy handler, GIL
# released, checks at 0, 1, 3, 8, 18, 33 and 50 ms), up to 30 s: with one long busy timeout the
# handler sleeps ever longer (up to 100 ms a try) and lost, for seconds, to a process writing back
# to back (a campaign worker); shorter tries took the lock from this process's own inline
# transactions and cost the sends beside the webhook dispatcher (docs/performance.md, Campaigns).
_WRITER_BUSY_MS = 50
_WRITER_WAIT_SECONDS = 30.0

# What "the database cannot be reached" looks like. Drivers raise some of it bare, not wrapped
# in SQLAlchemy's classes: asyncpg's refused connect is an OSError, a server starting or
# shutting down an OperatorInterventionError.
UNAVAILABLE: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    DisconnectionError,
    PoolTimeoutError,
    OSError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InterfaceError,
)


# SQLSTATE classes of a server that is there but cannot serve: 08 connection exceptions, 57P01-03
# shutting down or starting up (SQLAlchemy wraps some of them in a bare DBAPIError).
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def is_unavailable(exc: BaseException) -> bool:
    """Whether an error says the database cannot be reached (rather than that a statement is wrong)."""
    if isinstance(exc, UNAVAILABLE):
        return True
    if isinstance(exc, DBAPIError):
        sqlstate = str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")
        return exc.connection_invalidated or sqlstate.startswith(_UNAVAILABLE_SQLSTATES)
    return False


@contextmanager
def reachable() -> Iterator[None]:
    """Turn the database being unreachable into the typed NotificationUnavailableError."""
    try:
        yield
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        log.warning("database unavailable: %s", type(exc).__name__)
        raise NotificationUnavailableError("the database is unavailable; try again", service="database") from exc


class Database:
    """One database per process: an async engine, plus on SQLite two sync ones for `run`,
    on PostgreSQL an asyncpg pool for the per-send writes (`pg`).

    Sessions are short and per unit of work.
    """

    def __init__(self, url: str, *, pool_size: int = 10, send_slots: int | None = None) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        self.pg: PgHotPath | None = None
        self._sync_engine: Engine | None = None
        self._inline_engine: Engine | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._writer_lock = threading.Lock()
        if self.is_sqlite:
            # A file has no server to drop the connection: no ping before every checkout.
            ensure_sqlite_dir(url)
            kwargs["connect_args"] = {"timeout": 30}
            # `run`'s transactions: first tried on the caller's thread without waiting for a
            # lock, then on the writer thread, which waits for it (see `run`).
            self._inline_engine = _sqlite_sync_engine(url, busy_timeout_ms=0, checkpoints=False)
            self._inline_lock = threading.Lock()
            self._inline_commits = 0
            self._checkpoint: Future[None] | None = None  # the writer's latest WAL checkpoint
            self._sync_engine = _sqlite_sync_engine(url, busy_timeout_ms=_WRITER_BUSY_MS)
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if not self.is_sqlite:
            _, connect_args = self.engine.dialect.create_connect_args(self.engine.url)
            self.pg = PgHotPath(dict(connect_args), max_size=send_slots or pool_size)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        # The hot path's pool has one connection per send slot; a send holds one for a statement.
        return cls(
            settings.sqlalchemy_url,
            pool_size=max(settings.email_concurrency, settings.push_concurrency),
            send_slots=settings.email_concurrency + settings.push_concurrency,
        )

    async def hot_pool(self) -> ConnectionPool | None:
        """PostgreSQL's pool for the per-send statements (`pg.py`); None on SQLite or in another loop."""
        return await self.pg.pool() if self.pg is not None else None

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
        """Run `fn(connection, ...)` as one transaction: the per-send hot path.

        On SQLite, with the plain sqlite3 driver, in two steps:
        - right here on the event loop, if the write lock is free at once: a send's
          transaction is a few statements on a local file, cheaper than handing it to a
          thread and back under a contended GIL (docs/decisions/0018);
        - otherwise (another process or this one's writer holds the lock) on one
          writer thread, which waits for the lock without blocking the loop. An
          inline transaction may commit before one already waiting there; no caller
          orders its transactions other than by awaiting each.
        Either way it opens with BEGIN IMMEDIATE, so its reads see what it then
        writes on: no other writer gets in between (pysqlite on its own would begin
        only at the first write). A transaction that found the database locked was
        rolled back whole, so running it again on the writer is safe.
        On PostgreSQL the same function runs on the async connection (`run_sync`),
        so each store function is written once.
        A call cancelled while its function runs still finishes it and commits.
        """
        if self._sync_engine is None:
            async with self.engine.begin() as conn:
                return await conn.run_sync(fn, *args, **kwargs)
        try:
            return self._run_inline(fn, args, kwargs)
        except _DatabaseLocked:
            pass
        return await asyncio.get_running_loop().run_in_executor(
            self._writer_thread(), _in_transaction_waiting, self._sync_engine, fn, args, kwargs
        )

    def _run_inline(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        assert self._inline_engine is not None
        checkpointing = self._checkpoint is not None and not self._checkpoint.done()
        if checkpointing or not self._inline_lock.acquire(blocking=False):  # or in use by another loop
            raise _DatabaseLocked
        try:
            result = _in_transaction(self._inline_engine, fn, args, kwargs)
            self._inline_commits += 1
        except OperationalError as exc:
            if _is_busy(exc):
                raise _DatabaseLocked from exc
            raise
        finally:
            self._inline_lock.release()
        if self._inline_commits % _CHECKPOINT_EVERY == 0:
            # The inline connection never checkpoints: its fsyncs would stall the loop. The writer
            # does, with the transactions queued behind it, so the WAL starts over instead of
            # growing without end (docs/decisions/0018).
            self._checkpoint = self._writer_thread().submit(_checkpoint, self._sync_engine)
        return result

    def _writer_thread(self) -> ThreadPoolExecutor:
        with self._writer_lock:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
            return self._writer

    async def dispose(self) -> None:
        if self.pg is not None:
            await self.pg.close()
        await self.engine.dispose()
        if self._sync_engine is None:
            return
        # On the writer, after what is queued there: closing the last connection to a WAL
        # database checkpoints it whole, which is no work for the event loop.
        writer = self._writer_thread()
        with self._writer_lock:
            self._writer = None  # a later `run` starts a new thread
        engines = [e for e in (self._inline_engine, self._sync_engine) if e is not None]
        await asyncio.get_running_loop().run_in_executor(writer, _dispose, engines)
        writer.shutdown(wait=False)


def ensure_sqlite_dir(url: str) -> None:
    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


class _DatabaseLocked(Exception):
    """Another connection holds SQLite's write lock: the transaction goes to the writer thread."""


def _is_busy(exc: OperationalError) -> bool:
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


def _checkpoint(engine: Engine | None) -> None:
    assert engine is not None
    try:
        with engine.connect() as conn:
            conn.connection.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
    except Exception as exc:  # the next one, or another connection's auto-checkpoint, catches up
        log.warning("SQLite WAL checkpoint failed: %s", type(exc).__name__)


def _dispose(engines: list[Engine]) -> None:
    for engine in engines:
        engine.dispose()


def _in_transaction(engine: Engine, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    with engine.begin() as conn:
        return fn(conn, *args, **kwargs)


def _in_transaction_waiting(engine: Engine, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    """`_in_transaction`, tried again while the database is locked (each try was rolled back whole)."""
    deadline = time.monotonic() + _WRITER_WAIT_SECONDS
    while True:
        try:
            return _in_transaction(engine, fn, args, kwargs)
        except OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() > deadline:
                raise


def _sqlite_sync_engine(url: str, *, busy_timeout_ms: int, checkpoints: bool = True) -> Engine:
    """A one-connection sqlite3 engine for `run`: WAL, BEGIN IMMEDIATE, this lock wait."""
    engine = create_engine(
        to_sync_url(url),
        connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False},
        pool_size=1,
    )

    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        _sqlite_pragmas(dbapi_connection, _record, busy_timeout_ms=busy_timeout_ms)
        if not checkpoints:
            dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")
        dbapi_connection.isolation_level = None  # SQLAlchemy's recipe: the driver emits no BEGIN...

    event.listen(engine, "connect", pragmas)
    event.listen(engine, "begin", _begin_immediate)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, *, busy_timeout_ms: int = 30_000) -> None:
    # WAL lets readers (API, stats) run beside the writer; busy_timeout absorbs short lock waits.
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _begin_immediate(conn: Connection) -> None:
    # ...and each transaction takes the write lock up front.
    conn.exec_driver_sql("BEGIN IMMEDIATE")
