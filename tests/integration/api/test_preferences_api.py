"""Preferences over HTTP and the CLI: the documents as stored, 422 naming the field, tenant scoping,
the audit trail, and a record's new fields (`critical`, `deferredReason`) and stats key."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import select

from notifications.sql.models import AuditLog
from tests.support.api import ADMIN, api, auth, uid
from tests.support.system import System, outbox_providers, run_cli

DOC = {
    "channels": {"email": True, "push": False},
    "types": {"marketing": False, "appointment_reminder": {"channels": {"push": False}}},
    "timezone": "Europe/Berlin",
    "quietHours": {"start": "22:00", "end": "07:00", "channels": ["push"], "days": ["mon", "tue", "wed"]},
}


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_user_and_tenant_preferences_over_http(system: System) -> None:
    user = uid("u")
    path = f"/api/admin/users/{user}/preferences"
    async with api(system) as (_, http):
        r = await http.get(path, headers=ADMIN)
        assert r.status_code == 200 and r.json() == {}  # nothing set: everything allowed
        r = await http.put(path, headers=ADMIN, json=DOC)
        assert r.status_code == 200 and r.json() == DOC, r.text
        r = await http.get(path, headers=ADMIN)
        assert r.json() == DOC
        r = await http.put(path, headers=ADMIN, json={"channels": {"push": True}})  # PUT replaces
        assert (await http.get(path, headers=ADMIN)).json() == {"channels": {"push": True}}

        for body, field in (
            ({"channels": {"sms": True}}, "sms"),
            ({"timezone": "Mars/Base"}, "timezone"),
            ({"quietHours": {"start": "22:00", "end": "25:00"}}, "end"),
            ({"favourite": "push"}, "favourite"),
        ):
            r = await http.put(path, headers=ADMIN, json=body)
            assert r.status_code == 422 and field in r.text, (body, r.text)
        assert (await http.get(path, headers=ADMIN)).json() == {"channels": {"push": True}}

        r = await http.put("/api/admin/tenants/acme/preferences", headers=ADMIN, json={"types": {"news": False}})
        assert r.status_code == 200 and r.json() == {"types": {"news": False}}
        assert (await http.get("/api/admin/tenants/acme/preferences", headers=ADMIN)).json() == {
            "types": {"news": False}
        }
        # a tenant's token sees its own tenant only
        acme = auth(tenant="acme")
        r = await http.get("/api/admin/tenants/globex/preferences", headers=acme)
        assert r.status_code == 403
        r = await http.put(path, headers=acme, json={"channels": {"email": False}})
        assert r.status_code == 200
        assert (await http.get(path, headers=acme)).json() == {"channels": {"email": False}}
        assert (await http.get(path, headers=ADMIN, params={"tenant": "acme"})).json() == {"channels": {"email": False}}
        assert (await http.get(path, headers=ADMIN)).json() == {"channels": {"push": True}}  # the default tenant's
        r = await http.get(path, headers=auth(role="service"))
        assert r.status_code == 403

    async with system.db.sessions() as session:
        entries = list(await session.scalars(select(AuditLog).where(AuditLog.action.like("preferences.%"))))
    assert ("preferences.user.set", "ok", f"user:{user}") in [(e.action, e.outcome, e.target) for e in entries]
    assert ("preferences.tenant.set", "ok", "tenant:acme") in [(e.action, e.outcome, e.target) for e in entries]


async def test_the_record_shows_critical_and_suppressed_counts(system: System) -> None:
    user = uid("u")
    async with api(system) as (_, http), system.worker(outbox_providers(system)):
        r = await http.put(f"/api/admin/users/{user}/preferences", headers=ADMIN, json={"channels": {"email": False}})
        assert r.status_code == 200
        svc = auth(role="service", sub="svc")
        body: dict[str, Any] = {"to": "pat@example.com", "subject": "s", "text": "t", "userId": user}
        opted_out = (await http.post("/api/notifications/email", headers=svc, json=body)).json()["notificationId"]
        r = await http.post("/api/notifications/email", headers=svc, json={**body, "critical": True})
        critical = r.json()["notificationId"]
        r = await http.post("/api/notifications/email", headers=svc, json={**body, "critical": "yes"})
        assert r.status_code == 422 and "critical" in r.text
        await system.wait_status(opted_out, "suppressed")
        await system.wait_status(critical, "sent")
        detail = (await http.get(f"/api/admin/notifications/{opted_out}", headers=ADMIN)).json()["notification"]
        assert detail["status"] == "suppressed" and detail["errorCode"] == "USER_OPTED_OUT"
        assert detail["critical"] is False and "deferredReason" in detail
        detail = (await http.get(f"/api/admin/notifications/{critical}", headers=ADMIN)).json()["notification"]
        assert detail["status"] == "sent" and detail["critical"] is True
        r = await http.get("/api/admin/notifications", headers=ADMIN, params={"status": "suppressed"})
        assert [item["notificationId"] for item in r.json()["items"]] == [opted_out]
        stats = (await http.get("/api/admin/notifications/queues/stats", headers=ADMIN)).json()
        assert stats["email"]["suppressed"] == 1 and stats["email"]["completed"] == 1


async def test_the_cli_gets_and_sets_preferences(system: System) -> None:
    await asyncio.to_thread(_cli_session, system)
    assert await system.client.get_preferences("u-cli", tenant="acme") == {"types": {"marketing": False}}
    async with system.db.sessions() as session:
        entry = await session.scalar(select(AuditLog).where(AuditLog.target == "user:u-cli"))
    assert entry is not None and entry.actor.startswith("cli:") and entry.action == "preferences.set"


def _cli_session(system: System) -> None:
    env = {"DATABASE_URL": system.settings.database_url}
    done = run_cli("preferences", "get", "u-cli", "--tenant", "acme", env=env)
    assert done.returncode == 0 and json.loads(done.stdout) == {}, done.stderr
    done = run_cli(
        "preferences", "set", "u-cli", "--tenant", "acme", "--json", '{"types": {"marketing": false}}', env=env
    )
    assert done.returncode == 0 and json.loads(done.stdout) == {"types": {"marketing": False}}, done.stderr
    bad = run_cli("preferences", "set", "u-cli", "--json", '{"timezone": "Nowhere/Land"}', env=env)
    assert bad.returncode == 2 and "timezone" in bad.stderr
    bad = run_cli("preferences", "set", "u-cli", "--json", "{not json", env=env)
    assert bad.returncode == 2 and "json" in bad.stderr
    done = run_cli("preferences", "tenant-set", "acme", "--json", '{"channels": {"push": false}}', env=env)
    assert done.returncode == 0, done.stderr
    done = run_cli("preferences", "tenant-get", "acme", env=env)
    assert json.loads(done.stdout) == {"channels": {"push": False}}
