"""The admin API's rate limit shared through the database: several API processes, one limit.

Each `RateLimiter` with a `Database` of its own stands for one API process; the last test runs two
real `notifications api` processes on one SQLite file.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from api.ratelimit import RateLimiter
from notifications.sql.engine import Database
from notifications.sql.models import RateLimitWindow
from tests.support.api import SECRET, auth
from tests.support.system import ROOT, System, free_port, wait_until

BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
T0 = 1_800_000_000.0  # a multiple of 60, and so of a 60 s window's 6 s buckets


@asynccontextmanager
async def second_process(system: System) -> AsyncIterator[Database]:
    """The database as another API process sees it: its own engines and connections."""
    db = Database(system.settings.sqlalchemy_url)
    try:
        yield db
    finally:
        await db.dispose()


async def stored_hits(system: System, subject: str) -> int:
    async with system.db.transaction() as session:
        return sum(await session.scalars(select(RateLimitWindow.hits).where(RateLimitWindow.subject == subject)))


@BOTH
async def test_two_processes_allow_the_limit_in_total(system: System) -> None:
    one, two = RateLimiter(4, 60), RateLimiter(4, 60)
    async with second_process(system) as other:
        answers = []
        for n in range(6):  # alternately, as a load balancer would send them
            limiter, db = (one, system.db) if n % 2 == 0 else (two, other)
            answers.append(await limiter.hit("ops", db, now=T0 + 0.5 + n))
        assert answers[:4] == [None] * 4
        assert answers[4] == pytest.approx(59.5 - 4) and answers[5] == pytest.approx(59.5 - 5)
        assert RateLimiter.retry_after_header(answers[4] or 0) == "56"
        assert await stored_hits(system, "ops") == 4  # refused operations are not counted
        assert await two.hit("someone-else", other, now=T0 + 5.5) is None  # per subject
        # The bucket of the first four leaves the window when Retry-After said, not before.
        assert await two.hit("ops", other, now=T0 + 59.9) == pytest.approx(0.1, abs=1e-3)
        assert await two.hit("ops", other, now=T0 + 60) is None


@BOTH
async def test_retry_after_is_when_the_oldest_operations_age_out(system: System) -> None:
    one, two = RateLimiter(3, 60), RateLimiter(3, 60)
    async with second_process(system) as other:
        assert await one.hit("ops", system.db, now=T0 + 1) is None
        assert await two.hit("ops", other, now=T0 + 20) is None
        assert await one.hit("ops", system.db, now=T0 + 40) is None
        # Full: the next slot opens when the operation of T0 + 1 (its bucket, T0 to T0 + 6) ages out.
        wait = await two.hit("ops", other, now=T0 + 45)
        assert wait == pytest.approx(15) and RateLimiter.retry_after_header(wait or 0) == "15"
        assert await one.hit("ops", system.db, now=T0 + 60) is None
        # Full again: now the one of T0 + 20 (bucket T0 + 18 to T0 + 24) is the oldest.
        assert await two.hit("ops", other, now=T0 + 61) == pytest.approx(17)
        assert await two.hit("ops", other, now=T0 + 78) is None


@BOTH
async def test_operations_at_the_same_moment_from_two_processes_take_the_limit_once(system: System) -> None:
    limiters = [RateLimiter(4, 60) for _ in range(2)]
    async with second_process(system) as other:
        dbs = [system.db, other]
        answers = await asyncio.gather(*(limiters[n % 2].hit("ops", dbs[n % 2], now=T0 + 1) for n in range(24)))
    assert sum(answer is None for answer in answers) == 4
    assert all(answer == pytest.approx(59) for answer in answers if answer is not None)
    assert await stored_hits(system, "ops") == 4


@BOTH
async def test_windows_older_than_two_windows_are_deleted(system: System) -> None:
    limiter = RateLimiter(4, 60)
    assert await limiter.hit("idle", system.db, now=T0) is None
    assert await limiter.hit("busy", system.db, now=T0 + 100) is None
    assert await stored_hits(system, "idle") == 1  # still within two windows
    assert await limiter.hit("busy", system.db, now=T0 + 126) is None  # a new bucket: old ones go
    assert await stored_hits(system, "idle") == 0 and await stored_hits(system, "busy") == 2


async def test_a_window_under_a_second_is_counted_in_process(system: System) -> None:
    limiter = RateLimiter(1, 0.5)
    assert await limiter.hit("ops", system.db, now=T0) is None
    assert await limiter.hit("ops", system.db, now=T0 + 0.1) == pytest.approx(0.4, abs=1e-3)
    assert await stored_hits(system, "ops") == 0


# -- two `notifications api` processes on one SQLite file ------------------------------------------
def start_api(system: System, port: int, name: str) -> subprocess.Popen[str]:
    s = system.settings
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": s.temporal_address,
        "DATABASE_URL": s.database_url,
        "DATA_DIR": str(s.data_dir),
        "ENV": "development",
        "JWT_SECRET": SECRET,
        "API_RATE_LIMIT": "4",
        "LOG_FILE": str(s.data_dir / f"{name}.log"),
    }
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "notifications"), "api", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def answering(proc: subprocess.Popen[str], http: httpx.AsyncClient) -> None:
    async def live() -> bool:
        assert proc.poll() is None, proc.stdout and proc.stdout.read()
        try:
            return (await http.get("/livez")).status_code == 200
        except httpx.TransportError:
            return False

    await wait_until(live, timeout=60, interval=0.1)


async def test_two_api_processes_on_one_database_share_the_limit(system: System) -> None:
    ports = [free_port(), free_port()]
    https = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) for port in ports]
    procs: list[subprocess.Popen[str]] = []
    try:
        for n, port in enumerate(ports):  # one after the other, as a rolling start would
            procs.append(start_api(system, port, f"api-{n}"))
            await answering(procs[-1], https[n])
        ops = auth(sub="ops")
        replies = []
        for n in range(6):  # alternately on the two processes, pause then resume
            path = "/api/admin/notifications/queues/" + ("pause" if n % 2 == 0 else "resume")
            replies.append(await https[n % 2].post(path, headers=ops, json={"queue": "email"}))
        assert [r.status_code for r in replies] == [200, 200, 200, 200, 429, 429], [r.text for r in replies]
        for refused in replies[4:]:
            assert 1 <= int(refused.headers["Retry-After"]) <= 60
            assert refused.json()["detail"] == "rate limit of 4 operations per 60s exceeded"
        # Another subject has its own limit, on either process.
        other = await https[1].post("/api/admin/notifications/queues/resume", headers=auth(sub="carol"))
        assert other.status_code == 200
    finally:
        for http in https:
            await http.aclose()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        outputs = [proc.communicate(timeout=30)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
