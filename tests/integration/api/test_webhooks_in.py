"""Resend's webhooks in: Svix signatures (verified with `standardwebhooks`), each event's mapping, the
forward-only rule, an event that comes before the send's own record, and the suppression it causes."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from notifications.sql.models import AuditLog
from tests.integration.campaigns.test_campaign_flow import campaign, completed, recipients
from tests.support.api import ADMIN, api, auth
from tests.support.system import System, outbox_providers

SECRET = "whsec_" + base64.b64encode(b"resend-webhook-secret-for-tests!").decode()
OTHER = "whsec_" + base64.b64encode(b"a-different-secret-entirely-123!").decode()
PATH = "/api/webhooks/resend"


def signed(
    body: dict[str, Any] | bytes, *, secret: str = SECRET, event_id: str | None = None, age: float = 0
) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    moment = datetime.now(UTC) - timedelta(seconds=age)
    event_id = event_id or f"msg_{uuid.uuid4().hex}"
    signature = Webhook(secret).sign(event_id, moment, raw)
    headers = {
        "svix-id": event_id,
        "svix-timestamp": str(int(moment.timestamp())),
        "svix-signature": signature,
        "content-type": "application/json",
    }
    return {"content": raw, "headers": headers}


def event(kind: str, message_id: str, at: datetime | None = None, **data: Any) -> dict[str, Any]:
    when = (at or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    return {"type": kind, "created_at": when, "data": {"email_id": message_id, "to": ["x@example.com"], **data}}


async def _sent(http: Any, system: System, to: str, **extra: Any) -> str:
    body = {"to": to, "subject": "s", "text": "t", **extra}
    r = await http.post("/api/notifications/email", headers=auth(role="service", sub="svc"), json=body)
    assert r.status_code == 202, r.text
    nid = str(r.json()["notificationId"])
    await system.wait_status(nid, "sent", "suppressed")
    return nid


async def _detail(http: Any, nid: str) -> dict[str, Any]:
    r = await http.get(f"/api/admin/notifications/{nid}", headers=ADMIN)
    assert r.status_code == 200, r.text
    detail: dict[str, Any] = r.json()
    return detail


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_signatures_are_verified(system: System) -> None:
    async with api(system, resend_webhook_secret=SecretStr(SECRET)) as (_, http):
        ok = event("email.delivery_delayed", "re-unknown")
        assert (await http.post(PATH, **signed(ok))).status_code == 200
        assert (await http.post(PATH, **signed(ok, secret=OTHER))).status_code == 401
        assert (await http.post(PATH, **signed(ok, age=6 * 60))).status_code == 401  # more than 5 minutes off
        unsigned = signed(ok)
        del unsigned["headers"]["svix-signature"]
        assert (await http.post(PATH, **unsigned)).status_code == 401
        rotated = signed(ok)  # the old secret's signature beside the new one's
        good = rotated["headers"]["svix-signature"]
        stale = signed(ok, secret=OTHER, event_id=rotated["headers"]["svix-id"])["headers"]["svix-signature"]
        rotated["headers"]["svix-signature"] = f"{stale} {good}"
        assert (await http.post(PATH, **rotated)).status_code == 200
        tampered = signed(ok)
        tampered["content"] = tampered["content"].replace(b"re-unknown", b"re-other00")
        assert (await http.post(PATH, **tampered)).status_code == 401
        assert (await http.post(PATH, **signed(b"{not json"))).status_code == 400
        assert (await http.post(PATH, **signed({"type": "email.delivered", "data": {}}))).status_code == 400
        r = await http.post(PATH, **signed({"type": "contact.created", "data": {"id": "c1"}}))
        assert r.status_code == 200 and r.json()["applied"] is False  # a type we do not use
        # the same svix-id twice is processed once
        replay = signed(event("email.opened", "re-unknown"), event_id="msg_replayed")
        first, second = await http.post(PATH, **replay), await http.post(PATH, **replay)
        assert first.json()["applied"] is True and second.status_code == 200 and second.json()["applied"] is False
    async with api(system) as (_, http):  # no secret configured: nothing can be verified
        assert (await http.post(PATH, **signed(ok))).status_code == 401


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_events_move_the_status_forward_only_and_suppress(system: System) -> None:
    t0 = datetime.now(UTC) - timedelta(minutes=1)
    async with (
        api(system, resend_webhook_secret=SecretStr(SECRET)) as (_, http),
        system.worker(outbox_providers(system)),
    ):
        a, b, c, d = [await _sent(http, system, f"{name}@example.com") for name in ("ann", "bob", "cat", "dan")]
        post = [
            event("email.delivered", f"outbox-{a}", t0),
            event("email.opened", f"outbox-{a}", t0 + timedelta(seconds=5)),
            event("email.clicked", f"outbox-{a}", t0 + timedelta(seconds=6), click={"link": "https://x.test/"}),
            event("email.bounced", f"outbox-{b}", t0, bounce={"type": "Permanent", "subType": "General"}),
            event("email.delivered", f"outbox-{b}", t0 + timedelta(seconds=9)),  # late: stays bounced
            event("email.bounced", f"outbox-{c}", t0, bounce={"type": "Transient", "subType": "MailboxFull"}),
            event("email.complained", f"outbox-{c}", t0 + timedelta(seconds=2)),
            event("email.failed", f"outbox-{d}", t0),
        ]
        for body in post:
            r = await http.post(PATH, **signed(body))
            assert r.status_code == 200 and r.json()["applied"] is True, r.text

        ann = await _detail(http, a)
        assert ann["notification"]["status"] == "delivered" and ann["notification"]["deliveredAt"]
        assert ann["notification"]["openedAt"] and ann["notification"]["clickedAt"]
        assert [e["type"] for e in ann["events"]] == ["email.delivered", "email.opened", "email.clicked"]
        assert ann["events"][2]["details"]["link"] == "https://x.test/"
        bob = await _detail(http, b)
        assert bob["notification"]["status"] == "bounced" and bob["notification"]["bouncedAt"]
        assert bob["notification"]["deliveredAt"]  # recorded, without moving the status back
        cat = await _detail(http, c)
        assert cat["notification"]["status"] == "sent" and cat["notification"]["complainedAt"]
        assert (await _detail(http, d))["notification"]["status"] == "failed"

        listed = (await http.get("/api/admin/suppressions", headers=ADMIN)).json()["items"]
        assert sorted((i["address"], i["reason"]) for i in listed) == [
            ("bob@example.com", "hard_bounce"),
            ("cat@example.com", "complaint"),
        ]
        async with system.db.sessions() as session:
            audits = list(await session.scalars(select(AuditLog).where(AuditLog.action == "suppressions.add")))
        assert sorted((a.actor, a.details["reason"], a.target) for a in audits) == sorted(
            ("provider:resend", i["reason"], f"suppression:{i['id']}") for i in listed
        )
        assert all("@example.com" not in json.dumps(a.details) for a in audits)  # masked
        stats = (await http.get("/api/admin/notifications/queues/stats", headers=ADMIN)).json()["email"]
        assert stats["completed"] == 2 and stats["failed"] == 2  # sent + delivered; failed + bounced

        # the next email to a bounced address is not sent, critical or not; another address is
        again = await _sent(http, system, "Bob@Example.com", critical=True)
        row = await system.row(again)
        assert row is not None and (row.status, row.error_code) == ("suppressed", "RECIPIENT_SUPPRESSED")
        assert row.attempts == 0 and await system.attempts(again) == []
        assert (await system.row(await _sent(http, system, "eve@example.com"))).status == "sent"  # type: ignore[union-attr]


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_an_event_before_the_sends_own_record_waits_and_is_applied(system: System) -> None:
    nid = f"early-{uuid.uuid4().hex[:8]}"
    async with api(system, resend_webhook_secret=SecretStr(SECRET)) as (_, http):
        r = await http.post(PATH, **signed(event("email.delivered", f"outbox-{nid}")))
        assert r.status_code == 200
        async with system.worker(outbox_providers(system)):
            await system.client.enqueue_email(
                {"notificationId": nid, "to": "z@example.com", "subject": "s", "text": "t"}
            )
            row = await system.wait_status(nid, "delivered")
        assert row.delivered_at is not None
        assert [e["type"] for e in (await _detail(http, nid))["events"]] == ["email.delivered"]


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_events_before_a_campaign_batchs_own_record_wait_and_are_applied(system: System) -> None:
    cid = f"early-{uuid.uuid4().hex[:8]}"  # the outbox's message ID of recipient n is outbox-{cid}-{n}
    bounce = {"type": "Permanent", "subType": "General"}
    async with api(system, resend_webhook_secret=SecretStr(SECRET)) as (_, http):
        for body in (
            event("email.delivered", f"outbox-{cid}-2"),
            event("email.bounced", f"outbox-{cid}-4", bounce=bounce),
        ):
            r = await http.post(PATH, **signed(body))
            assert r.status_code == 200, r.text  # stored, waiting: no notification holds that ID yet
        async with system.worker(outbox_providers(system)):
            created = await system.client.create_campaign(campaign(campaignId=cid, recipients=recipients(5)))
            assert (await completed(system, created["campaignId"]))["sent"] == 5
        delivered, bounced, plain = [await _detail(http, f"{cid}-{n}") for n in (2, 4, 3)]
    assert delivered["notification"]["status"] == "delivered" and delivered["notification"]["deliveredAt"]
    assert bounced["notification"]["status"] == "bounced" and bounced["notification"]["bouncedAt"]
    assert [e["type"] for e in delivered["events"]] == ["email.delivered"]
    assert plain["notification"]["status"] == "sent" and plain["events"] == []
