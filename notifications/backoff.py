"""The seed's retry delay: delay = min(baseDelay * 2^(attempt-1) + jitter, maxDelay).

Jitter is drawn uniformly from [0, ratio * exponential delay] so that a burst of
failures does not come back as a burst of retries (the seed's thundering herd).
Temporal's RetryPolicy holds the same exponential schedule; this function adds
the jitter, handed to Temporal through `ApplicationError(next_retry_delay=...)`.
"""

from __future__ import annotations

import random
from datetime import timedelta


def retry_delay(
    attempt: int,
    *,
    base_delay_ms: int,
    max_delay_ms: int,
    jitter_ratio: float,
    rng: random.Random | None = None,
) -> timedelta:
    """Delay before the attempt that follows failed attempt number `attempt` (1-based)."""
    exponential = base_delay_ms * 2 ** max(attempt - 1, 0)
    jitter = (rng or random).uniform(0, jitter_ratio * exponential)
    return timedelta(milliseconds=min(exponential + jitter, max_delay_ms))
