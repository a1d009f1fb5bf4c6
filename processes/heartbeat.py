"""The worker's heartbeat: every `WORKER_HEARTBEAT_SECONDS` the process writes one row naming the
task queues it polls (`notifications.sql.store.beat`), so the health check tells a dead worker
from its heartbeat going stale, in seconds, instead of waiting for Temporal's pollers to age.

A write that fails is logged once per outage and never stops the worker; a graceful exit deletes
the row. A worker killed outright leaves its row, which goes stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from notifications.config import Settings
from notifications.sql import store
from notifications.sql.engine import Database
from notifications.sql.models import utcnow

log = logging.getLogger("notifications.heartbeat")

# A graceful exit waits this long at most for the database to take the row's deletion.
FORGET_TIMEOUT_SECONDS = 5.0


def new_worker_id() -> str:
    """`host:pid:random`: the random part tells apart two processes that reused a pid on one host."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Heartbeat:
    """One worker process's heartbeat row; `queues` names what it polls at the moment of each beat."""

    def __init__(
        self, db: Database, settings: Settings, queues: Callable[[], Sequence[str]], worker_id: str | None = None
    ) -> None:
        self.db = db
        self.queues = queues
        self.interval = settings.worker_heartbeat_seconds
        # A beat later than the stale window would not keep the worker live anyway.
        self.write_timeout = max(settings.worker_heartbeat_stale_seconds, self.interval)
        self.worker_id = worker_id or new_worker_id()
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.failing = False
        self._stop = asyncio.Event()

    async def beat(self) -> bool:
        """Write one beat; False (and one warning per outage) when the database did not take it."""
        try:
            await asyncio.wait_for(
                store.beat(self.db, self.worker_id, self.host, self.pid, list(self.queues()), utcnow()),
                self.write_timeout,
            )
        except Exception as exc:
            if not self.failing:
                self.failing = True
                log.warning(
                    "worker heartbeat not written (%s: %s); health reports this worker's queues as without a "
                    "worker until it is",
                    type(exc).__name__,
                    str(exc)[:200],
                )
            return False
        if self.failing:
            self.failing = False
            log.info("worker heartbeat written again")
        return True

    async def run(self) -> None:
        """Beat now, then every `interval` (measured from one beat's start to the next's) until stopped."""
        while not self._stop.is_set():
            started = time.monotonic()
            await self.beat()
            pause = max(self.interval - (time.monotonic() - started), 0.0)
            try:
                await asyncio.wait_for(self._stop.wait(), pause)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stop.set()

    async def forget(self) -> None:
        """Delete the row: the worker stops polling now, so its queues must not look served by it."""
        try:
            await asyncio.wait_for(store.forget(self.db, self.worker_id), FORGET_TIMEOUT_SECONDS)
        except Exception as exc:  # the row then goes stale on its own
            log.warning("worker heartbeat not removed (%s)", type(exc).__name__)


@asynccontextmanager
async def heartbeat(db: Database, settings: Settings, queues: Callable[[], Sequence[str]]) -> AsyncIterator[Heartbeat]:
    """Beat for the duration of the block; on exit stop beating and delete the row."""
    beats = Heartbeat(db, settings, queues)
    task = asyncio.create_task(beats.run(), name="worker-heartbeat")
    try:
        yield beats
    finally:
        beats.stop()
        # A beat in progress finishes first (bounded by its own timeout): landing after the
        # deletion below, it would bring the row back.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, beats.write_timeout + 1.0)
        await beats.forget()
