"""Retries as the seed promises: exponential backoff with jitter, 5 attempts, permanent errors at once."""

from __future__ import annotations

import asyncio
import itertools
import uuid

import pytest

from activities.providers import Providers
from notifications.errors import NotificationValidationError
from tests.support.scripted import ScriptedProvider, invalid_recipient, unavailable
from tests.support.system import System, wait_until

BASE_MS = 100  # test_settings: base_delay_ms=100, jitter 30 %


def email(nid: str | None = None, **extra: object) -> dict[str, object]:
    payload: dict[str, object] = {"to": "patient@example.com", "subject": "Hello", "html": "<p>Hi</p>", **extra}
    if nid:
        payload["notificationId"] = nid
    return payload


def new_id() -> str:
    return f"n-{uuid.uuid4().hex[:12]}"


async def test_transient_failures_are_retried_with_jittered_backoff(system: System) -> None:
    provider = ScriptedProvider()
    nid = new_id()
    provider.fail(nid, unavailable(), unavailable(), unavailable())
    async with system.worker(Providers(email=provider, push=provider)):
        await system.client.enqueue_email(email(nid))
        row = await system.wait_status(nid, "sent")
        status = await system.client.status(nid)

    assert len(provider.calls_for(nid)) == 4
    log = await system.attempts(nid)
    for failed, following in itertools.pairwise(log):
        if failed.outcome != "transient_error":
            continue
        exponential = BASE_MS * 2 ** (failed.attempt - 1)
        chosen = failed.details["retryDelayMs"]
        # the seed's formula: min(base * 2^(attempt-1) + jitter, max), jitter up to 30 %
        assert exponential <= chosen <= exponential * 1.3 + 1, (failed.attempt, chosen)
        gap_ms = (following.started_at - failed.finished_at).total_seconds() * 1000
        # Temporal waits exactly that long (never less; more only by scheduling latency)
        assert chosen * 0.95 <= gap_ms <= chosen + 1000, (failed.attempt, chosen, gap_ms)
    assert row.attempts == 4 and row.status == "sent" and row.error_code is None
    outcomes = [(a.attempt, a.outcome, a.error_code) for a in await system.attempts(nid)]
    assert outcomes == [
        (1, "transient_error", "PROVIDER_UNAVAILABLE"),
        (2, "transient_error", "PROVIDER_UNAVAILABLE"),
        (3, "transient_error", "PROVIDER_UNAVAILABLE"),
        (4, "sent", None),
    ]
    assert status["status"] == "sent" and status["attempts"] == 4
    assert provider.delivered[nid] == 1


async def test_jitter_spreads_retries(system: System) -> None:
    """Jitter is real: the first retry delays of several notifications are not all equal."""
    provider = ScriptedProvider()
    ids = [new_id() for _ in range(6)]
    for nid in ids:
        provider.fail(nid, unavailable())
    async with system.worker(Providers(email=provider, push=provider)):
        for nid in ids:
            await system.client.enqueue_email(email(nid))
        for nid in ids:
            await system.wait_status(nid, "sent")

    delays = [(await system.attempts(nid))[0].details["retryDelayMs"] for nid in ids]
    assert all(BASE_MS <= d <= BASE_MS * 1.3 + 1 for d in delays), delays
    assert len(set(delays)) > 1, delays


async def test_always_failing_notification_fails_after_exactly_five_attempts(system: System) -> None:
    provider = ScriptedProvider(always_fail=unavailable())
    nid = new_id()
    async with system.worker(Providers(email=provider, push=provider)):
        await system.client.enqueue_email(email(nid))
        row = await system.wait_status(nid, "failed", timeout=30)
        result = await system.client.handle(nid).result()

        async def visible() -> bool:
            found = await system.temporal.count_workflows(
                f'WorkflowId = "notification-{nid}" AND NotificationStatus = "failed"'
            )
            return found.count == 1

        await wait_until(visible, timeout=10)

    assert len(provider.calls_for(nid)) == 5
    assert row.attempts == 5
    assert row.error_code == "PROVIDER_UNAVAILABLE" and row.error_message == "provider answered 503"
    assert row.completed_at is not None and row.last_attempt_at is not None and row.next_retry_at is None
    log = await system.attempts(nid)
    assert [a.attempt for a in log] == [1, 2, 3, 4, 5]
    assert all(a.outcome == "transient_error" and a.finished_at for a in log)
    assert result["status"] == "failed" and result["attempts"] == 5
    assert result["errorCode"] == "PROVIDER_UNAVAILABLE"


async def test_permanent_error_fails_after_one_attempt(system: System) -> None:
    provider = ScriptedProvider()
    nid = new_id()
    provider.fail(nid, invalid_recipient())
    async with system.worker(Providers(email=provider, push=provider)):
        await system.client.enqueue_email(email(nid))
        row = await system.wait_status(nid, "failed")
    assert len(provider.calls_for(nid)) == 1
    assert row.attempts == 1 and row.error_code == "INVALID_RECIPIENT"
    [attempt] = await system.attempts(nid)
    assert attempt.outcome == "permanent_error"


async def test_same_notification_id_twice_is_one_delivery(system: System) -> None:
    provider = ScriptedProvider()
    nid = new_id()
    async with system.worker(Providers(email=provider, push=provider)):
        first, second = await asyncio.gather(
            system.client.enqueue_email(email(nid)), system.client.enqueue_email(email(nid))
        )
        await system.wait_status(nid, "sent")
        again = await system.client.enqueue_email(email(nid))
    assert first.notification_id == second.notification_id == again.notification_id == nid
    assert again.status == "sent"
    assert len(provider.calls_for(nid)) == 1 and provider.delivered[nid] == 1
    executions = [e async for e in system.temporal.list_workflows(f'WorkflowId = "notification-{nid}"')]
    assert len(executions) == 1


@pytest.mark.parametrize(
    ("payload", "priority", "field"),
    [
        (email(to="not-an-address"), 5, "to"),
        (email(), 11, "priority"),
        (email(), 0, "priority"),
        ({"to": "a@example.com", "html": "<p>x</p>"}, 5, "subject"),
        ({"to": "a@example.com", "subject": "x"}, 5, "html"),
        (email(colour="red"), 5, "colour"),
        (email(notificationId="has space"), 5, "notificationId"),
    ],
)
async def test_bad_payload_is_rejected_before_anything_is_stored(
    system: System, payload: dict[str, object], priority: int, field: str
) -> None:
    with pytest.raises(NotificationValidationError) as info:
        await system.client.enqueue_email(payload, priority)
    assert field in [e["field"] for e in info.value.errors]
    async with system.db.sessions() as session:
        from sqlalchemy import func, select

        from notifications.sql.models import Notification

        assert await session.scalar(select(func.count()).select_from(Notification)) == 0


async def test_bad_push_payload_names_the_field(system: System) -> None:
    with pytest.raises(NotificationValidationError) as info:
        await system.client.enqueue_push({"title": "t", "message": "m"})
    assert "a push needs a userId or a device token" in str(info.value)
    with pytest.raises(NotificationValidationError) as info:
        await system.client.enqueue_push({"userId": "u", "title": "t", "message": "m", "data": {"x": "y" * 5000}})
    assert [e["field"] for e in info.value.errors] == ["data"]
