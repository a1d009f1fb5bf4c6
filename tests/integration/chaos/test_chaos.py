"""The fault suite's short version: each scenario once (`--quick` timings), through the Python entry point.

Each test starts its own Temporal dev server, database (a private PostgreSQL cluster for the
outage), fake providers and worker processes, injects its fault and checks what users see:
nothing accepted is lost or delivered twice, no caller told "failed" gets the notification
anyway, nothing is stored for a refused enqueue, every enqueue is accounted for, a paused
queue sends nothing, and a 429's Retry-After is waited out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.chaos import assert_user_visible, figures, quick

# Each scenario measures timings (recovery, what was sent while paused) that the load of a second
# test process would distort: they run after the parallel part, one at a time.
pytestmark = pytest.mark.serial


@pytest.mark.timeout(170)
async def test_worker_kill(tmp_path: Path) -> None:
    s = await quick("worker-kill", tmp_path)
    assert s["provider_calls_in_flight_at_kill"]["email"] > 0, figures(s)  # the kill hit sends in flight
    assert_user_visible(s)
    assert s["repeated_by_channel"].get("email", 0) == 0, figures(s)  # Resend replays the key


@pytest.mark.timeout(170)
async def test_temporal_restart(tmp_path: Path) -> None:
    s = await quick("temporal-restart", tmp_path)
    assert s["enqueued_while_down"] > 0, figures(s)
    assert_user_visible(s)


@pytest.mark.timeout(170)
async def test_db_outage(tmp_path: Path) -> None:
    s = await quick("db-outage", tmp_path)
    assert s["enqueued_while_down"] > 0, figures(s)
    assert s["sent_while_paused"] == 0, figures(s)
    assert_user_visible(s)


@pytest.mark.timeout(170)
async def test_provider_storm(tmp_path: Path) -> None:
    s = await quick("provider-storm", tmp_path)
    assert s["rate_limited_answers"] > 0, figures(s)  # the retries after the breaker's cool-down met the 429s
    assert s["retry_after_margin_s"] >= 0, figures(s)
    assert_user_visible(s)


@pytest.mark.timeout(170)
async def test_pause_during_retries(tmp_path: Path) -> None:
    s = await quick("pause-during-retries", tmp_path)
    assert s["all_in_backoff_at_pause"], figures(s)
    assert s["sent_while_paused"] == 0, figures(s)
    assert_user_visible(s)


@pytest.mark.timeout(170)
async def test_api_load(tmp_path: Path) -> None:
    s = await quick("api-load", tmp_path)
    assert s["http_5xx_undocumented"] == 0, figures(s)
    assert_user_visible(s)
