"""When to send: a scheduled send waits on a durable workflow timer, `reschedule` moves it, `cancel`
answers only once the notification can no longer be sent, and `expiresAt` ends it unsent."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata

from activities.providers import Providers
from notifications.errors import NotificationConflictError, NotificationUnavailableError, NotificationValidationError
from notifications.schemas import as_utc
from notifications.sql import queries
from notifications.types import RescheduleRequest
from tests.support.scripted import ScriptedProvider, unavailable
from tests.support.system import System, wait_until
from workflows.notification import NotificationWorkflow


def at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def email(nid: str, **when: Any) -> dict[str, Any]:
    return {"notificationId": nid, "to": "patient@example.com", "subject": "Reminder", "html": "<p>Hi</p>", **when}


def new_id() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_scheduled_send_waits_for_its_time(system: System, provider: ScriptedProvider) -> None:
    nid, send_at = new_id(), at(4)
    async with system.worker(Providers(email=provider, push=provider)):
        record = await system.client.enqueue_email(email(nid, sendAt=send_at))
        assert record.status == "scheduled" and record.send_at == datetime.fromisoformat(send_at)
        row = await system.row(nid)
        assert row is not None and row.status == "scheduled"
        live = await system.client.status(nid)
        assert live["status"] == "scheduled" and datetime.fromisoformat(live["sendAt"]) == record.send_at
        query = (
            f'WorkflowId = "notification-{nid}" AND NotificationStatus = "scheduled" AND NotificationSendAt > "{at(0)}"'
        )
        await wait_until(lambda: _count(system, query, 1))
        metadata = await system.client.handle(nid).query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        assert f"**Scheduled for:** {send_at}" in metadata.current_details  # the Web UI's details
        stats = await queries.queue_stats(system.db)
        assert stats["email"]["delayed"] == 1
        if datetime.now(UTC) < datetime.fromisoformat(send_at) - timedelta(seconds=0.2):
            assert provider.calls_for(nid) == []  # not before its time (the check of record: below)
        row = await system.wait_status(nid, "sent", timeout=15)
    assert provider.delivered[nid] == 1
    assert row.completed_at is not None and as_utc(row.completed_at) >= datetime.fromisoformat(send_at)


async def test_a_scheduled_send_survives_a_worker_restart(system: System, providers: Providers) -> None:
    nid = new_id()
    async with system.worker(providers):
        await system.client.enqueue_email(email(nid, sendAt=at(2)))
        await wait_until(lambda: _live_status(system, nid, "scheduled"))
    await asyncio.sleep(3)  # due while no worker runs
    assert (await system.row(nid)).status == "scheduled"  # type: ignore[union-attr]
    async with system.worker(providers):
        # Up to the sticky queue's 10 s when the first worker's shutdown did not release it
        await system.wait_status(nid, "sent", timeout=60)  # and far longer when the machine is fully loaded
    assert providers.email.delivered[nid] == 1  # type: ignore[attr-defined]


async def test_reschedule_earlier_and_later(system: System, provider: ScriptedProvider) -> None:
    """Also a pause while scheduled: it holds the notification past its sendAt until resumed."""
    early, late, held = new_id(), new_id(), new_id()
    async with system.worker(Providers(email=provider, push=provider)):
        await system.client.enqueue_email(email(early, sendAt=at(3600)))
        await system.client.enqueue_email(email(late, sendAt=at(4)))
        await system.client.enqueue_email(email(held, sendAt=at(3600)))
        await system.client.pause(held, reason="hold")  # paused first, then made due: however slow the machine
        await system.client.reschedule(held, at(1.5))
        moved = await system.client.reschedule(early, at(1))
        assert moved.status == "scheduled" and moved.send_at is not None
        later = await system.client.reschedule(late, datetime.now(UTC) + timedelta(hours=2))
        assert later.send_at is not None and later.send_at > datetime.now(UTC) + timedelta(hours=1)
        await system.wait_status(early, "sent", timeout=15)
        await asyncio.sleep(4)  # past the old time of `late`, and past the time of `held`
        assert provider.calls_for(late) == [] and provider.calls_for(held) == []
        row = await system.row(held)
        assert row is not None and row.paused and row.status == "queued"  # due, held by the pause
        await system.client.resume(held)
        live = await system.client.status(late)
        assert live["status"] == "scheduled" and live["sendAt"].startswith(later.send_at.isoformat()[:16])
        cancelled = await system.client.cancel(late)  # cancel while scheduled: answered at once
        assert cancelled.status == "cancelled"
        await system.wait_status(held, "sent", timeout=15)
    assert (await system.row(late)).status == "cancelled"  # type: ignore[union-attr]
    assert provider.calls_for(late) == [] and provider.delivered[early] == 1 and provider.delivered[held] == 1


async def test_reschedule_and_cancel_refused_once_too_late(slow_retry_system: System) -> None:
    system = slow_retry_system
    provider = ScriptedProvider()
    retrying, sent = new_id(), new_id()
    provider.fail(retrying, unavailable(), unavailable())
    async with system.worker(Providers(email=provider, push=provider)):
        await system.client.enqueue_email(email(retrying))
        await system.client.enqueue_email(email(sent))
        await system.wait_status(sent, "sent")
        await wait_until(lambda: _calls(provider, retrying, 1))
        with pytest.raises(NotificationConflictError, match="attempt has already started"):
            await system.client.reschedule(retrying, at(60))
        with pytest.raises(NotificationConflictError, match="already sent"):
            await system.client.cancel(sent)
        with pytest.raises(NotificationConflictError):
            await system.client.reschedule(sent, at(60))
        # between two attempts (a backoff pending) a cancel lands at once: no further attempt
        record = await system.client.cancel(retrying)
        assert record.status == "cancelled"
        await asyncio.sleep(1.5)
    assert len(provider.calls_for(retrying)) == 1


async def test_a_cancel_meeting_a_send_in_flight_tells_what_happened(system: System) -> None:
    """The send in flight finishes: it delivered, so the cancel is refused (409), not 'cancelled'."""
    provider = ScriptedProvider(gate=asyncio.Event())
    nid = new_id()
    async with system.worker(Providers(email=provider, push=provider)):
        await system.client.enqueue_email(email(nid))
        await asyncio.wait_for(provider.entered.wait(), 15)
        cancel = asyncio.create_task(system.client.cancel(nid))
        await asyncio.sleep(0.5)
        assert not cancel.done()  # it waits for the answer of the send in flight
        provider.gate.set()  # type: ignore[union-attr]
        with pytest.raises(NotificationConflictError, match="sent"):
            await cancel
        row = await system.wait_status(nid, "sent")
    assert provider.delivered[nid] == 1 and row.status == "sent"


async def test_expiry_while_scheduled_too_late(system: System, provider: ScriptedProvider) -> None:
    nid = new_id()
    async with system.worker(Providers(email=provider, push=provider)):
        await system.client.enqueue_email(email(nid, sendAt=at(3), expiresAt=at(4)))
        # The client refuses a time past expiresAt (422); the update itself, as the temporal CLI
        # sends it, takes it, and the notification then expires unsent.
        await system.client.handle(nid).execute_update(NotificationWorkflow.reschedule, RescheduleRequest(at(30)))
        row = await system.wait_status(nid, "expired", timeout=15)
        live = await system.client.status(nid)
    assert row.error_code == "EXPIRED" and row.completed_at is not None
    assert live["status"] == "expired" and live["errorCode"] == "EXPIRED"
    assert provider.calls_for(nid) == []
    assert (await queries.queue_stats(system.db))["email"]["expired"] >= 1


async def test_expiry_while_paused_and_while_queue_paused(system: System, provider: ScriptedProvider) -> None:
    own, queued = new_id(), new_id()
    async with system.worker(Providers(email=provider, push=provider)):
        await system.client.pause_queue("email", reason="test", actor="test")
        try:
            await system.client.enqueue_email(email(queued, expiresAt=at(2)))
            await system.client.enqueue_email(email(own, sendAt=at(2.5), expiresAt=at(4)))
            await system.client.pause(own, reason="hold")
            await system.wait_status(queued, "expired", timeout=15)
            await system.wait_status(own, "expired", timeout=15)
        finally:
            await system.client.resume_queue("email", actor="test")
        await asyncio.sleep(1)
    assert provider.calls_for(own) == [] and provider.calls_for(queued) == []


async def test_expiry_while_retrying(slow_retry_system: System) -> None:
    system = slow_retry_system
    provider = ScriptedProvider(always_fail=unavailable())
    nid = new_id()
    async with system.worker(Providers(email=provider, push=provider)):
        await system.client.enqueue_email(email(nid, expiresAt=at(2.5)))
        row = await system.wait_status(nid, "expired", timeout=15)
        calls = len(provider.calls_for(nid))
        await asyncio.sleep(1.5)
    assert 1 <= calls < 5 and len(provider.calls_for(nid)) == calls  # no attempt after it expired
    assert row.error_code == "EXPIRED"


async def test_bad_times_are_refused_with_the_field(system: System) -> None:
    client = system.client
    cases = [
        ({"sendAt": "2030-01-01T09:00:00"}, "sendAt"),  # no offset
        ({"sendAt": "tomorrow"}, "sendAt"),
        ({"sendAt": (datetime.now(UTC) + timedelta(days=400)).isoformat()}, "sendAt"),  # past MAX_SCHEDULE_DAYS
        ({"sendAt": at(60), "expiresAt": at(30)}, "expiresAt"),  # before sendAt
        ({"expiresAt": at(-5)}, "expiresAt"),  # already past
        ({"expiresAt": "9999-12-31T23:00:00-05:00"}, "expiresAt"),  # past MAX_SCHEDULE_DAYS (and year 9999)
    ]
    for when, field in cases:
        with pytest.raises(NotificationValidationError) as caught:
            await client.enqueue_email(email(new_id(), **when))
        assert [e["field"] for e in caught.value.errors] == [field], (when, caught.value.errors)
    with pytest.raises(NotificationValidationError):
        await client.reschedule("any", "2030-01-01 09:00")
    nid = new_id()
    await client.enqueue_email(email(nid, sendAt=at(600), expiresAt=at(1200)))
    with pytest.raises(NotificationValidationError) as caught:  # it would only expire unsent
        await client.reschedule(nid, at(1800))
    assert [e["field"] for e in caught.value.errors] == ["sendAt"]


async def test_a_send_at_in_the_past_means_now(system: System, provider: ScriptedProvider) -> None:
    nid = new_id()
    async with system.worker(Providers(email=provider, push=provider)):
        record = await system.client.enqueue_email(email(nid, sendAt=at(-3600)))
        assert record.status == "queued" and record.send_at is None
        await system.wait_status(nid, "sent")


async def _count(system: System, query: str, expected: int) -> bool:
    return (await system.temporal.count_workflows(query)).count == expected


async def _live_status(system: System, nid: str, status: str) -> bool:
    return (await system.client.status(nid))["status"] == status


async def _calls(provider: ScriptedProvider, nid: str, n: int) -> bool:
    return len(provider.calls_for(nid)) >= n


async def test_a_cancel_meeting_a_final_failure_in_flight_says_failed(system: System) -> None:
    """The send in flight failed for good (a bad address): SQL, the workflow and the caller agree
    on `failed`, and the cancel is refused (409) rather than told `cancelled`."""
    from tests.support.scripted import invalid_recipient

    provider = ScriptedProvider(gate=asyncio.Event())
    nid = new_id()
    provider.fail(nid, invalid_recipient())
    async with system.worker(Providers(email=provider, push=provider)):
        await system.client.enqueue_email(email(nid))
        await asyncio.wait_for(provider.entered.wait(), 15)
        cancel = asyncio.create_task(system.client.cancel(nid))
        await asyncio.sleep(0.5)
        provider.gate.set()  # type: ignore[union-attr]
        with pytest.raises(NotificationConflictError, match="failed"):
            await cancel
        row = await system.wait_status(nid, "failed")
        live = await system.client.status(nid)
    assert row.error_code == "INVALID_RECIPIENT" and live["status"] == "failed"


async def test_a_cancel_no_worker_answers_is_unavailable_not_a_hang(system_with: Callable[..., Any]) -> None:
    async with system_with(send_timeout_seconds=1, query_timeout_seconds=1) as system:
        nid = new_id()
        await system.client.enqueue_email(email(nid, sendAt=at(600)))  # no worker runs
        started = asyncio.get_running_loop().time()
        with pytest.raises(NotificationUnavailableError) as caught:
            await system.client.cancel(nid)
        assert asyncio.get_running_loop().time() - started < 10
        assert caught.value.service == "temporal" and caught.value.notification_id == nid
        async with system.worker(Providers(email=ScriptedProvider(), push=ScriptedProvider())):
            # the same cancel, repeated once a worker runs, learns the outcome of the first
            record = await system.client.cancel(nid)
        assert record.status == "cancelled"


async def test_a_retry_keeps_the_expiry(system: System, provider: ScriptedProvider) -> None:
    """A failed notification retried after its expiresAt is not sent late: the new run expires."""
    from tests.support.scripted import invalid_recipient

    nid = new_id()
    provider.fail(nid, invalid_recipient())
    # Time enough for the first attempt on a loaded machine: it must fail, not expire.
    expires_at = at(5)
    async with system.worker(Providers(email=provider, push=provider)):
        await system.client.enqueue_email(email(nid, expiresAt=expires_at))
        await system.wait_status(nid, "failed")
        await asyncio.sleep((datetime.fromisoformat(expires_at) - datetime.now(UTC)).total_seconds() + 0.3)
        await system.client.retry(nid)
        row = await system.wait_status(nid, "expired", timeout=15)
    assert row.error_code == "EXPIRED" and len(provider.calls_for(nid)) == 1 and not provider.delivered[nid]
