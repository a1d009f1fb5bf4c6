"""The determinism guard for NotificationWorkflow.

Production workers (`processes.worker.workflow_runner()`) pass `workflows.notification`
through the sandbox, so it is imported once rather than re-imported for every run: that saves
worker CPU, but it also means the sandbox no longer checks that module for I/O, clocks or other
non-deterministic calls. These tests are what keeps that safe: they run the workflow's main paths
under the default, strict sandbox (the module re-imported and checked on every run) against the
real Temporal dev server, then replay each history under both the strict and the production
runner. A non-deterministic change to the workflow makes a replay here fail.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

import processes.worker
from activities.providers import Providers
from processes.worker import workflow_runner as production_runner
from tests.support.replay import assert_replays, finish, replay
from tests.support.scripted import ScriptedProvider, invalid_recipient, unavailable
from tests.support.system import System, wait_until
from workflows.notification import NotificationWorkflow


@pytest.fixture(autouse=True)
def strict_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers built by `System.worker` (via `build_workers`) get the default, re-importing sandbox."""
    monkeypatch.setattr(processes.worker, "workflow_runner", SandboxedWorkflowRunner)


def email(nid: str) -> dict[str, object]:
    return {"notificationId": nid, "to": "patient@example.com", "subject": "Hello", "html": "<p>Hi</p>"}


def new_id() -> str:
    return f"d-{uuid.uuid4().hex[:12]}"


def scripted() -> tuple[ScriptedProvider, Providers]:
    provider = ScriptedProvider()
    return provider, Providers(email=provider, push=provider)


async def test_happy_path(system: System) -> None:
    provider, providers = scripted()
    nid = new_id()
    async with system.worker(providers) as workers:
        await system.client.enqueue_email(email(nid))
        row = await system.wait_status(nid, "sent")
        history = await finish(system, workers, nid)
    assert row.attempts == 1 and provider.delivered[nid] == 1 and len(provider.calls_for(nid)) == 1
    await assert_replays(system, history)


async def test_retry_after_one_transient_failure(system: System) -> None:
    provider, providers = scripted()
    nid = new_id()
    provider.fail(nid, unavailable())
    async with system.worker(providers) as workers:
        await system.client.enqueue_email(email(nid))
        row = await system.wait_status(nid, "sent")
        history = await finish(system, workers, nid)
    assert row.attempts == 2 and provider.delivered[nid] == 1 and len(provider.calls_for(nid)) == 2
    assert [(a.attempt, a.outcome) for a in await system.attempts(nid)] == [(1, "transient_error"), (2, "sent")]
    await assert_replays(system, history)


async def test_pause_during_retry_backoff_then_resume(slow_retry_system: System) -> None:
    system = slow_retry_system
    provider, providers = scripted()
    nid = new_id()
    provider.fail(nid, unavailable())
    async with system.worker(providers) as workers:
        await system.client.enqueue_email(email(nid))
        await wait_until(lambda: _has_calls(provider, nid))
        await system.client.pause(nid, reason="maintenance")
        await wait_until(lambda: _is_paused(system, nid))
        await asyncio.sleep(1.5)  # the retry was due after ~1.0-1.3 s
        assert len(provider.calls_for(nid)) == 1
        await system.client.resume(nid)
        row = await system.wait_status(nid, "sent")
        history = await finish(system, workers, nid)
    assert row.attempts == 2 and row.paused is False
    assert provider.delivered[nid] == 1 and len(provider.calls_for(nid)) == 2
    assert [(a.attempt, a.outcome) for a in await system.attempts(nid)] == [(1, "transient_error"), (2, "sent")]
    await assert_replays(system, history)


async def test_permanent_failure(system: System) -> None:
    provider, providers = scripted()
    nid = new_id()
    provider.fail(nid, invalid_recipient())
    async with system.worker(providers) as workers:
        await system.client.enqueue_email(email(nid))
        row = await system.wait_status(nid, "failed")
        history = await finish(system, workers, nid)
    assert row.attempts == 1 and row.error_code == "INVALID_RECIPIENT"
    assert len(provider.calls_for(nid)) == 1 and not provider.delivered[nid]
    await assert_replays(system, history)

    # The guard can fail: with the workflow changed in this process (it no longer mirrors a
    # failure to SQL), the production runner, which passes the module through, replays the
    # changed class and reports non-determinism; the strict sandbox re-imports the unchanged
    # source, so its replay still succeeds.
    async def no_mirror(self: NotificationWorkflow) -> None:
        return None

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(NotificationWorkflow, "_mirror", no_mirror)
        with pytest.raises(Exception, match="Nondeterminism error"):
            await replay(system, history, production_runner())
        await replay(system, history, SandboxedWorkflowRunner())


async def _has_calls(provider: ScriptedProvider, nid: str) -> bool:
    return len(provider.calls_for(nid)) >= 1


async def _is_paused(system: System, nid: str) -> bool:
    row = await system.row(nid)
    return bool(row and row.paused)


# -- when to send: the timer, the updates, the expiry ------------------------------------------------
def _at(seconds: float) -> str:
    from datetime import UTC, datetime, timedelta

    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def test_scheduled_then_rescheduled_then_sent(system: System) -> None:
    provider, providers = scripted()
    nid = new_id()
    async with system.worker(providers) as workers:
        await system.client.enqueue_email({**email(nid), "sendAt": _at(3600), "expiresAt": _at(7200)})
        await system.client.reschedule(nid, _at(1))
        row = await system.wait_status(nid, "sent")
        history = await finish(system, workers, nid)
    assert provider.delivered[nid] == 1 and row.attempts == 1
    await assert_replays(system, history)
    _record(history, "27-1send-scheduled-rescheduled-completed")


async def test_scheduled_then_cancelled_by_the_update(system: System) -> None:
    provider, providers = scripted()
    nid = new_id()
    async with system.worker(providers) as workers:
        await system.client.enqueue_email({**email(nid), "sendAt": _at(3600)})
        assert (await system.client.cancel(nid)).status == "cancelled"
        history = await finish(system, workers, nid)
    assert provider.calls_for(nid) == []
    await assert_replays(system, history)
    _record(history, "28-0sends-scheduled-cancel-update-completed")


async def test_expired_while_retrying(slow_retry_system: System) -> None:
    system = slow_retry_system
    provider, providers = scripted()
    provider.always_fail = unavailable()
    nid = new_id()
    async with system.worker(providers) as workers:
        await system.client.enqueue_email({**email(nid), "expiresAt": _at(1.5)})
        row = await system.wait_status(nid, "expired")
        history = await finish(system, workers, nid)
    assert row.error_code == "EXPIRED" and 1 <= len(provider.calls_for(nid)) < 5
    await assert_replays(system, history)
    _record(history, "29-1send-attemptfailed-expired-completed")


def _record(history: Any, name: str) -> None:
    """With RECORD_HISTORIES=<prefix>, keep the history for tests/unit/workflows/test_recorded_histories."""
    import os
    from pathlib import Path

    prefix = os.environ.get("RECORD_HISTORIES")
    if prefix:
        folder = Path(__file__).resolve().parents[2] / "unit" / "workflows" / "histories"
        (folder / f"{prefix}-{name}.json").write_text(history.to_json())


# -- whether to send: preferences ---------------------------------------------------------------------
async def test_suppressed_by_an_opt_out(system: System) -> None:
    provider, providers = scripted()
    nid, user = new_id(), f"u-{uuid.uuid4().hex[:8]}"
    await system.client.set_preferences(user, {"channels": {"email": False}})
    async with system.worker(providers) as workers:
        await system.client.enqueue_email({**email(nid), "userId": user})
        row = await system.wait_status(nid, "suppressed")
        history = await finish(system, workers, nid)
    assert provider.calls_for(nid) == [] and row.error_code == "USER_OPTED_OUT"
    await assert_replays(system, history)
    _record(history, "30-0sends-suppressed-completed")


async def test_deferred_by_quiet_hours_then_rescheduled_and_sent(system: System) -> None:
    from datetime import UTC, datetime, timedelta

    provider, providers = scripted()
    nid, user = new_id(), f"u-{uuid.uuid4().hex[:8]}"
    if datetime.now(UTC).second > 50:
        await asyncio.sleep(61 - datetime.now(UTC).second)
    now = datetime.now(UTC)
    window = {
        "start": (now - timedelta(minutes=1)).strftime("%H:%M"),
        "end": (now + timedelta(minutes=1)).strftime("%H:%M"),
    }
    await system.client.set_preferences(user, {"quietHours": window})
    async with system.worker(providers) as workers:
        await system.client.enqueue_email({**email(nid), "userId": user})
        await wait_until(lambda: _deferred(system, nid))
        await system.client.set_preferences(user, {})
        await system.client.reschedule(nid, _at(0.5))
        row = await system.wait_status(nid, "sent")
        history = await finish(system, workers, nid)
    assert provider.delivered[nid] == 1 and row.attempts == 1
    await assert_replays(system, history)
    _record(history, "31-1send-quiet-deferred-rescheduled-completed")


async def _deferred(system: System, nid: str) -> bool:
    row = await system.row(nid)
    return row is not None and row.deferred_reason == "QUIET_HOURS" and row.status == "scheduled"
