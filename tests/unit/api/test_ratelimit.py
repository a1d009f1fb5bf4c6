"""The admin API's rate limiter, on its own: a sliding window per subject."""

from __future__ import annotations

import pytest


async def test_rate_limiter_window_moves() -> None:
    from api.ratelimit import RateLimiter

    limiter = RateLimiter(2, 10)
    assert limiter.hit("a", now=0) is None and limiter.hit("a", now=1) is None
    assert limiter.hit("a", now=2) == pytest.approx(8)
    assert limiter.hit("b", now=2) is None
    assert limiter.hit("a", now=10.5) is None
