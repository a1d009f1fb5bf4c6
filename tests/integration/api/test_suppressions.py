"""The suppression list over HTTP and the CLI: entries by tenant and channel, filters and pages, the
audit trail, and what it stops when a send is due (both channels; `critical` passes an unsubscribe only)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import select

from notifications.sql.models import AuditLog
from tests.support.api import ADMIN, api, auth
from tests.support.system import System, outbox_providers, run_cli

S = "/api/admin/suppressions"
TOKEN = "device-token-" + "z" * 40


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_suppressed_recipients_are_not_sent_to_on_either_channel(system: System) -> None:
    async with api(system) as (_, http), system.worker(outbox_providers(system)):
        for body in (
            {"channel": "email", "address": " Quiet@Example.com ", "note": "asked by phone"},
            {"channel": "push", "address": TOKEN},
            {"channel": "email", "address": "left@example.com", "reason": "unsubscribe"},
        ):
            r = await http.post(S, headers=ADMIN, json=body)
            assert r.status_code == 201, r.text
        r = await http.post(S, headers=ADMIN, json={"channel": "email", "address": "quiet@example.com"})
        assert r.status_code == 200 and r.json()["reason"] == "manual"  # listed already: kept as it was
        assert r.json()["address"] == "quiet@example.com" and r.json()["note"] == "asked by phone"

        svc = auth(role="service", sub="svc")
        sends: dict[str, tuple[str, dict[str, Any]]] = {
            "email": ("email", {"to": "QUIET@example.com", "subject": "s", "text": "t"}),
            "email-critical": ("email", {"to": "quiet@example.com", "subject": "s", "text": "t", "critical": True}),
            "push": ("push", {"userId": "u1", "token": TOKEN, "title": "t", "message": "m"}),
            "unsubscribed": ("email", {"to": "left@example.com", "subject": "s", "text": "t"}),
            "unsubscribed-critical": (
                "email",
                {"to": "left@example.com", "subject": "s", "text": "t", "critical": True},
            ),
        }
        ids = {}
        for name, (channel, body) in sends.items():
            r = await http.post(f"/api/notifications/{channel}", headers=svc, json=body)
            assert r.status_code == 202, r.text
            ids[name] = r.json()["notificationId"]
        expected = {
            "email": "suppressed",
            "email-critical": "suppressed",  # critical does not pass a manual entry
            "push": "suppressed",
            "unsubscribed": "suppressed",
            "unsubscribed-critical": "sent",  # it does pass an unsubscribe: a password reset still arrives
        }
        for name, status in expected.items():
            row = await system.wait_status(ids[name], status)
            if status == "suppressed":
                assert row.error_code == "RECIPIENT_SUPPRESSED" and row.attempts == 0

        page = (await http.get(S, headers=ADMIN, params={"limit": 2})).json()
        assert len(page["items"]) == 2 and page["nextCursor"]
        rest = (await http.get(S, headers=ADMIN, params={"limit": 2, "cursor": page["nextCursor"]})).json()
        assert len(rest["items"]) == 1 and rest["nextCursor"] is None
        assert [
            i["channel"] for i in (await http.get(S, headers=ADMIN, params={"channel": "push"})).json()["items"]
        ] == ["push"]
        found = (await http.get(S, headers=ADMIN, params={"q": "QUIET", "reason": "manual"})).json()["items"]
        assert [i["address"] for i in found] == ["quiet@example.com"]

        for body, field in (
            ({"channel": "sms", "address": "x"}, "channel"),
            ({"channel": "email", "address": "not-an-address"}, "address"),
            ({"channel": "email", "address": "a@b.c", "reason": "dislike"}, "reason"),
            ({"channel": "email"}, "address"),
        ):
            r = await http.post(S, headers=ADMIN, json=body)
            assert r.status_code == 422 and field in r.text, (body, r.text)

        entry = found[0]["id"]
        r = await http.delete(f"{S}/{entry}", headers=ADMIN)
        assert r.status_code == 200 and r.json()["address"] == "quiet@example.com"
        assert (await http.delete(f"{S}/{entry}", headers=ADMIN)).status_code == 404
        r = await http.post("/api/notifications/email", headers=svc, json=sends["email"][1])
        await system.wait_status(r.json()["notificationId"], "sent")  # off the list: sent again
        assert (await http.get(S, headers=auth(tenant="acme"))).json()["items"] == []  # another tenant's list

    async with system.db.sessions() as session:
        entries = list(await session.scalars(select(AuditLog).where(AuditLog.action.like("suppressions.%"))))
    actions = [(e.action, e.outcome) for e in entries]
    assert actions.count(("suppressions.add", "ok")) == 4 and ("suppressions.remove", "ok") in actions
    assert all("quiet@example.com" not in json.dumps(e.details) for e in entries)  # masked in the audit trail


async def test_the_cli_lists_adds_and_removes(system: System) -> None:
    await asyncio.to_thread(_cli_session, system)


def _cli_session(system: System) -> None:
    env = {"DATABASE_URL": system.settings.database_url}
    added = run_cli("suppressions", "add", "Someone@Example.com", "--note", "bounced elsewhere", env=env)
    assert added.returncode == 0, added.stderr
    entry = json.loads(added.stdout)
    assert entry["address"] == "someone@example.com" and entry["reason"] == "manual"
    listed = run_cli("suppressions", "list", "--q", "someone", env=env)
    assert [i["id"] for i in json.loads(listed.stdout)] == [entry["id"]]
    bad = run_cli("suppressions", "add", "x", "--channel", "email", env=env)
    assert bad.returncode == 2 and "address" in bad.stderr
    removed = run_cli("suppressions", "remove", str(entry["id"]), env=env)
    assert removed.returncode == 0 and json.loads(removed.stdout)["id"] == entry["id"]
    gone = run_cli("suppressions", "remove", str(entry["id"]), env=env)
    assert gone.returncode == 1 and "no suppression" in gone.stderr
