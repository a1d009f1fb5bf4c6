"""The admin API's rate limiter without a database: its in-process sliding window, the fallback."""

from __future__ import annotations

from typing import Any, cast

import pytest
from sqlalchemy.exc import OperationalError, ProgrammingError

from api.ratelimit import RateLimiter
from notifications.sql.engine import Database


class _Broken:
    """A database whose every transaction fails with `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    async def run(self, *_: Any, **__: Any) -> Any:
        self.calls += 1
        raise self.error


async def test_the_in_process_window_moves() -> None:
    limiter = RateLimiter(2, 10)
    assert await limiter.hit("a", None, now=0) is None and await limiter.hit("a", None, now=1) is None
    assert await limiter.hit("a", None, now=2) == pytest.approx(8)
    assert await limiter.hit("b", None, now=2) is None
    assert await limiter.hit("a", None, now=10.5) is None


async def test_an_unavailable_database_falls_back_to_the_in_process_window() -> None:
    broken = _Broken(OperationalError("SELECT 1", {}, Exception("unable to open database file")))
    limiter = RateLimiter(2, 10)
    db = cast(Database, broken)
    assert [await limiter.hit("a", db, now=t) for t in (0, 1)] == [None, None]
    assert await limiter.hit("a", db, now=2) == pytest.approx(8)  # refused, not every operation
    assert await limiter.hit("a", db, now=10.5) is None
    assert broken.calls == 4  # the database is tried again each time


async def test_a_database_error_that_is_not_unavailability_is_raised() -> None:
    limiter = RateLimiter(2, 10)
    db = cast(Database, _Broken(ProgrammingError("SELECT 1", {}, Exception("no such column"))))
    with pytest.raises(ProgrammingError):
        await limiter.hit("a", db, now=0)


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert [RateLimiter.retry_after_header(s) for s in (0.001, 1.0, 1.2, 59.9)] == ["1", "1", "2", "60"]
