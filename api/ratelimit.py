"""Per-subject rate limit for queue operations (pause, resume, test-*, retry, cancel...).

The limit protects the system from a runaway script or a stuck button. It is counted in the
application database (`notifications.sql.store.ratelimits`), so every API process of a deployment
shares it: N replicas allow `limit` operations per subject and window in total, not N times that
(docs/api.md, "Limits and input").

When the database cannot be reached, the limiter falls back to an exact sliding window kept in
this process rather than refusing every operation: while it is down, the limit holds per process
only. That window also remembers the operations the database allowed, so it starts warm.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque

from notifications.sql import store
from notifications.sql.engine import Database, is_unavailable
from notifications.sql.store.ratelimits import MIN_WINDOW_SECONDS

log = logging.getLogger("api.ratelimit")


class RateLimiter:
    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit = limit
        self.window = window_seconds
        self._hits: dict[str, deque[float]] = {}
        self._degraded = False  # the last try of the database failed: say so once, and once when back

    async def hit(self, key: str, db: Database | None, now: float | None = None) -> float | None:
        """Record one operation; None when allowed, else the seconds until the next one is.

        Counted in `db`, shared with every process using it. Counted in this process only when
        `db` is None, when the database is unavailable, or for a window under a second (the
        table's buckets are whole seconds). `now` (tests) stands for both clocks.
        """
        local_now = time.monotonic() if now is None else now
        if db is None or self.window < MIN_WINDOW_SECONDS:
            return self.hit_local(key, local_now)
        try:
            wait = await store.count_rate_limit_hit(
                db, key, limit=self.limit, window=self.window, now=time.time() if now is None else now
            )
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            if not self._degraded:
                self._degraded = True
                log.warning("rate limit counted per process: the database is unavailable (%s)", type(exc).__name__)
            return self.hit_local(key, local_now)
        if self._degraded:
            self._degraded = False
            log.info("rate limit shared through the database again")
        if wait > 0:
            return wait
        self._remember(key, local_now)
        return None

    def hit_local(self, key: str, now: float) -> float | None:
        """`hit` on this process's own sliding window (`now` monotonic seconds)."""
        hits = self._window(key, now)
        if len(hits) >= self.limit:
            return max(hits[0] + self.window - now, 0.001)
        self._remember(key, now)
        return None

    def _window(self, key: str, now: float) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        return hits

    def _remember(self, key: str, now: float) -> None:
        hits = self._window(key, now)
        hits.append(now)
        if len(hits) > self.limit:  # allowed elsewhere too; only the newest `limit` can matter here
            hits.popleft()
        if len(self._hits) > 10_000:  # forget idle subjects so memory stays bounded
            for stale in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
                del self._hits[stale]

    @staticmethod
    def retry_after_header(seconds: float) -> str:
        return str(max(1, math.ceil(seconds)))
