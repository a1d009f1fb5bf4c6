"""Pause and resume, per notification and per queue, as with a paused BullMQ queue:
no send attempt starts while paused (retries that come due and new notifications included),
sends in flight finish, and after resume every held notification is delivered once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from activities.providers import Providers
from notifications.types import PauseRequest
from tests.support.scripted import ScriptedProvider, unavailable
from tests.support.system import System, make_settings, make_system, wait_until
from workflows.notification import NotificationWorkflow


def email(nid: str) -> dict[str, object]:
    return {"notificationId": nid, "to": "patient@example.com", "subject": "Hello", "html": "<p>Hi</p>"}


def push(nid: str) -> dict[str, object]:
    return {"notificationId": nid, "userId": "user-1", "title": "Hello", "message": "Hi"}


def new_id() -> str:
    return f"p-{uuid.uuid4().hex[:12]}"


async def test_pause_one_notification_during_retry_backoff(slow_retry_system: System) -> None:
    system = slow_retry_system
    provider = ScriptedProvider()
    nid = new_id()
    provider.fail(nid, unavailable())
    async with system.worker(Providers(email=provider, push=provider)):
        await system.client.enqueue_email(email(nid))
        await wait_until(lambda: _has_calls(provider, nid, 1))
        await system.client.pause(nid, reason="maintenance")
        await wait_until(lambda: _is_paused(system, nid))
        await asyncio.sleep(2.0)  # the retry was due after ~1.0-1.3 s
        assert len(provider.calls_for(nid)) == 1
        status = await system.client.status(nid)
        assert status["paused"] is True and status["pauseReason"] == "maintenance"
        assert status["status"] == "retrying" and status["attempts"] == 1

        await system.client.resume(nid)
        row = await system.wait_status(nid, "sent")
    assert len(provider.calls_for(nid)) == 2 and provider.delivered[nid] == 1
    assert row.attempts == 2 and row.paused is False
    assert [(a.attempt, a.outcome) for a in await system.attempts(nid)] == [(1, "transient_error"), (2, "sent")]


async def test_send_in_flight_finishes_when_paused(system: System) -> None:
    provider = ScriptedProvider(gate=asyncio.Event())
    nid = new_id()
    async with system.worker(Providers(email=provider, push=provider)):
        await system.client.enqueue_email(email(nid))
        await asyncio.wait_for(provider.entered.wait(), 10)
        await system.client.pause(nid)
        await asyncio.sleep(0.3)
        provider.gate.set()  # type: ignore[union-attr]
        row = await system.wait_status(nid, "sent")
    assert provider.delivered[nid] == 1 and len(provider.calls_for(nid)) == 1
    assert row.attempts == 1


@pytest.mark.parametrize("resume_by", ["client", "temporal signal"])
async def test_pause_while_waiting_for_a_provider_slot_sends_nothing(system: System, resume_by: str) -> None:
    """With concurrency 1 the second send waits for the slot; pausing it there starts no attempt.

    Resumed by a bare `resume` signal (no SQL write), it is still sent: the workflow tells the
    attempt that the SQL pause flag it finds is stale."""
    provider = ScriptedProvider(gate=asyncio.Event())
    first, second = new_id(), new_id()
    async with system.worker(Providers(email=provider, push=provider), email_concurrency=1):
        await system.client.enqueue_email(email(first))
        await asyncio.wait_for(provider.entered.wait(), 10)  # the first send holds the only slot
        await system.client.enqueue_email(email(second))
        await asyncio.sleep(0.5)  # the second send is started and waits for the slot
        await system.client.pause(second)
        await wait_until(lambda: _is_paused(system, second))
        provider.gate.set()  # type: ignore[union-attr]
        await system.wait_status(first, "sent")
        await asyncio.sleep(1.0)
        assert not provider.calls_for(second)
        assert (await system.client.status(second))["paused"] is True
        assert await system.attempts(second) == []

        if resume_by == "client":
            await system.client.resume(second)
        else:
            await system.client.handle(second).signal(NotificationWorkflow.resume, PauseRequest())
        row = await system.wait_status(second, "sent")
    assert provider.delivered[second] == 1 and len(provider.calls_for(second)) == 1
    assert row.attempts == 1 and row.paused is False


async def test_pause_reaching_a_long_send_lets_it_finish(system_with: Callable[..., Any]) -> None:
    """A send that runs past the workflow task's heartbeat (8 s) lets the `pause` signal in while it
    is still calling the provider; the workflow then cancels the local activity, and the call must
    still finish and count as sent, not be cut off half-way."""
    provider = ScriptedProvider(gate=asyncio.Event())
    nid = new_id()
    async with system_with(send_timeout_seconds=30) as system, system.worker(Providers(email=provider, push=provider)):
        await system.client.enqueue_email(email(nid))
        await asyncio.wait_for(provider.entered.wait(), 10)
        await system.client.pause(nid)
        await asyncio.sleep(9.5)  # past the heartbeat: the workflow has seen the pause and cancelled the send
        provider.gate.set()  # type: ignore[union-attr]
        row = await system.wait_status(nid, "sent")
    assert provider.delivered[nid] == 1 and len(provider.calls_for(nid)) == 1
    assert row.attempts == 1


async def test_stale_not_paused_answer_still_holds_the_send(system: System) -> None:
    """The client trusts "queue not paused" for a second; a pause made elsewhere meanwhile still holds."""
    from notifications.client import NotificationClient

    other = NotificationClient(system.temporal, system.db, system.settings)  # e.g. the API process
    provider = ScriptedProvider()
    first, late = new_id(), new_id()
    async with system.worker(Providers(email=provider, push=provider)):
        await system.client.enqueue_email(email(first))  # caches "email not paused"
        await other.pause_queue("email", reason="incident")
        await system.client.enqueue_email(email(late))  # within the second: starts as not held
        await system.wait_status(first, "sent", "queued", "retrying")
        await asyncio.sleep(1.0)
        assert not provider.calls_for(late)
        await other.resume_queue("email")
        await system.wait_status(late, "sent")
    assert provider.delivered[late] == 1 and len(provider.calls_for(late)) == 1


async def test_queue_pause_holds_new_and_due_retries_until_resume(slow_retry_system: System) -> None:
    system = slow_retry_system
    provider = ScriptedProvider()
    retrying = new_id()
    provider.fail(retrying, unavailable())
    async with system.worker(Providers(email=provider, push=provider)):
        await system.client.enqueue_email(email(retrying))
        await wait_until(lambda: _has_calls(provider, retrying, 1))

        states = await system.client.pause_queue("email", reason="provider incident", actor="test")
        assert states["email"]["paused"] is True and states["push"]["paused"] is False
        held = [new_id() for _ in range(3)]
        for nid in held:
            await system.client.enqueue_email(email(nid))
        other = new_id()
        await system.client.enqueue_push(push(other))
        await system.wait_status(other, "sent")  # the push queue is not paused

        await asyncio.sleep(2.0)  # the retry came due ~1 s after the first attempt
        assert len(provider.calls_for(retrying)) == 1
        assert all(not provider.calls_for(nid) for nid in held)
        status = await system.client.status(held[0])
        assert status["queuePaused"] is True and status["status"] in ("queued", "retrying")

        states = await system.client.resume_queue("email", actor="test")
        assert states["email"]["paused"] is False
        for nid in [retrying, *held]:
            await system.wait_status(nid, "sent")
    for nid in held:
        assert provider.delivered[nid] == 1 and len(provider.calls_for(nid)) == 1
    assert provider.delivered[retrying] == 1 and len(provider.calls_for(retrying)) == 2
    # attempts are counted across the pause: the held retry is attempt 2, not a new attempt 1
    assert [a.attempt for a in await system.attempts(retrying)] == [1, 2]


async def test_queue_pause_survives_restart_of_every_process(
    temporal_address: str, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(temporal_address, database_url, tmp_path)
    nid = new_id()
    provider = ScriptedProvider()
    async with make_system(settings) as first:
        await first.client.pause_queue("all", reason="night")
        async with first.worker(Providers(email=provider, push=provider)):
            await first.client.enqueue_email(email(nid))
            await asyncio.sleep(1.0)
        assert not provider.calls

        # New client, new workers, new database connections: still paused.
        from temporalio.client import Client

        from notifications.client import NotificationClient
        from notifications.sql.engine import Database

        temporal = await Client.connect(settings.temporal_address)
        db = Database.from_settings(settings)
        second = System(settings, temporal, db, NotificationClient(temporal, db, settings))
        try:
            assert (await second.client.queue_states())["email"]["paused"] is True
            async with second.worker(Providers(email=provider, push=provider)):
                await asyncio.sleep(1.0)
                assert not provider.calls
                await second.client.resume_queue("all")
                await second.wait_status(nid, "sent")
        finally:
            await db.dispose()
    assert provider.delivered[nid] == 1


async def test_resume_signals_each_held_notification_once(system: System) -> None:
    """The resume's second pass (for notifications started too recently to be listed) skips those the
    first pass reached: otherwise a resumed backlog of 10,000 costs 10,000 more history events."""
    held = [new_id() for _ in range(3)]
    await system.client.pause_queue("push", actor="test")
    for nid in held:
        await system.client.enqueue_push(push(nid))
    ids = ", ".join(f'"{system.client.handle(nid).id}"' for nid in held)

    async def all_listed() -> bool:
        listed = [e async for e in system.temporal.list_workflows(f"WorkflowId IN ({ids})")]
        return len(listed) == len(held)

    await wait_until(all_listed)
    await system.client.resume_queue("push", actor="test")  # no worker runs: all three are still held
    for nid in held:
        history = await system.client.handle(nid).fetch_history()
        signals = [
            e.workflow_execution_signaled_event_attributes.signal_name
            for e in history.events
            if e.HasField("workflow_execution_signaled_event_attributes")
        ]
        assert signals == ["resume"], nid


async def test_resume_reaching_an_attempt_that_read_the_old_flag(
    system_with: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A send read "queue paused" just before the resume cleared it, and the resume signal reached the
    workflow before the send's answer: the workflow tries again at once instead of holding until the
    recheck timer (here 120 s). The send stays in its attempt start for 9 s so that the signal comes
    in a workflow-task heartbeat while the local activity is still running."""
    from notifications.sql import store

    real_begin = store.begin_attempt
    stalled = asyncio.Event()

    async def stall_when_paused(*args: Any, **kwargs: Any) -> Any:
        start = await real_begin(*args, **kwargs)
        if start is None and not stalled.is_set():
            stalled.set()
            await asyncio.sleep(9)
        return start

    monkeypatch.setattr(store, "begin_attempt", stall_when_paused)
    provider = ScriptedProvider()
    nid = new_id()
    async with system_with(queue_pause_recheck_seconds=120) as system:
        await store.set_queue_paused(system.db, "email", True, reason=None, actor="test")  # no signal
        async with system.worker(Providers(email=provider, push=provider)):
            await _unaware_client(system).enqueue_email(email(nid))
            await asyncio.wait_for(stalled.wait(), 20)
            await system.client.resume_queue("email")
            await system.wait_status(nid, "sent", timeout=30)
    assert provider.delivered[nid] == 1


async def test_queue_pause_without_signal_still_holds_sends(system: System) -> None:
    """The SQL flag alone holds sends (a workflow the pause signal missed): the attempt is not made."""
    from notifications.sql import store

    provider = ScriptedProvider()
    nid = new_id()
    await store.set_queue_paused(system.db, "email", True, reason=None, actor="test")
    async with system.worker(Providers(email=provider, push=provider)):
        await _unaware_client(system).enqueue_email(email(nid))
        await wait_until(lambda: _queue_paused_in_query(system, nid))
        assert not provider.calls
        row = await system.row(nid)
        assert row is not None and row.attempts == 0
        await system.client.resume_queue("email")
        await system.wait_status(nid, "sent")
    assert provider.delivered[nid] == 1


def _unaware_client(system: System) -> Any:
    """A client that enqueues bypassing its paused-at-start hint (as if the pause came just after)."""
    from notifications.client import NotificationClient

    class Unaware(NotificationClient):
        async def _start(self, inp, **kw):  # type: ignore[no-untyped-def]
            inp.startPaused = False
            return await super()._start(inp, **kw)

    return Unaware(system.temporal, system.db, system.settings)


async def _has_calls(provider: ScriptedProvider, nid: str, count: int) -> bool:
    return len(provider.calls_for(nid)) >= count


async def _is_paused(system: System, nid: str) -> bool:
    row = await system.row(nid)
    return bool(row and row.paused)


async def _queue_paused_in_query(system: System, nid: str) -> bool:
    try:
        return bool((await system.client.status(nid))["queuePaused"])
    except Exception:
        return False
