"""PostgreSQL's per-send writes through asyncpg directly: one statement, one round trip each.

Through SQLAlchemy's async layer a send's three transactions cost the worker more CPU than the
workflow itself, and eleven round trips (a ping, BEGIN and COMMIT around each); see
docs/decisions/0022. Here each write is a single statement, prepared once per connection
(asyncpg's statement cache) and committed on its own, with the same guarantees:
- the attempt start locks the notification row (FOR UPDATE) and reads its queue's pause flag
  in the statement that writes the attempt, so a pause or a concurrent attempt cannot slip in
  between the checks and the writes;
- terminal rows are never moved back (the same guards as `statements.py`).
Concurrent inserts into one table (enqueues, outbox records) share one statement: while one is in
flight, the rows that arrive meanwhile go together in the next (a group commit, `InsertBatches`).
SQLite and every other write keep the SQLAlchemy path (`Database.run`, `store/`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import asyncpg
from sqlalchemy import JSON, Table
from sqlalchemy.exc import DBAPIError, OperationalError

from notifications.sql import pg_statements
from notifications.sql.models import DeliveryAttempt, Notification
from notifications.sql.pg_pool import ConnectionPool

_Key = tuple[Table, tuple[str, ...], tuple[str, ...]]
NOTIFICATIONS = cast(Table, Notification.__table__)
DELIVERY_ATTEMPTS = cast(Table, DeliveryAttempt.__table__)


@functools.lru_cache(maxsize=64)
def _json_flags(table: Table, columns: tuple[str, ...]) -> tuple[bool, ...]:
    """Which of these columns asyncpg must be handed as JSON text."""
    json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
    return tuple(c in json_columns for c in columns)


def _args(table: Table, columns: tuple[str, ...], values: dict[str, Any]) -> tuple[Any, ...]:
    """The values of `columns`, in order, as the statement's parameters."""
    return tuple(
        json.dumps(values[c]) if is_json else values[c]
        for c, is_json in zip(columns, _json_flags(table, columns), strict=True)
    )


class PgHotPath:
    """The connections for the per-send statements, opened on first use in the loop that uses it."""

    def __init__(self, connect_args: dict[str, Any], *, max_size: int) -> None:
        # What SQLAlchemy's asyncpg dialect makes of the URL (host, user, ssl=...), less its own keys.
        self._connect = {k: v for k, v in connect_args.items() if not k.startswith("prepared_statement_")}
        self._max_size = max_size
        self._pool: ConnectionPool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = InsertBatches()

    async def pool(self) -> ConnectionPool | None:
        """The pool; None in any loop but the first that asked (asyncpg connections belong to one
        loop), whose callers take the SQLAlchemy path."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        if loop is not self._loop:
            return None
        if self._pool is None:
            # A connection the server closed (restart, outage) is replaced at acquire: asyncpg
            # sees the socket close, so no ping before every use is needed.
            self._pool = ConnectionPool(self._connect, max_size=self._max_size)
        return self._pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 10)
            except Exception:  # a connection stuck on a dead server
                pool.terminate()


@functools.cache
def _defaults(table: Table) -> tuple[tuple[str, Any], ...]:
    """The columns' Python-side defaults, which SQLAlchemy would fill in for an insert."""
    return tuple((c.name, c.default) for c in table.columns if c.default is not None and not c.primary_key)


def _with_defaults(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    missing = {
        name: default.arg(None) if default.is_callable else default.arg
        for name, default in _defaults(table)
        if name not in values
    }
    return {**missing, **values} if missing else values


async def queue_paused(pool: ConnectionPool, channel: str) -> bool:
    return bool(await _run(pool, "fetchval", "SELECT paused FROM queue_state WHERE queue = $1", (channel,)))


@dataclass
class PreferenceKeys:
    """Which preference documents the attempt start reads, what they could stop, the versions of
    those the caller evaluated (None on the first try), and the recipient's suppression key."""

    tenant: str
    subjects: list[str]
    gates: list[str]
    stamp: str | None = None
    address: str | None = None  # the recipient as the suppression list keys it
    critical: bool = False


async def begin_attempt(
    pool: ConnectionPool,
    notification_id: str,
    channel: str,
    run_id: str,
    min_attempt: int,
    after_resume: bool,
    now: datetime,
    prefs: PreferenceKeys,
) -> asyncpg.Record | None:
    """BEGIN_ATTEMPT's decision row: `action`, `attempt`, the row's record of an earlier send, and
    for `check_prefs` the preference documents to evaluate (`stamp`, `documents`)."""
    args = (
        notification_id,
        channel,
        run_id,
        min_attempt,
        after_resume,
        now,
        "the worker running this attempt stopped before it finished",
        prefs.tenant,
        prefs.subjects,
        prefs.gates,
        prefs.stamp,
        prefs.address,
        prefs.critical,
    )
    row: asyncpg.Record | None = await _run(pool, "fetchrow", pg_statements.BEGIN_ATTEMPT, args)
    return row


async def finish_attempt(pool: ConnectionPool, attempt_row: dict[str, Any], values: dict[str, Any]) -> bool:
    """`store._finish_attempt` as one statement: the `b_*` keys are the WHERE values, the rest SET.
    True when webhook events wait for the provider message ID it recorded (`store.apply_pending`)."""
    attempt_columns = tuple(k for k in attempt_row if not k.startswith("b_"))
    row_columns = tuple(k for k in values if not k.startswith("b_"))
    args = (
        attempt_row["b_id"],
        attempt_row["b_run"],
        attempt_row["b_attempt"],
        *_args(DELIVERY_ATTEMPTS, attempt_columns, attempt_row),
        *_args(NOTIFICATIONS, row_columns, values),
    )
    sql = pg_statements.finish_sql(attempt_columns, row_columns)
    if "provider_message_id" not in row_columns:
        await _run(pool, "execute", sql, args)
        return False
    return bool(await _run(pool, "fetchval", sql, args))


# The connection is gone or the server cannot serve: what SQLAlchemy calls OperationalError.
_CONNECTION_ERRORS = (
    asyncpg.exceptions.InternalClientError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    OSError,
    TimeoutError,
)
# ...but these say the statement or its values are wrong, or it was cancelled: not an outage.
_STATEMENT_ERRORS = (
    asyncpg.exceptions._base.DataError,  # a value the driver cannot encode
    asyncpg.ClientConfigurationError,
    asyncpg.QueryCanceledError,
)
_ACQUIRE_TIMEOUT_S = 30.0  # as SQLAlchemy's pool_timeout: a database that does not answer is unavailable


def _gone(exc: BaseException) -> bool:
    return isinstance(exc, _CONNECTION_ERRORS) and not isinstance(exc, _STATEMENT_ERRORS)


async def _run(pool: ConnectionPool, method: str, sql: str, args: tuple[Any, ...]) -> Any:
    """One statement on a pooled connection; failures raised as SQLAlchemy's errors, so callers
    (and `engine.is_unavailable`) read them as they read the general path's.

    A pooled connection the server closed before the loop read its goodbye (a restart, an
    outage) fails at once: the statement runs once more on a new connection, as SQLAlchemy's
    ping at checkout would have found it. Each statement here is safe to run twice: the inserts
    and the attempt's end are idempotent, and an attempt start knows its own row (`repeated`).
    """
    try:
        try:
            return await _once(pool, method, sql, args)
        except Exception as exc:
            if not _gone(exc):
                raise
            return await _once(pool, method, sql, args)
    except Exception as exc:
        if _gone(exc):
            raise OperationalError(sql, None, exc) from exc
        if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
            raise DBAPIError(sql, None, exc) from exc
        raise


async def _once(pool: ConnectionPool, method: str, sql: str, args: tuple[Any, ...]) -> Any:
    connection = await pool.acquire(_ACQUIRE_TIMEOUT_S)
    try:
        return await getattr(connection, method)(sql, *args)
    except Exception as exc:
        if _gone(exc):
            with contextlib.suppress(asyncpg.InterfaceError):  # already closed
                connection.terminate()  # the pool opens a new one in its place
        raise
    finally:
        # A statement cancelled midway is still being cancelled on the server: asyncpg makes the
        # connection's next user wait for that, as its own pool does.
        pool.release(connection)


class InsertBatches:
    """INSERT ... ON CONFLICT DO NOTHING per table, one statement in flight per table and column set.

    A row that finds none in flight goes at once, in its caller's task, as a one-row statement
    (or, given a linger, waits that long for others, or until `release_held`, and goes with them);
    the rows that arrive meanwhile wait and go together in the next, a multi-row statement.
    """

    def __init__(self) -> None:
        self._busy: set[_Key] = set()
        self._waiting: dict[_Key, list[tuple[tuple[Any, ...], asyncio.Future[bool]]]] = {}
        self._draining: set[asyncio.Task[None]] = set()
        self._holding: dict[_Key, asyncio.Future[None]] = {}  # set: the held rows go
        self._drains_begun: set[asyncio.Task[Any]] = set()

    async def insert_ignore(
        self,
        pool: ConnectionPool,
        table: Table,
        values: dict[str, Any],
        conflict: tuple[str, ...],
        linger_s: float = 0.0,
    ) -> bool:
        """Whether the row was inserted (False: a row with its key was there, or came earlier in its batch)."""
        values = _with_defaults(table, values)
        key: _Key = (table, tuple(values), conflict)
        row = _args(table, key[1], values)
        if key in self._busy:
            answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            self._waiting.setdefault(key, []).append((row, answer))
            return await answer
        self._busy.add(key)
        if linger_s > 0:
            return await self._held(pool, key, row, linger_s)
        try:
            status = await _run(pool, "execute", pg_statements.insert_row_sql(*key), row)
        finally:
            self._hand_over(pool, key)
        return str(status).endswith(" 1")

    async def _held(self, pool: ConnectionPool, key: _Key, row: tuple[Any, ...], linger_s: float) -> bool:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bool] = loop.create_future()
        self._waiting.setdefault(key, []).append((row, answer))
        released: asyncio.Future[None] = loop.create_future()
        self._holding[key] = released
        try:
            await asyncio.wait([released], timeout=linger_s)
        except asyncio.CancelledError:
            # The row still goes with the others: its workflow was started. Nobody reads its answer.
            answer.add_done_callback(lambda done: done.cancelled() or done.exception())
            raise
        finally:
            if self._holding.get(key) is released:
                del self._holding[key]
            self._hand_over(pool, key)
        return await answer

    def release_held(self) -> None:
        """Let every held row go now: its caller knows no other row can come."""
        for released in self._holding.values():
            if not released.done():
                released.set_result(None)

    def _hand_over(self, pool: ConnectionPool, key: _Key) -> None:
        if key not in self._waiting:
            self._busy.discard(key)
            return
        task = asyncio.create_task(self._drain(pool, key))
        self._draining.add(task)
        task.add_done_callback(lambda done: self._drained(done, key))

    def _drained(self, task: asyncio.Task[None], key: _Key) -> None:
        self._draining.discard(task)
        begun = task in self._drains_begun
        self._drains_begun.discard(task)
        if task.cancelled() and not begun:  # cancelled before it ran (shutting down): answer its rows
            self._busy.discard(key)
            for _, answer in self._waiting.pop(key, []):
                answer.cancel()

    async def _drain(self, pool: ConnectionPool, key: _Key) -> None:
        _, columns, conflict = key
        positions = [columns.index(c) for c in conflict]
        batch: list[tuple[tuple[Any, ...], asyncio.Future[bool]]] = []
        task = asyncio.current_task()
        assert task is not None
        self._drains_begun.add(task)
        try:
            while batch := self._waiting.pop(key, []):
                if len(batch) == 1:  # a held row that stayed alone: the one-row statement costs less
                    await self._one_by_one(pool, key, batch)
                    continue
                try:
                    arrays = tuple(list(column) for column in zip(*(row for row, _ in batch), strict=True))
                    returned = await _run(pool, "fetch", pg_statements.insert_rows_sql(*key), arrays)
                except DBAPIError as exc:
                    if isinstance(exc, OperationalError):
                        _answer(batch, exc)
                    else:  # a row the database refused: each row alone, so only its caller hears of it
                        await self._one_by_one(pool, key, batch)
                    continue
                new = {tuple(r) for r in returned}
                for row, answer in batch:
                    row_key = tuple(row[p] for p in positions)
                    _answer([(row, answer)], row_key in new)
                    new.discard(row_key)  # a key twice in one batch: only its first row was inserted
        except BaseException as exc:  # none of these rows is left without an answer
            _answer(batch + self._waiting.pop(key, []), exc)
            raise
        finally:
            self._busy.discard(key)

    async def _one_by_one(self, pool: ConnectionPool, key: _Key, batch: list[tuple[tuple[Any, ...], Any]]) -> None:
        for row, answer in batch:
            try:
                status = await _run(pool, "execute", pg_statements.insert_row_sql(*key), row)
            except DBAPIError as exc:
                _answer([(row, answer)], exc)
            else:
                _answer([(row, answer)], str(status).endswith(" 1"))


def _answer(batch: list[tuple[tuple[Any, ...], asyncio.Future[bool]]], outcome: bool | BaseException) -> None:
    for _, answer in batch:
        if answer.done():
            continue
        if isinstance(outcome, BaseException):
            answer.set_exception(outcome)
        else:
            answer.set_result(outcome)
