"""The admin API's rate limit, shared by every API process through the database.

A window of W seconds is cut into up to ten buckets (one `rate_limit_windows` row per subject and
bucket, `window_start` the bucket's start in whole epoch seconds). A subject's count is the sum of
its last buckets spanning W; an operation is counted only when that sum stays within the limit,
and a refused one is not counted. The oldest bucket leaves the sum whole, so a refused caller is
told to wait at most W, and the effective window lies between W minus one bucket and W.

Two API processes hitting at once cannot both take the last slot: the check and the increment run
in one transaction that SQLite opens with BEGIN IMMEDIATE (one writer at a time) and that
PostgreSQL serializes per subject with a transaction-scoped advisory lock.
"""

from __future__ import annotations

import functools
import logging
import math
import zlib
from typing import cast

from sqlalchemy import Connection, Insert, Table, delete, select, text
from sqlalchemy.dialects import postgresql, sqlite

from notifications.sql.engine import Database
from notifications.sql.models import RateLimitWindow

log = logging.getLogger("notifications.db")

# Finer buckets track a true sliding window more closely but mean more rows read per operation.
BUCKETS = 10
# Bucket starts are whole seconds: shorter buckets could share one.
MIN_WINDOW_SECONDS = 1.0
_SUBJECT_CHARS = 200  # the column's length
_TABLE = cast(Table, RateLimitWindow.__table__)
# Namespaces this module's advisory locks (the two-int4 key space, apart from single-bigint keys).
_LOCK_CLASS = 0x524C
_LOCK = text("SELECT pg_advisory_xact_lock(:cls, :key)")


def geometry(window: float) -> tuple[float, int]:
    """(bucket length in seconds, buckets per window) for a window of at least a second."""
    if window < MIN_WINDOW_SECONDS:
        raise ValueError(f"a shared rate-limit window must be at least {MIN_WINDOW_SECONDS:g}s")
    count = max(1, min(BUCKETS, math.floor(window)))
    return window / count, count


def wait_seconds(counts: dict[int, int], *, limit: int, size: float, buckets: int, now: float) -> float:
    """0 when one more operation fits; else the seconds until enough old buckets have left the window.

    `counts` maps bucket index (start / size) to hits; bucket i counts until (i + buckets) * size.
    """
    total = sum(counts.values())
    if total + 1 <= limit:
        return 0.0
    for index in sorted(counts):
        total -= counts[index]
        if total + 1 <= limit:
            return max((index + buckets) * size - now, 0.001)
    return size * buckets  # a limit under one never lets anything through


async def count_rate_limit_hit(db: Database, subject: str, *, limit: int, window: float, now: float) -> float:
    """Count one operation of `subject` at `now` (epoch seconds) if the limit allows it.

    Returns 0.0 when it was counted, else the seconds until the next one would be (nothing counted).
    Once per subject and bucket, buckets older than two windows are deleted, for every subject.
    """
    size, buckets = geometry(window)
    current = math.floor(now / size)
    wait, opened = await db.run(_hit, subject[:_SUBJECT_CHARS], limit, size, buckets, current, now)
    if opened:
        try:
            await db.run(_forget, _start(current - 2 * buckets, size))
        except Exception as exc:  # the next new bucket tries again; the limit itself was applied
            log.warning("could not delete old rate-limit windows: %s", type(exc).__name__)
    return wait


def _start(index: int, size: float) -> int:
    # Distinct for consecutive indexes because a bucket is at least a second long.
    return math.floor(index * size)


def _hit(
    conn: Connection, subject: str, limit: int, size: float, buckets: int, current: int, now: float
) -> tuple[float, bool]:
    """(wait, whether this hit opened the subject's current bucket), in one transaction."""
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK, {"cls": _LOCK_CLASS, "key": _lock_key(subject)})
    index_of = {_start(i, size): i for i in range(current - buckets + 1, current + 1)}
    rows = conn.execute(
        select(_TABLE.c.window_start, _TABLE.c.hits).where(
            _TABLE.c.subject == subject, _TABLE.c.window_start >= min(index_of)
        )
    ).all()
    counts: dict[int, int] = {}
    for start, hits in rows:
        # A bucket ahead of ours (a process whose clock runs ahead) counts as the newest.
        index = index_of.get(int(start), current)
        counts[index] = counts.get(index, 0) + int(hits)
    wait = wait_seconds(counts, limit=limit, size=size, buckets=buckets, now=now)
    if wait > 0:
        return wait, False
    conn.execute(_upsert(conn.dialect.name), {"subject": subject, "window_start": _start(current, size), "hits": 1})
    return 0.0, current not in counts


def _forget(conn: Connection, before: int) -> None:
    conn.execute(delete(_TABLE).where(_TABLE.c.window_start < before))


def _lock_key(subject: str) -> int:
    # A signed int4 from the subject; two subjects sharing one only wait for each other.
    key = zlib.crc32(subject.encode())
    return key - (1 << 32) if key >= 1 << 31 else key


@functools.cache
def _upsert(dialect: str) -> Insert:
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(_TABLE).on_conflict_do_update(
        index_elements=["subject", "window_start"], set_={"hits": _TABLE.c.hits + 1}
    )
