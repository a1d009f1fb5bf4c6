"""Scheduling over HTTP: `sendAt` / `expiresAt` on the enqueue routes, the reschedule route, the
synchronous cancel, their errors and their audit entries; the same through the CLI."""

from __future__ import annotations

import asyncio
import getpass
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from notifications.sql.models import AuditLog
from tests.support.api import ADMIN, api, auth
from tests.support.system import System, outbox_providers, run_cli

N = "/api/admin/notifications"


def at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def enqueue(http: Any, **extra: Any) -> Any:
    return await http.post(
        "/api/notifications/email",
        headers=auth(role="service", sub="svc"),
        json={"to": "patient@example.com", "subject": "Hello", "html": "<p>hi</p>", **extra},
    )


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_schedule_reschedule_and_cancel_over_http(system: System) -> None:
    async with api(system) as (_, http), system.worker(outbox_providers(system)):
        r = await enqueue(http, sendAt=at(3600), expiresAt=at(7200))
        assert r.status_code == 202, r.text
        nid = r.json()["notificationId"]
        assert r.json()["status"] == "scheduled" and r.json()["sendAt"] and r.json()["expiresAt"]

        r = await http.get(f"{N}/{nid}", headers=ADMIN)
        assert r.status_code == 200 and r.json()["notification"]["status"] == "scheduled"
        r = await http.get(N, headers=ADMIN, params={"status": "scheduled"})
        assert [item["notificationId"] for item in r.json()["items"]] == [nid]

        later = at(5400)
        r = await http.post(f"{N}/{nid}/reschedule", headers=ADMIN, json={"sendAt": later})
        assert r.status_code == 200, r.text
        assert datetime.fromisoformat(r.json()["sendAt"]) == datetime.fromisoformat(later)

        for body, field in (({"sendAt": "2030-01-01T10:00:00"}, "sendAt"), ({"when": at(60)}, "when")):
            r = await http.post(f"{N}/{nid}/reschedule", headers=ADMIN, json=body)
            assert r.status_code == 422 and field in r.text, r.text
        r = await http.post(f"{N}/nope/reschedule", headers=ADMIN, json={"sendAt": at(60)})
        assert r.status_code == 404

        r = await http.post(f"{N}/{nid}/cancel", headers=ADMIN)
        assert r.status_code == 200 and r.json()["cancelled"] is True, r.text
        assert r.json()["notification"]["status"] == "cancelled"
        r = await http.post(f"{N}/{nid}/cancel", headers=ADMIN)
        assert r.status_code == 409
        r = await http.post(f"{N}/{nid}/reschedule", headers=ADMIN, json={"sendAt": at(60)})
        assert r.status_code == 409

        push_at = at(3600)
        r = await http.post(
            "/api/notifications/push",
            headers=auth(role="service", sub="svc"),
            json={"userId": "u-sched", "title": "Later", "message": "m", "sendAt": push_at},
        )
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "scheduled" and r.json()["channel"] == "push"
        assert datetime.fromisoformat(r.json()["sendAt"]) == datetime.fromisoformat(push_at)

        r = await enqueue(http, sendAt=at(60), expiresAt=at(30))
        assert r.status_code == 422 and "expiresAt" in r.text
        r = await enqueue(http, sendAt=(datetime.now(UTC) + timedelta(days=366)).isoformat())
        assert r.status_code == 422 and "sendAt" in r.text

    async with system.db.sessions() as session:
        rows = list(await session.scalars(select(AuditLog).order_by(AuditLog.id)))
    actions = [(a.action, a.outcome) for a in rows]
    assert ("notifications.reschedule", "ok") in actions and ("notifications.cancel", "ok") in actions
    # one row per call, the API's: the client it calls writes none of its own
    assert actions.count(("notifications.reschedule", "ok")) == 1 and actions.count(("notifications.cancel", "ok")) == 1
    assert {a.actor for a in rows if a.action in ("notifications.reschedule", "notifications.cancel")} == {"alice"}


async def test_the_cli_schedules_and_reschedules(system: System) -> None:
    async with system.worker(outbox_providers(system)):  # an update is answered by the workflow's worker
        nid = await asyncio.to_thread(_cli_session, system)
    async with system.db.sessions() as session:
        rows = list(await session.scalars(select(AuditLog).where(AuditLog.target == nid).order_by(AuditLog.id)))
    # audited like preferences set from the CLI: by cli:<login>, with the notification's tenant
    assert [(a.action, a.outcome) for a in rows] == [
        ("notifications.reschedule", "ok"),
        ("notifications.reschedule", "invalid"),
        ("notifications.cancel", "ok"),
    ]
    assert {a.actor for a in rows} == {f"cli:{getpass.getuser()}"}
    assert rows[0].tenant == "clinic-a" and rows[2].details == {"status": "cancelled"}
    assert datetime.fromisoformat(rows[0].details["sendAt"]) > datetime.now(UTC) + timedelta(minutes=20)


def _cli_session(system: System) -> str:
    env = {"TEMPORAL_ADDRESS": system.settings.temporal_address, "DATABASE_URL": system.settings.database_url}
    sent = run_cli(
        "send",
        "email",
        "--to",
        "a@example.com",
        "--subject",
        "s",
        "--text",
        "Your appointment is tomorrow",
        "--send-at",
        at(3600),
        "--expires-at",
        at(7200),
        "--tenant",
        "clinic-a",
        env=env,
    )
    assert sent.returncode == 0, sent.stderr
    record = json.loads(sent.stdout)
    assert record["status"] == "scheduled"
    moved = run_cli("reschedule", record["notificationId"], "--send-at", at(1800), env=env)
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout)["status"] == "scheduled"
    bad = run_cli("reschedule", record["notificationId"], "--send-at", "tomorrow", env=env)
    assert bad.returncode != 0 and "sendAt" in bad.stderr
    cancelled = run_cli("cancel", record["notificationId"], env=env)
    assert cancelled.returncode == 0 and json.loads(cancelled.stdout)["status"] == "cancelled", cancelled.stderr
    return str(record["notificationId"])
