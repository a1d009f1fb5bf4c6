"""Per-subject sliding-window rate limit for queue operations (pause, resume, test-*, retry, cancel).

In-process on purpose: the limit protects the system from a runaway script or a stuck
button, and one API process per deployment is the norm; behind several replicas the
effective limit is per replica (docs/api.md, "Limits and input").
"""

from __future__ import annotations

import math
import time
from collections import deque


class RateLimiter:
    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit = limit
        self.window = window_seconds
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str, now: float | None = None) -> float | None:
        """Record one operation; None when allowed, else the seconds until the next one is."""
        now = time.monotonic() if now is None else now
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(hits[0] + self.window - now, 0.001)
        hits.append(now)
        if len(self._hits) > 10_000:  # forget idle subjects so memory stays bounded
            for stale in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
                del self._hits[stale]
        return None

    @staticmethod
    def retry_after_header(seconds: float) -> str:
        return str(max(1, math.ceil(seconds)))
