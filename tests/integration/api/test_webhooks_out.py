"""Webhooks out, end to end on a Temporal server of their own (the dispatcher is one per namespace):
endpoints over the API, events written with the status change, bodies verified by `standardwebhooks`
on the receiving side, in version order, retries on the schedule, 410, rotation, and SSRF refusal."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from activities.providers import Providers
from fakes.webhook_receiver import WebhookReceiver
from notifications.errors import DeliveryError, ErrorCode
from processes.schedules import ensure_webhook_dispatcher
from tests.support.api import ADMIN, api, auth
from tests.support.processes import start_worker
from tests.support.scripted import ScriptedProvider, unavailable
from tests.support.system import System, outbox_providers, system_on_own_server, terminate_running, wait_until

W = "/api/admin/webhooks"


@pytest.fixture
async def own(database_url: str, tmp_path: Path) -> AsyncIterator[System]:
    async with system_on_own_server(database_url, tmp_path, webhook_retry_schedule="0,1,1") as system:
        await ensure_webhook_dispatcher(system.temporal, system.settings)
        yield system


async def _endpoint(http: Any, url: str, events: list[str]) -> dict[str, Any]:
    r = await http.post(W, headers=ADMIN, json={"url": url, "events": events, "description": "tests"})
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    assert created["secret"].startswith("whsec_")
    return created


async def _enqueue(http: Any, **extra: Any) -> str:
    body = {"notificationId": f"wh-{uuid.uuid4().hex[:10]}", "to": "a@example.com", "subject": "s", "text": "t"}
    r = await http.post("/api/notifications/email", headers=auth(role="service", sub="svc"), json={**body, **extra})
    assert r.status_code == 202, r.text
    return str(r.json()["notificationId"])


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_signed_events_in_order_with_retries(own: System) -> None:
    system = own
    provider = ScriptedProvider()
    providers = Providers(email=provider, push=provider)
    async with (
        WebhookReceiver() as receiver,
        WebhookReceiver() as sent_only,
        api(system) as (_, http),
        system.worker(providers),
    ):
        everything = await _endpoint(http, f"{receiver.url}/all", ["*"])
        receiver.secret = everything["secret"]
        sent_only.secret = (await _endpoint(http, f"{sent_only.url}/sent", ["notification.sent"]))["secret"]
        assert "secret" not in (await http.get(f"{W}/{everything['id']}", headers=ADMIN)).json()
        receiver.answers = [500]  # the first delivery fails once, then goes again after 1 s
        nid = f"wh-{uuid.uuid4().hex[:10]}"
        provider.fail(nid, unavailable())  # its first send fails: a retry is pending once
        nid = await _enqueue(http, notificationId=nid)
        await system.wait_status(nid, "sent")
        await wait_until(lambda: _received(receiver, nid, 3), timeout=30)
        bodies = receiver.of(nid)
        assert [b["type"] for b in bodies] == ["notification.queued", "notification.retrying", "notification.sent"]
        assert [b["data"]["version"] for b in bodies] == [1, 2, 3]
        assert bodies[1]["data"]["errorCode"] == "PROVIDER_UNAVAILABLE" and bodies[1]["data"]["nextRetryAt"]
        assert bodies[-1]["data"]["status"] == "sent" and bodies[-1]["data"]["notificationId"] == nid
        assert receiver.refused == 0 and receiver.ids[0] == receiver.ids[1]  # a retry keeps its webhook-id
        # an event two endpoints want reaches each of them, as itself
        await wait_until(lambda: _received(sent_only, nid, 1), timeout=30)
        theirs = sent_only.of(nid)
        assert [b["type"] for b in theirs] == ["notification.sent"] and theirs[0]["data"] == bodies[-1]["data"]
        r = await http.get(f"{W}/{everything['id']}/deliveries", headers=ADMIN)
        first = [d for d in r.json()["items"] if d["event"] == "notification.queued" and d["notificationId"] == nid]
        assert first[0]["status"] == "succeeded" and first[0]["attempts"] == 2 and first[0]["lastStatusCode"] == 200

        # rotation: the new secret signs at once, the old one beside it
        r = await http.post(f"{W}/{everything['id']}/rotate-secret", headers=ADMIN)
        old, receiver.secret = receiver.secret, r.json()["secret"]
        assert receiver.secret != old
        second = await _enqueue(http)
        await wait_until(lambda: _received(receiver, second, 2), timeout=30)
        receiver.secret = old
        third = await _enqueue(http)
        await wait_until(lambda: _received(receiver, third, 2), timeout=30)
        assert receiver.refused == 0
        for later in (second, third):  # each with its own event, however many endpoints an event had before
            await wait_until(lambda: _received(sent_only, later, 1), timeout=30)  # noqa: B023
            assert [(b["type"], b["data"]["notificationId"]) for b in sent_only.of(later)] == [
                ("notification.sent", later)
            ]

        # a push that fell back to an email: the email's last event is its record as GET returns
        # it, the columns added after the webhook triggers (fallbackOf, campaignId) included
        pushed = f"wh-{uuid.uuid4().hex[:10]}"
        provider.fail(pushed, DeliveryError(ErrorCode.NO_VALID_DEVICES, "no valid device"))
        fallback = {"email": {"to": "a@example.com", "subject": "s", "text": "t"}}
        body = {"notificationId": pushed, "userId": "u-wh", "title": "t", "message": "m", "fallback": fallback}
        r = await http.post("/api/notifications/push", headers=auth(role="service", sub="svc"), json=body)
        assert r.status_code == 202, r.text
        email = f"{pushed}-fallback-email"
        await wait_until(lambda: _received(receiver, email, 2), timeout=30)
        data = dict(receiver.of(email)[-1]["data"])
        assert data.pop("version") == 2 and data["fallbackOf"] == pushed and "campaignId" in data
        assert data == (await http.get(f"/api/admin/notifications/{email}", headers=ADMIN)).json()["notification"]
        # a manual retry (once the failed run has ended) passes through `pending`, which is no event type
        with contextlib.suppress(Exception):  # ended either way
            await asyncio.wait_for(system.temporal.get_workflow_handle(f"notification-{pushed}").result(), 30)
        r = await http.post(f"/api/admin/notifications/{pushed}/retry", headers=ADMIN)
        assert r.status_code == 200, r.text
        await wait_until(lambda: _last_is(receiver, pushed, "notification.sent"), timeout=30)
        kinds = [b["type"].removeprefix("notification.") for b in receiver.of(pushed)]
        assert kinds[:2] == ["queued", "failed"] and kinds[2:] in (["queued", "sent"], ["sent"]), kinds


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_failing_endpoint_follows_the_schedule_and_410_disables(own: System) -> None:
    system = own
    async with WebhookReceiver() as failing, WebhookReceiver() as gone, api(system) as (_, http):
        async with system.worker(outbox_providers(system)):
            a = await _endpoint(http, failing.url, ["notification.queued"])
            b = await _endpoint(http, gone.url, ["notification.queued"])
            failing.secret, gone.secret = a["secret"], b["secret"]
            failing.answers, gone.answers = [503, 503, 503], [410]
            await _enqueue(http)
            await wait_until(lambda: _count(failing, 3), timeout=30)
            await wait_until(lambda: _disabled(http, b["id"]), timeout=30)
            at = [e.at for e in failing.exchanges]
            assert 0.8 <= at[1] - at[0] <= 4 and 0.8 <= at[2] - at[1] <= 4  # "0,1,1": one second apart
            r = await http.get(f"{W}/{a['id']}/deliveries", headers=ADMIN)
            [delivery] = r.json()["items"]
            await wait_until(lambda: _delivery_status(http, a["id"], "failed"), timeout=10)
            assert len(failing.exchanges) == 3  # and no more: the schedule has three attempts
            # a manual retry of the failed one, now that the endpoint answers
            r = await http.post(f"{W}/{a['id']}/deliveries/{delivery['id']}/retry", headers=ADMIN)
            assert r.status_code == 200
            await wait_until(lambda: _count(failing, 4), timeout=30)
            await wait_until(lambda: _delivery_status(http, a["id"], "succeeded"), timeout=10)
            assert (await http.get(f"{W}/{b['id']}", headers=ADMIN)).json()["disabledReason"] == "gone"


async def test_endpoint_validation_and_ssrf_refusal(system: System) -> None:
    async with api(system) as (_, http):
        for body, field in (
            ({"url": "ftp://example.com/x", "events": ["*"]}, "url"),
            ({"url": "http://127.0.0.1:9/x", "events": ["notification.nope"]}, "events"),
            ({"url": "http://127.0.0.1:9/x", "events": []}, "events"),
        ):
            r = await http.post(W, headers=ADMIN, json=body)
            assert r.status_code == 422 and field in r.text, r.text
    async with api(system, env="production", webhook_allow_private=None, unsubscribe_secret=SecretStr("s" * 32)) as (
        _,
        http,
    ):
        for url in (
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "http://10.1.2.3/x",
            "http://169.254.169.254/",
        ):
            r = await http.post(W, headers=ADMIN, json={"url": url, "events": ["*"]})
            assert r.status_code == 422 and "url" in r.text, (url, r.text)
    async with api(system, env="production", webhook_allow_private=True, unsubscribe_secret=SecretStr("s" * 32)) as (
        _,
        http,
    ):
        r = await http.post(W, headers=ADMIN, json={"url": "http://127.0.0.1:8080/hook", "events": ["*"]})
        assert r.status_code == 201
        endpoint = r.json()["id"]
        r = await http.patch(f"{W}/{endpoint}", headers=ADMIN, json={"events": ["notification.sent"], "enabled": False})
        assert r.status_code == 200 and r.json()["events"] == ["notification.sent"] and r.json()["enabled"] is False
        assert (await http.get(W, headers=auth(tenant="acme"))).json()["items"] == []  # another tenant's
        assert (await http.delete(f"{W}/{endpoint}", headers=ADMIN)).status_code == 204
        assert (await http.get(f"{W}/{endpoint}", headers=ADMIN)).status_code == 404


async def _received(receiver: WebhookReceiver, nid: str, n: int) -> bool:
    return len(receiver.of(nid)) >= n


async def _last_is(receiver: WebhookReceiver, nid: str, kind: str) -> bool:
    bodies = receiver.of(nid)
    return bool(bodies) and bodies[-1]["type"] == kind


async def _count(receiver: WebhookReceiver, n: int) -> bool:
    return len(receiver.exchanges) >= n


async def _disabled(http: Any, endpoint: str) -> bool:
    return (await http.get(f"{W}/{endpoint}", headers=ADMIN)).json()["enabled"] is False


async def _delivery_status(http: Any, endpoint: str, status: str) -> bool:
    items = (await http.get(f"{W}/{endpoint}/deliveries", headers=ADMIN)).json()["items"]
    return bool(items) and items[0]["status"] == status


async def test_a_worker_killed_after_a_status_change_still_delivers_each_event(own: System) -> None:
    """The event rows are written with the status change; the dispatcher that died mid-delivery is
    replaced by Temporal, and every event arrives, a repeat carrying the same webhook-id."""
    system = own
    await terminate_running(system.temporal)  # the worker process starts its own dispatcher
    async with WebhookReceiver(delay=2.0) as receiver, api(system) as (_, http):
        receiver.secret = (await _endpoint(http, receiver.url, ["*"]))["secret"]
        worker = start_worker(system)
        try:
            nid = await _enqueue(http)
            await system.wait_status(nid, "sent", timeout=30)
            await wait_until(lambda: _in_flight(receiver), timeout=30)
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
        finally:
            if worker.poll() is None:
                worker.kill()
        replacement = start_worker(system)
        try:
            await wait_until(lambda: _distinct(receiver, nid, 2), timeout=60)
        finally:
            replacement.send_signal(signal.SIGTERM)
            replacement.wait(20)
    kinds = {body["id"]: body["type"] for body in receiver.of(nid)}
    assert sorted(kinds.values()) == ["notification.queued", "notification.sent"]
    for body in receiver.of(nid):  # a repeat is the same event: same webhook-id, type and version
        assert kinds[body["id"]] == body["type"]


async def _in_flight(receiver: WebhookReceiver) -> bool:
    return receiver.in_flight > 0


async def _distinct(receiver: WebhookReceiver, nid: str, n: int) -> bool:
    return len({body["id"] for body in receiver.of(nid)}) >= n
