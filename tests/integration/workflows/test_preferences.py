"""Whether to send: a user's and their tenant's preferences, evaluated when the send is due.

An opted-out notification ends `suppressed` (USER_OPTED_OUT) with no provider call; quiet hours
defer it to their end (`scheduled`, deferredReason QUIET_HOURS); `critical` bypasses both.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from activities.providers import Providers
from notifications.errors import NotificationValidationError
from notifications.sql import queries
from tests.support.scripted import ScriptedProvider
from tests.support.system import System, wait_until

ZONE = "America/New_York"


def new_id() -> str:
    return f"p-{uuid.uuid4().hex[:12]}"


def email(nid: str, user: str, **extra: Any) -> dict[str, Any]:
    return {
        "notificationId": nid,
        "to": "patient@example.com",
        "subject": "Hi",
        "text": "Hello",
        "userId": user,
        **extra,
    }


def push(nid: str, user: str, **extra: Any) -> dict[str, Any]:
    return {
        "notificationId": nid,
        "userId": user,
        "token": "tok-" + "x" * 20,
        "title": "Hi",
        "message": "Hello",
        **extra,
    }


async def _ends(system: System, provider: ScriptedProvider, nid: str, status: str) -> Any:
    row = await system.wait_status(nid, status)
    if status == "suppressed":
        assert row.error_code == "USER_OPTED_OUT" and row.completed_at is not None
        assert provider.calls_for(nid) == [] and row.attempts == 0
        assert await system.attempts(nid) == []  # no attempt was opened
        live = await system.client.status(nid)
        assert live["status"] == "suppressed" and live["errorCode"] == "USER_OPTED_OUT"
    return row


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_opt_outs_by_channel_type_and_type_channel(
    system: System, provider: ScriptedProvider, providers: Providers
) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    await system.client.set_preferences(
        user,
        {
            "channels": {"email": True, "push": False},
            "types": {"marketing": False, "appointment_reminder": {"channels": {"email": False}}},
        },
    )
    cases = {
        "push-any": (push, {}, "suppressed"),  # channel off
        "email-marketing": (email, {"type": "marketing"}, "suppressed"),  # type off
        "email-reminder": (email, {"type": "appointment_reminder"}, "suppressed"),  # type off on email
        "email-welcome": (email, {"type": "welcome"}, "sent"),
        "email-none": (email, {}, "sent"),
        "push-critical": (push, {"critical": True}, "sent"),  # critical bypasses
    }
    ids = {name: new_id() for name in cases}
    async with system.worker(providers):
        for name, (build, extra, _) in cases.items():
            enqueue = system.client.enqueue_email if build is email else system.client.enqueue_push
            await enqueue(build(ids[name], user, **extra))
        for name, (_, _, status) in cases.items():
            await _ends(system, provider, ids[name], status)
    assert provider.delivered[ids["push-critical"]] == 1
    assert (await system.row(ids["push-critical"])).critical is True  # type: ignore[union-attr]
    stats = await queries.queue_stats(system.db)
    assert stats["push"]["suppressed"] == 1 and stats["email"]["suppressed"] == 2
    assert stats["email"]["completed"] == 2


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_tenant_defaults_apply_and_the_user_overrides_them_key_by_key(
    system: System, provider: ScriptedProvider, providers: Providers
) -> None:
    tenant, fan, other = f"t{uuid.uuid4().hex[:8]}", "fan", "other"
    await system.client.set_tenant_preferences(tenant, {"types": {"marketing": False}, "channels": {"push": False}})
    await system.client.set_preferences(fan, {"types": {"marketing": True}}, tenant=tenant)
    fan_id, other_id, fan_push = new_id(), new_id(), new_id()
    async with system.worker(providers):
        await system.client.enqueue_email(email(fan_id, fan, type="marketing", tenant=tenant))
        await system.client.enqueue_email(email(other_id, other, type="marketing", tenant=tenant))
        await system.client.enqueue_push(push(fan_push, fan, tenant=tenant))
        await _ends(system, provider, fan_id, "sent")  # the user's own value wins
        await _ends(system, provider, other_id, "suppressed")  # the tenant's default holds
        await _ends(system, provider, fan_push, "suppressed")  # a key the user did not set: the tenant's
    # the same user in another tenant is another user
    assert await system.client.get_preferences(fan) == {}
    assert await system.client.get_preferences(fan, tenant=tenant) == {"types": {"marketing": True}}


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_preferences_are_read_when_a_scheduled_send_comes_due(
    system: System, provider: ScriptedProvider, providers: Providers
) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    later, allowed = new_id(), new_id()
    send_at = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    await system.client.set_preferences(user, {"channels": {"push": False}})
    async with system.worker(providers):
        await system.client.enqueue_email(email(later, user, sendAt=send_at))
        await system.client.enqueue_push(push(allowed, user, sendAt=send_at))
        await system.wait_status(later, "scheduled")
        # opted out of email after the enqueue, back into push: the send does as it says when due
        await system.client.set_preferences(user, {"channels": {"email": False}})
        await _ends(system, provider, later, "suppressed")
        await _ends(system, provider, allowed, "sent")


async def test_bad_documents_are_refused_naming_the_field(system: System) -> None:
    bad: list[tuple[dict[str, Any], str]] = [
        ({"channels": {"sms": False}}, "channels.sms.[key]"),
        ({"channels": {"email": "no"}}, "channels.email"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"quietHours": {"start": "22:00", "end": "7am"}}, "quietHours.end"),
        ({"quietHours": {"start": "24:00", "end": "07:00"}}, "quietHours.start"),
        ({"quietHours": {"start": "22:00", "end": "07:00", "days": ["monday"]}}, "quietHours.days.0"),
        ({"quietHours": {"start": "22:00", "end": "22:00"}}, "quietHours"),
        ({"colour": "blue"}, "colour"),
        ({"types": {"marketing": {"channel": {"email": False}}}}, "types.marketing"),
    ]
    for document, field in bad:
        with pytest.raises(NotificationValidationError) as caught:
            await system.client.set_preferences("u-bad", document)
        assert any(e["field"].startswith(field) for e in caught.value.errors), (document, caught.value.errors)
    assert await system.client.get_preferences("u-bad") == {}  # nothing was stored


def _quiet_window_now() -> dict[str, Any]:
    """Quiet hours from the last minute to the next minute boundary, in the user's zone."""
    local = datetime.now(ZoneInfo(ZONE))
    start, end = local - timedelta(minutes=1), local + timedelta(minutes=1)
    return {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M"), "channels": ["push"]}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite's: the next test
async def test_quiet_hours_defer_to_their_end_and_cancel_expiry_and_critical_still_work(
    system: System, provider: ScriptedProvider, providers: Providers
) -> None:
    """Deferred to the window's end, on the durable timer a scheduled send waits on (whose firing on
    time test_schedule checks): cancelled and expired meanwhile; critical and other channels go."""
    if datetime.now(UTC).second > 45:  # room before the window's end for what is checked meanwhile
        await asyncio.sleep(61 - datetime.now(UTC).second)
    user = f"u-{uuid.uuid4().hex[:8]}"
    await system.client.set_preferences(user, {"timezone": ZONE, "quietHours": _quiet_window_now()})
    now = datetime.now(UTC)
    window_end = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
    waits, cancelled, expires, critical, mail = (new_id() for _ in range(5))
    async with system.worker(providers):
        await system.client.enqueue_push(push(waits, user))
        await system.client.enqueue_push(push(cancelled, user))
        expiry = (now + timedelta(seconds=6)).isoformat()
        await system.client.enqueue_push(push(expires, user, expiresAt=expiry))
        await system.client.enqueue_push(push(critical, user, critical=True))
        await system.client.enqueue_email(email(mail, user))  # quiet hours for push only
        await _ends(system, provider, critical, "sent")
        await _ends(system, provider, mail, "sent")
        for nid in (waits, cancelled, expires):
            row = await system.wait_status(nid, "scheduled")
            await wait_until(lambda nid=nid: _deferred(system, nid))  # type: ignore[misc]
            row = await system.row(nid)
            assert row is not None and row.send_at is not None and row.attempts == 0
            assert row.send_at.replace(tzinfo=UTC) == window_end
            live = await system.client.status(nid)
            assert live["status"] == "scheduled" and live["deferredReason"] == "QUIET_HOURS"
            assert datetime.fromisoformat(live["sendAt"]) == window_end
        stats = await queries.queue_stats(system.db)
        assert stats["push"]["delayed"] == 3
        assert (await system.client.cancel(cancelled)).status == "cancelled"
        row = await system.wait_status(expires, "expired", timeout=20)
        assert row.error_code == "EXPIRED"
        assert (await system.row(waits)).status == "scheduled"  # type: ignore[union-attr]
    assert provider.calls_for(waits) == [] and provider.calls_for(cancelled) == []
    assert provider.calls_for(expires) == []
    assert (await system.row(cancelled)).status == "cancelled"  # type: ignore[union-attr]


async def _deferred(system: System, nid: str) -> bool:
    row = await system.row(nid)
    return row is not None and row.deferred_reason == "QUIET_HOURS"


async def test_a_send_deferred_by_quiet_hours_can_be_rescheduled_and_reads_the_preferences_again(
    system: System, provider: ScriptedProvider, providers: Providers
) -> None:
    if datetime.now(UTC).second > 50:
        await asyncio.sleep(61 - datetime.now(UTC).second)
    user = f"u-{uuid.uuid4().hex[:8]}"
    await system.client.set_preferences(user, {"timezone": ZONE, "quietHours": _quiet_window_now()})
    nid = new_id()
    async with system.worker(providers):
        await system.client.enqueue_push(push(nid, user))
        await wait_until(lambda: _deferred(system, nid))
        assert (await system.row(nid)).status == "scheduled"  # type: ignore[union-attr]
        await system.client.set_preferences(user, {"timezone": ZONE})  # quiet hours off
        soon = datetime.now(UTC) + timedelta(seconds=1)
        record = await system.client.reschedule(nid, soon)
        assert record.status == "scheduled" and record.deferred_reason is None
        row = await system.wait_status(nid, "sent")
    assert provider.delivered[nid] == 1 and row.deferred_reason is None
