"""The fault suite's routing scenarios (`--quick` timings): failover, fallback, shared limits, dead workers.

Their figures are counts and a detection time bounded by settings, not timings another test
process's load would distort: they run in the parallel part.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.chaos import assert_user_visible, figures, quick


@pytest.mark.timeout(170)
async def test_provider_failover(tmp_path: Path) -> None:
    s = await quick("provider-failover", tmp_path)
    assert_user_visible(s)
    assert s["sent_by"] == {"smtp": s["accepted"]}, figures(s)  # every email, while Resend was down
    assert s["max_resend_attempts"] <= 2 and s["resend_error_codes"]["PROVIDER_UNAVAILABLE"] > 0, figures(s)
    assert s["recovery_s"] == 0.0, figures(s)  # none waited for the outage to end


@pytest.mark.timeout(170)
async def test_provider_auth(tmp_path: Path) -> None:
    s = await quick("provider-auth", tmp_path)
    assert_user_visible(s)
    assert s["sent_by"] == {"smtp": s["accepted"]}, figures(s)
    assert s["resend_attempts_per_email"].get("1", 0) >= 1 and s["max_resend_attempts"] == 1, figures(s)


@pytest.mark.timeout(170)
async def test_ambiguous_timeout(tmp_path: Path) -> None:
    s = await quick("ambiguous-timeout", tmp_path)
    assert_user_visible(s)
    assert s["sent_by"] == {"resend": s["accepted"]}, figures(s)  # never failed over
    assert s["resend_error_codes"]["TIMEOUT"] >= s["accepted"], figures(s)


@pytest.mark.timeout(170)
async def test_two_api_processes(tmp_path: Path) -> None:
    s = await quick("two-api-processes", tmp_path)
    assert s["allowed"] == s["rate_limit"] == 5, figures(s)
    assert len(s["allowed_by_process"]) == 2, figures(s)  # both processes served some
    assert s["refused_429"] == s["operations"] - 5 and s["refused_without_retry_after"] == 0, figures(s)


@pytest.mark.timeout(170)
async def test_worker_death(tmp_path: Path) -> None:
    s = await quick("worker-death", tmp_path)
    assert s["healthy_before"], figures(s)
    # quick timings: heartbeats every second, stale after 3 s (the defaults, 5 and 15, in the full run)
    assert s["detected_s"] is not None and s["detected_s"] <= s["heartbeat_stale_s"] + 3.0, figures(s)
    assert s["healthy_again_s"] is not None, figures(s)


@pytest.mark.timeout(170)
async def test_channel_fallback(tmp_path: Path) -> None:
    s = await quick("channel-fallback", tmp_path)
    assert s["accepted"] == s["enqueued"] > 0, figures(s)
    assert s["pushes_failed"] == s["accepted"] and s["pushes_delivered"] == 0, figures(s)
    assert s["push_error_codes"] == {"NO_VALID_DEVICES": s["accepted"]}, figures(s)
    assert s["fallback_emails"] == s["accepted"] and s["fallback_duplicated"] == 0, figures(s)
    assert s["fallback_linked"] == s["accepted"], figures(s)
