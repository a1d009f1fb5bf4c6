"""The hot path's asyncpg connections, kept in a list.

asyncpg's Pool spends more CPU on a checkout and its return than a short statement costs on a
connection already held (a task for the acquire's timeout, a shielded task for the release; see
docs/decisions/0029). Every use here is one statement that commits alone and leaves no session
state, so a checkout needs none of that: an idle connection is popped from a list and pushed back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any

import asyncpg


class ConnectionPool:
    """At most `max_size` connections, opened when needed (none kept open through an outage), the
    most recently used handed out first, so a light load keeps few of them busy."""

    def __init__(self, connect: dict[str, Any], *, max_size: int) -> None:
        self._connect = connect
        self._max_size = max(max_size, 1)
        self._idle: list[asyncpg.Connection] = []
        self._open = 0  # open or opening, idle or in use
        # Callers waiting for a connection: handed one on release, or None when a slot freed up.
        self._waiting: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._closed = False

    @property
    def size(self) -> int:
        return self._open

    async def acquire(self, wait_s: float) -> asyncpg.Connection:
        """An idle connection, a new one, or the next one released; TimeoutError after `wait_s`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            if self._closed:
                raise asyncpg.InterfaceError("the connection pool is closed")
            while self._idle:
                connection = self._idle.pop()
                if not connection.is_closed():
                    return connection
                self._open -= 1  # the server closed it while it was idle
            if self._open < self._max_size:
                return await self._new_connection(loop, deadline)
            handed = await self._wait(loop, deadline)
            if handed is not None:
                return handed

    async def _new_connection(self, loop: asyncio.AbstractEventLoop, deadline: float) -> asyncpg.Connection:
        self._open += 1
        try:
            connecting = asyncpg.connect(**self._connect)
            connection: asyncpg.Connection = await asyncio.wait_for(connecting, max(deadline - loop.time(), 0))
        except BaseException:
            self._open -= 1
            self._wake()
            raise
        if self._closed:
            connection.terminate()
            self._open -= 1
            raise asyncpg.InterfaceError("the connection pool is closed")
        return connection

    async def _wait(self, loop: asyncio.AbstractEventLoop, deadline: float) -> asyncpg.Connection | None:
        waiter: asyncio.Future[asyncpg.Connection | None] = loop.create_future()
        self._waiting.append(waiter)
        try:
            return await asyncio.wait_for(waiter, max(deadline - loop.time(), 0))
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                self.release(waiter.result())  # handed one just as this caller gave up
            else:
                with contextlib.suppress(ValueError):
                    self._waiting.remove(waiter)
                self._wake()  # a freed slot meant for this caller goes to the next one
            raise

    def release(self, connection: asyncpg.Connection) -> None:
        """Back to the pool; a closed or terminated connection frees its slot instead."""
        if self._closed or connection.is_closed():
            if not connection.is_closed():
                connection.terminate()
            self._open -= 1
            self._wake()
            return
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append(connection)

    def _wake(self) -> None:
        """A slot is free: the first caller waiting opens a connection in it."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def close(self) -> None:
        """Close the idle connections; those in use are closed when they come back."""
        idle = self._close_idle()
        for waiter in self._waiting:
            if not waiter.done():
                waiter.set_exception(asyncpg.InterfaceError("the connection pool is closed"))
        self._waiting.clear()
        await asyncio.gather(*(connection.close(timeout=5) for connection in idle), return_exceptions=True)

    def terminate(self) -> None:
        for connection in self._close_idle():
            connection.terminate()

    def _close_idle(self) -> list[asyncpg.Connection]:
        """Closed to new callers; the idle connections, no longer counted, for the caller to end."""
        self._closed = True
        idle, self._idle = self._idle, []
        self._open -= len(idle)
        return idle
