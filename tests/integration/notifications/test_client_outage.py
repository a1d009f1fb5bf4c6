"""Outages, as the caller sees them: what the client and the API answer is what then happens.

PostgreSQL is reached through a TCP proxy that can cut the link (connections drop, new ones
are refused, as when the server stops); SQL is checked through a direct connection.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select
from temporalio.client import Client
from temporalio.service import RetryConfig
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

import processes.worker
from activities.providers import Providers
from api.main import create_app
from fakes.tcpproxy import TcpProxy
from notifications.client import NotificationClient
from notifications.errors import NotificationUnavailableError
from notifications.sql.engine import Database
from notifications.sql.models import Notification
from tests.support.api import BASE, api_settings, auth
from tests.support.replay import assert_replays, finish
from tests.support.scripted import ScriptedProvider, unavailable
from tests.support.system import System, make_settings, make_system, wait_until


def email(to: str, nid: str | None = None) -> dict[str, object]:
    payload: dict[str, object] = {"to": to, "subject": "Hello", "html": "<p>Hi</p>"}
    if nid:
        payload["notificationId"] = nid
    return payload


def push(nid: str) -> dict[str, object]:
    return {"notificationId": nid, "userId": "user-1", "title": "Hello", "message": "Hi"}


def new_id() -> str:
    return f"o-{uuid.uuid4().hex[:12]}"


class Outage:
    """A system whose every SQL connection (client's and worker's) goes through a cuttable link."""

    def __init__(self, system: System, proxy: TcpProxy, direct: Database) -> None:
        self.system, self.proxy, self.direct = system, proxy, direct
        # the system's own reads, through the direct connection: what SQL holds while the link is cut
        self.sql = System(system.settings, system.temporal, direct, system.client)

    async def row(self, nid: str) -> Notification | None:
        return await self.sql.row(nid)

    async def log(self, nid: str) -> list[tuple[int, str, str | None]]:
        return [(r.attempt, r.outcome, r.provider_message_id) for r in await self.sql.attempts(nid)]

    async def row_by_recipient(self, to: str) -> Notification | None:
        async with self.direct.sessions() as session:
            return (await session.scalars(select(Notification).where(Notification.recipient == to))).first()

    async def wait_sent(self, nid: str) -> Notification:
        return await self.sql.wait_status(nid, "sent", timeout=30)


@pytest.fixture
async def outage(temporal_address: str, postgresql_url: str, tmp_path: Path) -> AsyncIterator[Outage]:
    url = urlsplit(postgresql_url)
    async with TcpProxy(url.hostname or "127.0.0.1", url.port or 5432) as proxy:
        proxied = postgresql_url.replace(f"{url.hostname}:{url.port}", f"127.0.0.1:{proxy.port}")
        settings = make_settings(temporal_address, proxied, tmp_path, queue_pause_recheck_seconds=2, base_delay_ms=1000)
        direct = Database(make_settings(temporal_address, postgresql_url, tmp_path).sqlalchemy_url)
        async with make_system(settings) as system:
            try:
                yield Outage(system, proxy, direct)
            finally:
                await proxy.restore()
                await direct.dispose()


def scripted() -> tuple[ScriptedProvider, Providers]:
    provider = ScriptedProvider()
    return provider, Providers(email=provider, push=provider)


async def test_enqueue_while_the_database_is_down_is_accepted_and_delivered_once(outage: Outage) -> None:
    """Found 1 and 2 of issue 12: no raw driver error, and no 'failed' for a delivered notification."""
    client = outage.system.client
    provider, providers = scripted()
    async with outage.system.worker(providers):
        before = await client.enqueue_email(email("before@example.com"))
        assert before.mirrored is True
        await outage.proxy.cut()
        # within the cached "queue not paused": the workflow starts, then the row insert fails
        cached = await client.enqueue_email(email("cached@example.com"))
        await asyncio.sleep(1.1)  # past the cache: the queue's pause flag cannot be read either
        uncached = await client.enqueue_email(email("uncached@example.com"))
        for record in (cached, uncached):
            assert record.status == "queued" and record.mirrored is False
        await asyncio.sleep(1.0)  # the worker sends meanwhile; SQL is still down
        assert provider.delivered[cached.notification_id] == 1
        await outage.proxy.restore()
        for record in (before, cached, uncached):
            row = await outage.wait_sent(record.notification_id)
            assert row.attempts == 1
            assert provider.delivered[record.notification_id] == 1
            assert [(a, o) for a, o, _ in await outage.log(record.notification_id)] == [(1, "sent")]


async def test_http_enqueue_while_the_database_is_down_answers_202_not_mirrored(outage: Outage) -> None:
    app = create_app(api_settings(outage.system), client=outage.system.client)
    provider, providers = scripted()
    nid = new_id()
    async with (
        outage.system.worker(providers),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http,
    ):
        await outage.proxy.cut()
        headers = {**auth(role="service"), "Idempotency-Key": nid}
        answer = await http.post("/api/notifications/push", json=push(nid), headers=headers)
        assert answer.status_code == 202, answer.text
        assert answer.json() == {
            "notificationId": nid,
            "status": "queued",
            "channel": "push",
            "priority": 5,
            "mirrored": False,
        }
        again = await http.post("/api/notifications/push", json=push(nid), headers=headers)
        assert again.status_code == 202 and again.json()["notificationId"] == nid  # one notification
        other = await http.post("/api/notifications/email", json=email("x@example.com"), headers=headers)
        assert other.status_code == 409, other.text  # the ID is a push's, as the workflow says
        read = await http.get(f"/api/admin/notifications/{nid}", headers=auth())
        assert read.status_code == 503 and read.headers["Retry-After"].isdigit()  # not a 500
        await outage.proxy.restore()
        await outage.wait_sent(nid)
    assert provider.delivered[nid] == 1


async def test_temporal_unreachable_is_a_typed_error_and_stores_nothing(outage: Outage) -> None:
    """Found 3: a raw RPCError before; now NotificationUnavailableError, HTTP 503 with Retry-After."""
    system = outage.system
    host, _, port = system.settings.temporal_address.rpartition(":")
    to_python, to_http = "refused-py@example.com", "refused-http@example.com"
    async with TcpProxy(host, int(port)) as link:
        client = NotificationClient(await Client.connect(f"127.0.0.1:{link.port}"), system.db, system.settings)
        app = create_app(api_settings(system), client=client)
        await client.enqueue_email(email("reached@example.com"))  # connected, then the link goes
        await link.cut()
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)

        async def python_enqueue() -> NotificationUnavailableError:
            with pytest.raises(NotificationUnavailableError) as caught:
                await client.enqueue_email(email(to_python))
            return caught.value

        started = time.monotonic()
        async with http:
            error, answer = await asyncio.gather(
                python_enqueue(),
                http.post("/api/notifications/email", json=email(to_http), headers=auth(role="service")),
            )
    assert error.service == "temporal" and error.notification_id
    assert time.monotonic() - started < 60
    assert answer.status_code == 503 and answer.headers["Retry-After"].isdigit()
    assert answer.json()["notificationId"]
    for to in (to_python, to_http):
        assert await outage.row_by_recipient(to) is None


@pytest.mark.parametrize("back", ["after the retry", "before the retry"])
async def test_attempts_made_while_the_database_was_down_are_logged_when_it_returns(
    outage: Outage, back: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found 4: the delivery log had no row for an attempt made while SQL was down."""
    monkeypatch.setattr(processes.worker, "workflow_runner", SandboxedWorkflowRunner)  # replayed below
    provider, providers = scripted()
    nid = new_id()
    provider.fail(nid, unavailable())  # attempt 1 fails, attempt 2 (after the ~1 s backoff) sends
    async with outage.system.worker(providers) as workers:
        await outage.proxy.cut()
        await outage.system.client.enqueue_email(email("log@example.com", nid))
        if back == "before the retry":  # attempt 2 writes its own row; attempt 1's comes from the workflow
            await wait_until(lambda: _called(provider, nid), timeout=20)
            await outage.proxy.restore()
        await wait_until(lambda: _delivered(provider, nid), timeout=20)
        await outage.proxy.restore()
        row = await outage.wait_sent(nid)

        async def logged() -> bool:
            return len(await outage.log(nid)) == 2

        await wait_until(logged, timeout=10)
        history = await finish(outage.system, workers, nid)
    assert row.attempts == 2 and row.provider_message_id == f"scripted-{nid}"
    assert await outage.log(nid) == [(1, "transient_error", None), (2, "sent", f"scripted-{nid}")]
    await assert_replays(outage.system, history)


async def _called(provider: ScriptedProvider, nid: str) -> bool:
    return len(provider.calls_for(nid)) >= 1


async def _delivered(provider: ScriptedProvider, nid: str) -> bool:
    return provider.delivered[nid] == 1


async def test_a_queue_paused_before_the_outage_stays_paused_through_it(outage: Outage) -> None:
    """Found 5: the recheck timer's attempt sent while SQL could not say the queue was paused."""
    client = outage.system.client
    provider, providers = scripted()
    held, during = new_id(), new_id()
    async with outage.system.worker(providers):
        await client.pause_queue("push", reason="maintenance")
        await client.enqueue_push(push(held))
        await outage.proxy.cut()
        accepted = await client.enqueue_push(push(during))  # the client knows its queue is paused
        assert accepted.mirrored is False
        with pytest.raises(NotificationUnavailableError):
            await client.resume_queue("push")  # its flag cannot be written: nothing changes
        await asyncio.sleep(5)  # two recheck timers (2 s each) come due during the outage
        assert provider.calls == []
        await outage.proxy.restore()
        await asyncio.sleep(2.5)  # a recheck now reads the flag in SQL: still paused
        assert provider.calls == []
        await client.resume_queue("push")
        for nid in (held, during):
            await outage.wait_sent(nid)
    assert provider.delivered == {held: 1, during: 1}


async def test_controls_while_temporal_is_unreachable_say_what_changed(outage: Outage) -> None:
    """A control the caller is told failed changed nothing; one that took effect says so."""
    system = outage.system
    host, _, port = system.settings.temporal_address.rpartition(":")
    nid = new_id()
    await system.client.pause_queue("email")  # held, so it is still running when the link goes
    await system.client.enqueue_email(email("held@example.com", nid))
    async with TcpProxy(host, int(port)) as link:
        temporal = await Client.connect(f"127.0.0.1:{link.port}", retry_config=RetryConfig(max_elapsed_time_millis=500))
        client = NotificationClient(temporal, system.db, system.settings)
        await link.cut()
        with pytest.raises(NotificationUnavailableError):
            await client.pause(nid)
        assert (await outage.row(nid)).paused is False  # type: ignore[union-attr]
        assert (await client.status(nid))["status"] == "queued"  # from SQL
        assert (await client.pause_queue("push"))["push"]["paused"] is True  # the flag alone holds it
        with pytest.raises(NotificationUnavailableError, match="resumed"):
            await client.resume_queue("email")
        assert (await client.queue_states())["email"]["paused"] is False
