"""Worker heartbeats: each worker process upserts one row every few seconds naming the task queues
it polls; the health check reads them to tell a dead worker within seconds.

Times are the writers' clocks (UTC), so the hosts of a deployment must keep their clocks in sync.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update

from notifications.sql.dialect import insert_ignore
from notifications.sql.engine import Database
from notifications.sql.models import WorkerHeartbeat, utcnow

# Rows of workers that died without saying so; long enough to read what was there after an outage.
PURGE_AFTER = timedelta(days=1)


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored time is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def beat(
    db: Database,
    worker_id: str,
    host: str,
    pid: int,
    task_queues: Sequence[str],
    now: datetime,
) -> None:
    """Say the worker is alive and polls `task_queues` as of `now`: update its row, or insert it.

    An insert (the worker's first beat, or its first after its row was purged) also purges
    the rows not seen for `PURGE_AFTER`, so the table stays as small as the deployment.
    """
    now = _utc(now)
    queues = list(task_queues)
    async with db.transaction() as session:
        # Update first: after the first beat the row is there, so this is the one statement.
        updated = await session.execute(
            update(WorkerHeartbeat)
            .where(WorkerHeartbeat.worker_id == worker_id)
            .values(seen_at=now, task_queues=queues)
            .execution_options(synchronize_session=False)
        )
        if getattr(updated, "rowcount", 0):
            return
        await session.execute(
            delete(WorkerHeartbeat)
            .where(WorkerHeartbeat.seen_at < now - PURGE_AFTER)
            .execution_options(synchronize_session=False)
        )
        values = {
            "worker_id": worker_id,
            "host": host[:255],
            "pid": pid,
            "task_queues": queues,
            "started_at": now,
            "seen_at": now,
        }
        await insert_ignore(session, WorkerHeartbeat, values, ["worker_id"])


async def forget(db: Database, worker_id: str) -> None:
    """A worker stopping gracefully: delete its row (and any row not seen for `PURGE_AFTER`)."""
    cutoff = utcnow() - PURGE_AFTER
    async with db.transaction() as session:
        await session.execute(
            delete(WorkerHeartbeat)
            .where(or_(WorkerHeartbeat.worker_id == worker_id, WorkerHeartbeat.seen_at < cutoff))
            .execution_options(synchronize_session=False)
        )


async def live_queues(db: Database, since: datetime, now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Every task queue a heartbeat row names: `workers`, how many beat at or after `since` (0 when
    all went quiet), and `lastSeenSecondsAgo`, the age of its latest beat (at `now`, default now).

    An empty answer means no worker of the deployment writes heartbeats (or every one stopped
    gracefully); a queue missing from a non-empty answer has no worker that beats.
    """
    since, now = _utc(since), _utc(now or utcnow())
    async with db.sessions() as session:
        rows = (await session.execute(select(WorkerHeartbeat.task_queues, WorkerHeartbeat.seen_at))).all()
    out: dict[str, dict[str, Any]] = {}
    latest: dict[str, datetime] = {}
    for task_queues, seen_at in rows:
        seen = _utc(seen_at)
        for queue in set(task_queues or ()):
            entry = out.setdefault(queue, {"workers": 0})
            entry["workers"] += int(seen >= since)
            latest[queue] = max(latest.get(queue, seen), seen)
    for queue, seen in latest.items():
        # A writer's clock a little ahead of ours must not show a beat from the future.
        out[queue]["lastSeenSecondsAgo"] = round(max((now - seen).total_seconds(), 0.0), 1)
    return out
