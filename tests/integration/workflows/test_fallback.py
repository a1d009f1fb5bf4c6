"""Channel fallback: a push that cannot reach its user (no valid device, unregistered, invalid
recipient) or that its user opted out of is followed by the email its payload names,
`<notificationId>-fallback-email`, once, as a notification of its own that preferences apply to."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.testing import ActivityEnvironment
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

import processes.worker
from activities.fallback import FallbackActivities
from activities.providers import OutboxProvider, Providers
from fakes.fcm import FakeFCM
from notifications.errors import DeliveryError, ErrorCode
from notifications.sql.models import Notification, OutboxMessage
from notifications.sql.rows import input_from_row
from notifications.types import workflow_id_for
from tests.support.replay import assert_replays, finish
from tests.support.scripted import ScriptedProvider, invalid_recipient, unavailable
from tests.support.system import System, wait_until

TO = "patient@example.com"


def new_id() -> str:
    return f"fb-{uuid.uuid4().hex[:12]}"


def push(nid: str, user: str, fallback: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    email = fallback or {"to": TO, "subject": "We could not reach your phone", "text": "Your results are ready."}
    return {
        "notificationId": nid,
        "userId": user,
        "title": "Results",
        "message": "Your results are ready",
        "fallback": {"email": email},
        **extra,
    }


def no_devices() -> DeliveryError:
    return DeliveryError(ErrorCode.NO_VALID_DEVICES, "user has no valid registered device")


def unregistered() -> DeliveryError:
    return DeliveryError(ErrorCode.UNREGISTERED, "device token was unregistered")


def scripted_push(system: System) -> tuple[ScriptedProvider, Providers]:
    """Pushes scripted, emails in the outbox (what was sent, to whom, with which subject)."""
    provider = ScriptedProvider()
    return provider, Providers(email=OutboxProvider(system.db), push=provider)


async def emails(system: System, nid: str) -> list[OutboxMessage]:
    return [m for m in await system.outbox() if m.notification_id == nid]


async def fallen_back(system: System, nid: str, timeout: float = 20) -> Notification:
    """The push's row once it names its fallback email."""

    async def linked() -> bool:
        row = await system.row(nid)
        return row is not None and row.fallback_id is not None

    await wait_until(linked, timeout=timeout)
    row = await system.row(nid)
    assert row is not None
    return row


@pytest.fixture
async def fcm_system(system_with: Callable[..., Any]) -> AsyncIterator[tuple[System, FakeFCM]]:
    async with (
        FakeFCM() as fake,
        system_with(
            push_provider="fcm", fcm_api_url=fake.url, fcm_project_id="uzima-test", circuit_failure_threshold=1000
        ) as system,
    ):
        yield system, fake


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_no_valid_devices_sends_the_fallback_email_once(fcm_system: tuple[System, FakeFCM]) -> None:
    system, fake = fcm_system
    nid, user = new_id(), f"u-{uuid.uuid4().hex[:8]}"  # a user who registered no device
    fallback_id = f"{nid}-fallback-email"
    async with system.worker():
        await system.client.enqueue_push(push(nid, user, tenant="clinic", data={"screen": "results"}), 8)
        pushed = await system.wait_status(nid, "failed")
        email = await system.wait_status(fallback_id, "sent")
        pushed = await fallen_back(system, nid)
        live_push, live_email = await system.client.status(nid), await system.client.status(fallback_id)
    assert pushed.error_code == "NO_VALID_DEVICES" and pushed.status == "failed" and fake.requests == []
    # the records name each other; the email has the push's priority, tenant and user
    assert pushed.fallback_id == fallback_id and pushed.fallback_of is None
    assert email.fallback_of == nid and email.fallback_id is None and email.channel == "email"
    assert (email.priority, email.tenant, email.user_id, email.recipient) == (8, "clinic", user, TO)
    [sent] = await emails(system, fallback_id)
    assert sent.recipient == TO and sent.subject == "We could not reach your phone"
    assert sent.body["text"] == "Your results are ready."
    assert live_push["status"] == "failed" and live_push["fallbackId"] == fallback_id
    assert live_email["status"] == "sent" and live_email["fallbackOf"] == nid
    record, email_record = (await system.client.get(nid)).to_json(), (await system.client.get(fallback_id)).to_json()
    assert record["fallbackId"] == fallback_id and record["fallbackOf"] is None
    assert email_record["fallbackOf"] == nid and email_record["fallbackId"] is None


async def test_unregistered_and_invalid_recipient_fall_back_other_failures_do_not(system: System) -> None:
    provider, providers = scripted_push(system)
    dead, invalid, auth = new_id(), new_id(), new_id()
    provider.fail(dead, unregistered())
    provider.fail(invalid, invalid_recipient())
    provider.fail(auth, DeliveryError(ErrorCode.AUTH_ERROR, "credentials rejected"))
    async with system.worker(providers):
        for nid in (dead, invalid, auth):
            await system.client.enqueue_push(push(nid, "u-1"))
        for nid in (dead, invalid):
            await system.wait_status(f"{nid}-fallback-email", "sent")
            assert (await fallen_back(system, nid)).fallback_id == f"{nid}-fallback-email"
        row = await system.wait_status(auth, "failed")
        await system.temporal.get_workflow_handle(workflow_id_for(auth)).result()
        live = await system.client.status(auth)
    assert row.error_code == "AUTH_ERROR" and row.fallback_id is None and live["fallbackId"] is None
    assert await system.row(f"{auth}-fallback-email") is None


async def test_a_push_the_user_opted_out_of_falls_back_to_email(system: System) -> None:
    provider, providers = scripted_push(system)
    nid, user = new_id(), f"u-{uuid.uuid4().hex[:8]}"
    await system.client.set_preferences(user, {"channels": {"push": False}})
    async with system.worker(providers):
        await system.client.enqueue_push(push(nid, user))
        row = await system.wait_status(nid, "suppressed")
        await system.wait_status(f"{nid}-fallback-email", "sent")
        row = await fallen_back(system, nid)
    assert row.status == "suppressed" and row.error_code == "USER_OPTED_OUT" and provider.calls_for(nid) == []
    assert len(await emails(system, f"{nid}-fallback-email")) == 1


async def test_a_transient_failure_then_a_send_makes_no_fallback(system: System) -> None:
    provider, providers = scripted_push(system)
    nid = new_id()
    provider.fail(nid, unavailable())
    async with system.worker(providers):
        await system.client.enqueue_push(push(nid, "u-2"))
        row = await system.wait_status(nid, "sent")
        await system.temporal.get_workflow_handle(workflow_id_for(nid)).result()
        live = await system.client.status(nid)
    assert row.attempts == 2 and row.fallback_id is None and live["fallbackId"] is None
    assert await system.row(f"{nid}-fallback-email") is None and await emails(system, f"{nid}-fallback-email") == []


async def test_a_typed_fallback_renders_its_template_with_the_push_data(system: System) -> None:
    provider, providers = scripted_push(system)
    nid = new_id()
    provider.fail(nid, no_devices())
    data = {"name": "Amina", "provider_name": "Dr. Otieno", "appointment_time": "Monday 09:00"}
    async with system.worker(providers):
        await system.client.enqueue_push(push(nid, "u-3", {"to": TO, "type": "appointment_reminder"}, data=data))
        email = await system.wait_status(f"{nid}-fallback-email", "sent")
    [sent] = await emails(system, f"{nid}-fallback-email")
    assert email.type == "appointment_reminder"
    assert sent.subject == "Reminder: your appointment on Monday 09:00"
    assert "Hello Amina" in sent.body["html"] and "Dr. Otieno" in sent.body["text"]
    assert sent.body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


async def test_the_fallback_is_enqueued_once_however_often_it_is_asked(system: System) -> None:
    """The activity run again (a retry), with the email's row gone (its start is then refused as a
    duplicate), and the push's workflow reset to re-run its end: one email workflow, one send."""
    provider = ScriptedProvider()
    nid = new_id()
    fallback_id = f"{nid}-fallback-email"
    provider.fail(nid, no_devices(), no_devices())
    async with system.worker(Providers(email=provider, push=provider)):
        await system.client.enqueue_push(push(nid, "u-4"))
        await system.wait_status(fallback_id, "sent")
        handle = system.temporal.get_workflow_handle(workflow_id_for(fallback_id))
        first_run = (await handle.describe()).run_id
        push_row = await fallen_back(system, nid)
        activities = FallbackActivities(system.settings, system.db)
        inp = input_from_row(push_row, system.settings.delivery_policy())  # the fallback is kept in the row
        env = ActivityEnvironment(client=system.temporal)
        assert await env.run(activities.enqueue_fallback, inp) == fallback_id
        async with system.db.sessions() as session:
            await session.execute(delete(Notification).where(Notification.id == fallback_id))
            await session.commit()
        assert await env.run(activities.enqueue_fallback, inp) == fallback_id
        await _reset_to_first_task(system, nid)
        await wait_until(lambda: _called_twice(provider, nid))
        await system.temporal.get_workflow_handle(workflow_id_for(nid)).result()
        live = await system.client.status(nid)
    assert live["status"] == "failed" and live["fallbackId"] == fallback_id
    assert (await handle.describe()).run_id == first_run
    assert provider.delivered[fallback_id] == 1 and len(provider.calls_for(fallback_id)) == 1


async def test_a_manual_retry_of_the_push_keeps_its_fallback_and_finds_the_same_email(system: System) -> None:
    provider = ScriptedProvider()
    nid = new_id()
    fallback_id = f"{nid}-fallback-email"
    provider.fail(nid, no_devices(), no_devices())
    async with system.worker(Providers(email=provider, push=provider)):
        await system.client.enqueue_push(push(nid, "u-7"))
        await system.wait_status(fallback_id, "sent")
        await fallen_back(system, nid)
        await system.temporal.get_workflow_handle(workflow_id_for(nid)).result()
        retried = await system.client.retry(nid)
        await system.temporal.get_workflow_handle(workflow_id_for(nid), run_id=retried.run_id).result()
        live = await system.client.status(nid)
    assert len(provider.calls_for(nid)) == 2 and live["status"] == "failed" and live["fallbackId"] == fallback_id
    assert provider.delivered[fallback_id] == 1 and len(provider.calls_for(fallback_id)) == 1


async def _called_twice(provider: ScriptedProvider, nid: str) -> bool:
    return len(provider.calls_for(nid)) >= 2


async def _reset_to_first_task(system: System, nid: str) -> None:
    """A new run of the push's workflow from its first workflow task: its end, and its fallback, again."""
    handle = system.temporal.get_workflow_handle(workflow_id_for(nid))
    history = await handle.fetch_history()
    first = next(e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    described = await handle.describe()
    await system.temporal.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=system.temporal.namespace,
            workflow_execution=WorkflowExecution(workflow_id=handle.id, run_id=described.run_id),
            reason="test: replay the push's end",
            workflow_task_finish_event_id=first.event_id,
            request_id=uuid.uuid4().hex,
        )
    )


async def test_a_fallback_id_taken_by_another_notification_is_not_reused(system: System) -> None:
    provider, providers = scripted_push(system)
    nid = new_id()
    provider.fail(nid, no_devices())
    async with system.worker(providers):
        taken = {"notificationId": f"{nid}-fallback-email", "to": TO, "subject": "s", "text": "t"}
        await system.client.enqueue_email(taken)
        await system.client.enqueue_push(push(nid, "u-5"))
        await system.temporal.get_workflow_handle(workflow_id_for(nid)).result()
        live = await system.client.status(nid)
    row = await system.row(nid)
    assert row is not None and row.status == "failed" and row.fallback_id is None and live["fallbackId"] is None
    assert (await system.row(f"{nid}-fallback-email")).fallback_of is None  # type: ignore[union-attr]


# -- the fallback is an email like any other: its user's preferences and quiet hours apply ------------
async def test_a_user_opted_out_of_email_gets_no_fallback_either(system: System) -> None:
    _, providers = scripted_push(system)
    nid, user = new_id(), f"u-{uuid.uuid4().hex[:8]}"
    await system.client.set_preferences(user, {"channels": {"push": False, "email": False}})
    async with system.worker(providers):
        await system.client.enqueue_push(push(nid, user))
        email = await system.wait_status(f"{nid}-fallback-email", "suppressed")
    assert email.error_code == "USER_OPTED_OUT" and email.fallback_of == nid
    assert (await system.row(nid)).status == "suppressed"  # type: ignore[union-attr]
    assert await emails(system, f"{nid}-fallback-email") == []


async def test_the_fallback_waits_for_the_end_of_email_quiet_hours(system: System) -> None:
    provider, providers = scripted_push(system)
    nid, user = new_id(), f"u-{uuid.uuid4().hex[:8]}"
    provider.fail(nid, no_devices())
    now = datetime.now(UTC)
    window = {
        "start": (now - timedelta(minutes=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=1)).strftime("%H:%M"),
    }
    await system.client.set_preferences(user, {"quietHours": {**window, "channels": ["email"]}})
    async with system.worker(providers):
        await system.client.enqueue_push(push(nid, user))
        await system.wait_status(nid, "failed")

        async def deferred() -> bool:
            row = await system.row(f"{nid}-fallback-email")
            return row is not None and row.status == "scheduled" and row.deferred_reason == "QUIET_HOURS"

        await wait_until(deferred)
        live = await system.client.status(f"{nid}-fallback-email")
    assert live["status"] == "scheduled" and live["deferredReason"] == "QUIET_HOURS" and live["fallbackOf"] == nid
    assert await emails(system, f"{nid}-fallback-email") == []


# -- determinism: the fallback's history replays, and is kept for the unit tests -----------------------
async def test_a_fallback_history_replays(system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processes.worker, "workflow_runner", SandboxedWorkflowRunner)  # the re-importing sandbox
    provider, providers = scripted_push(system)
    nid = new_id()
    provider.fail(nid, no_devices())
    async with system.worker(providers) as workers:
        await system.client.enqueue_push(push(nid, "u-6"))
        history = await finish(system, workers, nid)
        await system.wait_status(f"{nid}-fallback-email", "sent")
    assert (await system.row(nid)).fallback_id == f"{nid}-fallback-email"  # type: ignore[union-attr]
    await assert_replays(system, history)
    prefix = os.environ.get("RECORD_HISTORIES")
    if prefix:
        folder = Path(__file__).resolve().parents[2] / "unit" / "workflows" / "histories"
        (folder / f"{prefix}-32-1send-failed-fallback-completed.json").write_text(history.to_json())
