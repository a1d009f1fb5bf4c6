"""The admin API against the real app (create_app), a real Temporal dev server and a real database.

Requests go through httpx's ASGITransport; workers run in-process with a scripted provider
whose behaviour is chosen by the recipient (ok / bad / flaky / slow), so every count is exact.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from pydantic import SecretStr
from sqlalchemy import select

from activities.providers import Providers
from activities.providers.base import DeliveryResult, EmailMessage, PushMessage
from api.main import create_app
from notifications.auth import mint_token
from notifications.errors import DeliveryError, ErrorCode
from notifications.sql.models import AuditLog, DeliveryAttempt
from tests.support.api import ADMIN, SECRET, Q, api, api_settings, auth, token, uid
from tests.support.system import System, wait_until

STAT_KEYS = {
    "waiting",
    "active",
    "completed",
    "failed",
    "delayed",
    "expired",
    "suppressed",
}  # the seed's five, and ours


class ScriptedProvider:
    """Behaviour by recipient: ok* sent, bad* permanent failure, flaky* retry in 10 min, slow* blocks."""

    name = "scripted"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.bad_fails = True

    async def _act(self, who: str, notification_id: str) -> DeliveryResult:
        if who.startswith("bad") and self.bad_fails:
            raise DeliveryError(ErrorCode.INVALID_RECIPIENT, "mailbox does not exist")
        if who.startswith("flaky"):
            raise DeliveryError(ErrorCode.PROVIDER_UNAVAILABLE, "provider answered 503", retry_after=600)
        if who.startswith("slow"):
            await self.release.wait()
        return DeliveryResult(self.name, f"scripted-{notification_id}")

    async def send_email(self, message: EmailMessage, *, idempotency_key: str) -> DeliveryResult:
        return await self._act(message.to, idempotency_key)

    async def send_push(self, message: PushMessage, *, idempotency_key: str) -> DeliveryResult:
        return await self._act(message.user_id or "", idempotency_key)


async def enqueue_email(http: httpx.AsyncClient, to: str, **extra: Any) -> str:
    r = await http.post(
        "/api/notifications/email",
        headers=auth(role="service", sub="svc"),
        json={"to": to, "subject": "Hello", "html": "<p>hi</p>", **extra},
    )
    assert r.status_code == 202, r.text
    return str(r.json()["notificationId"])


async def stats(http: httpx.AsyncClient) -> dict[str, Any]:
    r = await http.get(f"{Q}/stats", headers=ADMIN)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def in_progress(system: System, nid: str) -> bool:
    async with system.db.sessions() as session:
        found = await session.scalar(
            select(DeliveryAttempt.id).where(
                DeliveryAttempt.notification_id == nid, DeliveryAttempt.outcome == "in_progress"
            )
        )
    return found is not None


async def wait_row(system: System, nid: str, check: Any, timeout: float = 20) -> None:
    async def ok() -> bool:
        row = await system.row(nid)
        return row is not None and bool(check(row))

    await wait_until(ok, timeout=timeout)


async def audit_rows(system: System) -> list[AuditLog]:
    async with system.db.sessions() as session:
        return list(await session.scalars(select(AuditLog).order_by(AuditLog.id)))


# -- stats, exact ------------------------------------------------------------------------------------
@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_stats_are_exact_in_a_controlled_scenario(system: System) -> None:
    provider = ScriptedProvider()
    async with (
        api(system) as (_, http),
        system.worker(providers=Providers(email=provider, push=provider), email_concurrency=1),
    ):
        assert await stats(http) == {c: dict.fromkeys(STAT_KEYS, 0) for c in ("email", "push")}

        push_sent = (
            await http.post(
                f"{Q}/test-push", headers=ADMIN, json={"userId": "ok-user", "title": "T", "message": "M", "priority": 5}
            )
        ).json()
        ok = [await enqueue_email(http, f"ok{i}@example.com") for i in range(2)]
        bad = await enqueue_email(http, "bad@example.com")
        flaky = [await enqueue_email(http, f"flaky{i}@example.com") for i in range(3)]
        for nid in [*ok, push_sent["notificationId"]]:
            await system.wait_status(nid, "sent")
        await system.wait_status(bad, "failed")
        for nid in flaky:
            await wait_row(system, nid, lambda r: r.status == "retrying" and r.next_retry_at is not None)
        held = flaky[2]
        await system.client.pause(held, reason="operator hold")  # a retry in backoff, paused: waiting
        await wait_row(system, held, lambda r: r.paused)

        r = await http.post(f"{Q}/pause", headers=ADMIN, json={"queue": "push"})
        assert r.status_code == 200 and r.json()["queues"]["push"]["paused"] is True
        assert r.json()["queues"]["email"]["paused"] is False
        held_push = [
            (await http.post(f"{Q}/test-push", headers=ADMIN, json={"userId": f"ok-{i}", "message": "M"})).json()[
                "notificationId"
            ]
            for i in range(3)
        ]
        slow = await enqueue_email(http, "slow@example.com")
        await wait_until(lambda: in_progress(system, slow))
        queued = await enqueue_email(http, "ok-late@example.com")  # the one email slot is busy: waiting
        await asyncio.sleep(0.3)

        r = await http.post(f"/api/admin/notifications/{held_push[2]}/cancel", headers=ADMIN)
        assert r.status_code == 200, r.text
        assert r.json()["cancelled"] is True and r.json()["notification"]["status"] == "cancelled"

        assert await stats(http) == {
            "email": {
                "waiting": 2,
                "active": 1,
                "completed": 2,
                "failed": 1,
                "delayed": 2,
                "expired": 0,
                "suppressed": 0,
            },
            "push": {
                "waiting": 2,
                "active": 0,
                "completed": 1,
                "failed": 0,
                "delayed": 0,
                "expired": 0,
                "suppressed": 0,
            },
        }
        health = (await http.get(f"{Q}/health", headers=ADMIN)).json()
        assert health["queues"]["email"]["delayed"] == 2
        assert health["metrics"] == {
            "successRate": 0.75,
            "totalProcessed": 4,
            "successful": 3,
            "failed": 1,
            "pending": 7,
        }

        provider.release.set()
        await system.wait_status(slow, "sent")
        await system.wait_status(queued, "sent")
        r = await http.post(f"{Q}/resume", headers=ADMIN, json={"queue": "push"})
        assert r.json()["queues"]["push"]["paused"] is False
        for nid in held_push[:2]:
            await system.wait_status(nid, "sent")
        assert await stats(http) == {
            "email": {
                "waiting": 1,
                "active": 0,
                "completed": 4,
                "failed": 1,
                "delayed": 2,
                "expired": 0,
                "suppressed": 0,
            },
            "push": {
                "waiting": 0,
                "active": 0,
                "completed": 3,
                "failed": 0,
                "delayed": 0,
                "expired": 0,
                "suppressed": 0,
            },
        }


# -- the seed's endpoints: success paths and shapes -------------------------------------------------------
@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_seed_endpoints_shapes(system: System) -> None:
    async with api(system) as (_, http), system.worker():
        r = await http.get(f"{Q}/stats", headers=ADMIN)
        assert r.status_code == 200 and set(r.json()) == {"email", "push"}
        assert all(set(v) == STAT_KEYS and all(isinstance(n, int) for n in v.values()) for v in r.json().values())

        r = await http.post(
            f"{Q}/test-email",
            headers=ADMIN,
            json={
                "to": "test@example.com",
                "subject": "Test Email",
                "message": "<p>This is a test email from the notification worker.</p>",
                "priority": 5,
            },
        )
        assert r.status_code == 202, r.text
        email = r.json()
        assert email["status"] in ("queued", "retrying", "sent") and email["channel"] == "email"
        r = await http.post(
            f"{Q}/test-push",
            headers=ADMIN,
            json={
                "userId": "507f1f77bcf86cd7994390e",
                "title": "Test Push",
                "message": "This is a test push notification",
                "priority": 5,
            },
        )
        assert r.status_code == 202, r.text
        push = r.json()
        await system.wait_status(email["notificationId"], "sent")
        await system.wait_status(push["notificationId"], "sent")

        # pause / resume: idempotent, body optional, the response says the resulting state
        for _ in range(2):
            r = await http.post(f"{Q}/pause", headers=ADMIN)
            assert r.status_code == 200
            assert {k: v["paused"] for k, v in r.json()["queues"].items()} == {"email": True, "push": True}
            assert r.json()["queues"]["email"]["updatedBy"] == "alice"
        r = await http.post(f"{Q}/resume", headers=ADMIN, json={"queue": "email"})
        assert {k: v["paused"] for k, v in r.json()["queues"].items()} == {"email": False, "push": True}
        r = await http.post(f"{Q}/resume", headers=ADMIN)
        assert {k: v["paused"] for k, v in r.json()["queues"].items()} == {"email": False, "push": False}

        r = await http.get(f"{Q}/health", headers=ADMIN)
        body = r.json()
        assert r.status_code == 200, body
        assert body["status"] == "healthy"
        assert {"status", "timestamp", "metrics", "queues", "uptime"} <= set(body)
        assert set(body["metrics"]) == {"successRate", "totalProcessed", "successful", "failed", "pending"}
        assert body["metrics"]["successful"] == 2 and body["metrics"]["successRate"] == 1.0
        assert body["timestamp"].endswith("Z") and isinstance(body["uptime"], int)
        checks = body["checks"]
        assert checks["temporal"]["status"] == "ok" and checks["database"]["status"] == "ok"
        assert checks["workers"]["email"]["status"] == "ok" and checks["workers"]["push"]["status"] == "ok"
        assert checks["providers"]["email"]["status"] == "ok"

        # list, filters, cursor pagination, one notification with its log and live status
        r = await http.get("/api/admin/notifications", headers=ADMIN, params={"limit": 1})
        page1 = r.json()
        assert r.status_code == 200 and len(page1["items"]) == 1 and page1["nextCursor"]
        r = await http.get(
            "/api/admin/notifications", headers=ADMIN, params={"limit": 1, "cursor": page1["nextCursor"]}
        )
        page2 = r.json()
        assert len(page2["items"]) == 1 and page2["nextCursor"] is None
        assert {page1["items"][0]["notificationId"], page2["items"][0]["notificationId"]} == {
            email["notificationId"],
            push["notificationId"],
        }
        r = await http.get("/api/admin/notifications", headers=ADMIN, params={"channel": "push", "status": "sent"})
        assert [i["notificationId"] for i in r.json()["items"]] == [push["notificationId"]]
        r = await http.get(
            "/api/admin/notifications",
            headers=ADMIN,
            params={"userId": "507f1f77bcf86cd7994390e", "since": "2000-01-01T00:00:00Z"},
        )
        assert [i["notificationId"] for i in r.json()["items"]] == [push["notificationId"]]
        r = await http.get("/api/admin/notifications", headers=ADMIN, params={"until": "2000-01-01T00:00:00Z"})
        assert r.json()["items"] == []

        r = await http.get(f"/api/admin/notifications/{email['notificationId']}", headers=ADMIN)
        detail = r.json()
        assert r.status_code == 200, detail
        assert detail["notification"]["status"] == "sent" and detail["notification"]["type"] == "test"
        assert [a["outcome"] for a in detail["deliveryLog"]] == ["sent"]
        assert detail["workflow"]["status"] == "sent" and detail["workflowError"] is None

        r = await http.get("/api/admin/audit", headers=ADMIN)
        actions = [e["action"] for e in r.json()["items"]]
        assert actions[:2] == ["queues.resume", "queues.resume"] and "queues.test_email" in actions
        assert all(e["actor"] == "alice" and e["outcome"] == "ok" for e in r.json()["items"])


# -- retry, cancel, dead letters ---------------------------------------------------------------------------
@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_retry_cancel_and_dead_letter(system: System) -> None:
    provider = ScriptedProvider()
    async with api(system) as (_, http), system.worker(providers=Providers(email=provider, push=provider)):
        failed = [await enqueue_email(http, f"bad{i}@example.com", type="billing") for i in range(3)]
        for nid in failed:
            await system.wait_status(nid, "failed")
        sent = await enqueue_email(http, "ok@example.com")
        await system.wait_status(sent, "sent")

        r = await http.get("/api/admin/notifications/dead-letter", headers=ADMIN)
        items = r.json()["items"]
        assert r.status_code == 200 and {i["notificationId"] for i in items} == set(failed)
        assert items[0]["lastError"]["code"] == "INVALID_RECIPIENT" and items[0]["lastError"]["message"]

        # retry refused unless failed; a failed one re-runs: new run, same ID, fresh attempts
        r = await http.post(f"/api/admin/notifications/{sent}/retry", headers=ADMIN)
        assert r.status_code == 409
        first_run = (await system.row(failed[0])).run_id  # type: ignore[union-attr]
        provider.bad_fails = False
        r = await http.post(f"/api/admin/notifications/{failed[0]}/retry", headers=ADMIN)
        assert r.status_code == 200, r.text
        retried = r.json()
        assert retried["notificationId"] == failed[0] and retried["runId"] != first_run
        # fresh attempts: none yet, or the new run's first when the worker beat this response
        assert retried["status"] in ("queued", "retrying", "sent") and retried["attempts"] <= 1
        row = await system.wait_status(failed[0], "sent")
        assert row.run_id != first_run and row.attempts == 1

        r = await http.post(
            "/api/admin/notifications/dead-letter/retry",
            headers=ADMIN,
            json={"channel": "email", "errorCode": "INVALID_RECIPIENT"},
        )
        assert r.status_code == 200, r.text
        assert sorted(r.json()["retried"]) == sorted(failed[1:]) and r.json()["matched"] == 2
        for nid in failed[1:]:
            await system.wait_status(nid, "sent")
        assert (await http.get("/api/admin/notifications/dead-letter", headers=ADMIN)).json()["items"] == []

        # cancel: 409 once sent; a notification held by a paused queue ends cancelled
        r = await http.post(f"/api/admin/notifications/{sent}/cancel", headers=ADMIN)
        assert r.status_code == 409
        await http.post(f"{Q}/pause", headers=ADMIN, json={"queue": "email"})
        held = await enqueue_email(http, "ok-held@example.com")
        r = await http.post(f"/api/admin/notifications/{held}/cancel", headers=ADMIN)
        assert r.status_code == 200 and r.json()["cancelled"] is True
        r = await http.post("/api/admin/notifications/nope-404/retry", headers=ADMIN)
        assert r.status_code == 404
    outcomes = [(a.action, a.target, a.outcome) for a in await audit_rows(system)]
    assert ("notifications.retry", sent, "conflict") in outcomes
    assert ("notifications.retry", failed[0], "ok") in outcomes
    assert ("notifications.cancel", held, "ok") in outcomes
    assert ("notifications.retry", "nope-404", "not_found") in outcomes
    assert ("dead_letter.retry", "dead-letter", "ok") in outcomes


# -- enqueue over HTTP ---------------------------------------------------------------------------------
async def test_enqueue_routes_and_idempotency_key(system: System) -> None:
    service = auth(role="service", sub="billing-svc")
    async with api(system) as (_, http), system.worker():
        key = uid("order-42")
        body = {
            "to": "user@example.com",
            "subject": "Receipt",
            "html": "<p>thanks</p>",
            "type": "receipt",
            "userId": "u1",
            "priority": 8,
        }
        r1 = await http.post("/api/notifications/email", headers={**service, "Idempotency-Key": key}, json=body)
        r2 = await http.post("/api/notifications/email", headers={**service, "Idempotency-Key": key}, json=body)
        assert r1.status_code == r2.status_code == 202, r1.text
        assert r1.json()["notificationId"] == r2.json()["notificationId"] == key
        assert r1.json()["priority"] == 8
        await system.wait_status(key, "sent")
        assert len([m for m in await system.outbox() if m.notification_id == key]) == 1

        r = await http.post(
            "/api/notifications/email",
            headers={**service, "Idempotency-Key": uid("k")},
            json={**body, "notificationId": uid("other")},
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "Idempotency-Key"
        r = await http.post(
            "/api/notifications/push",
            headers={**service, "Idempotency-Key": key},
            json={"userId": "u1", "title": "t", "message": "m"},
        )
        assert r.status_code == 409
        r = await http.post(
            "/api/notifications/push",
            headers=auth(role="admin"),
            json={"userId": "u1", "title": "Hi", "message": "there", "data": {"k": "v"}},
        )
        assert r.status_code == 202 and r.json()["channel"] == "push"
        r = await http.post("/api/notifications/email", headers={**service, "Idempotency-Key": "bad key!"}, json=body)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "Idempotency-Key"
        r = await http.post("/api/notifications/email", headers=auth(role="viewer"), json=body)
        assert r.status_code == 403
        r = await http.post("/api/notifications/email", json=body)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
        # a tenant token enqueues for its tenant only
        r = await http.post(
            "/api/notifications/email", headers=auth(role="service", tenant="acme"), json={**body, "tenant": "globex"}
        )
        assert r.status_code == 403
        r = await http.post("/api/notifications/email", headers=auth(role="service", tenant="acme"), json=body)
        assert r.status_code == 202
        assert (await system.row(r.json()["notificationId"])).tenant == "acme"  # type: ignore[union-attr]


# -- validation and malformed input ----------------------------------------------------------------------
async def test_validation_errors_name_the_field(system: System) -> None:
    service = auth(role="service")
    async with api(system, api_max_body_bytes=6000) as (_, http):
        cases = [
            ("/api/notifications/email", {"to": "not-an-email", "subject": "x"}, "to"),
            ("/api/notifications/email", {"to": "a@example.com", "priority": 11}, "priority"),
            ("/api/notifications/email", {"to": "a@example.com", "subjcet": "typo"}, "subjcet"),
            ("/api/notifications/email", {"to": "a@example.com", "subject": "s" * 999}, "subject"),
            ("/api/notifications/push", {"title": "no recipient"}, "body"),
            ("/api/notifications/push", {"userId": "u", "data": {"a": {"nested": 1}}}, "data"),
            (f"{Q}/test-email", {"to": "a@example.com", "message": "m", "priority": 0}, "priority"),
            (f"{Q}/test-push", {"userId": "u", "message": "m", "extra": True}, "extra"),
            (f"{Q}/pause", {"queue": "sms"}, "queue"),
        ]
        for path, body, field in cases:
            r = await http.post(path, headers=service if path.startswith("/api/notifications") else ADMIN, json=body)
            assert r.status_code == 422, (path, body, r.text)
            errors = r.json()["errors"]
            assert any(e["field"] == field or e["field"].startswith(f"{field}.") for e in errors), (field, errors)
            assert all(e["message"] for e in errors)
        # push payload over FCM's 4 KB (the body itself is under the API's limit)
        r = await http.post(
            "/api/notifications/push",
            headers=service,
            json={"userId": "u", "title": "t", "message": "m", "data": {f"k{i}": "v" * 140 for i in range(30)}},
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "data"

        r = await http.post(
            "/api/notifications/email",
            headers={**service, "Content-Type": "application/json"},
            content=b'{"to": "a@example.com",',
        )
        assert r.status_code == 400 and r.json()["detail"] == "malformed JSON body"
        r = await http.post(
            "/api/notifications/email", headers={**service, "Content-Type": "text/plain"}, content=b"to=a@example.com"
        )
        assert r.status_code == 415
        r = await http.post(
            "/api/notifications/email", headers=service, json={"to": "a@example.com", "html": "x" * 7000}
        )
        assert r.status_code == 413
        r = await http.post(
            "/api/notifications/email", headers={**service, "Content-Type": "application/json"}, content=b"[1, 2]"
        )
        assert r.status_code == 422
        r = await http.get("/api/admin/notifications", headers=ADMIN, params={"cursor": "garbage!!"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "cursor"
        r = await http.get("/api/admin/notifications", headers=ADMIN, params={"limit": 0, "status": "lost"})
        assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"limit", "status"}
        r = await http.get("/api/admin/notifications", headers=ADMIN, params={"since": "9999-12-31T23:59:59-23:59"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "since"
        r = await http.get("/api/admin/notifications", headers=ADMIN, params={"until": "2030-01-01T00:00:00"})
        assert r.status_code == 200
        r = await http.get("/api/admin/notifications/bad%20id!", headers=ADMIN)
        assert r.status_code == 422


# -- auth ---------------------------------------------------------------------------------------------------
def admin_routes(app: FastAPI) -> list[tuple[str, str]]:
    out = []
    for rc in iter_route_contexts(app.routes):
        path = rc.path or ""
        for method in sorted(getattr(rc.original_route, "methods", None) or ()):
            # /api/webhooks/* are the providers': signed by them (Svix), not by our JWTs
            if method != "HEAD" and path.startswith("/api/") and not path.startswith("/api/webhooks/"):
                out.append((method, path))
    return out


def concrete(path: str) -> str:
    return path.replace("{notification_id}", "some-id")


async def test_no_admin_route_is_reachable_without_auth(system: System) -> None:
    expired = token(ttl=-60)
    forged = token(secret="another-secret-" + "z" * 40)
    wrong_role = token(role="service")
    none_alg = jwt.encode({"sub": "x", "role": "admin", "exp": int(time.time()) + 60}, None, algorithm="none")  # type: ignore[arg-type]
    async with api(system) as (app, http):
        routes = admin_routes(app)
        admin_only = [(m, p) for m, p in routes if p.startswith("/api/admin")]
        assert len(admin_only) >= 13, routes
        openapi_paths = {p for p in app.openapi()["paths"] if p.startswith("/api/admin")}
        assert openapi_paths == {p for _, p in admin_only}
        for method, path in routes:
            url = concrete(path)
            for headers, expected in (
                ({}, 401),
                ({"Authorization": "Bearer"}, 401),
                ({"Authorization": "Basic YTpi"}, 401),
                (auth(expired), 401),
                (auth(forged), 401),
                (auth(none_alg), 401),
                (auth("not.a.jwt"), 401),
                (auth(wrong_role if path.startswith("/api/admin") else token(role="viewer")), 403),
            ):
                r = await http.request(method, url, headers=headers, json={} if method == "POST" else None)
                assert r.status_code == expected, (method, path, headers, r.status_code, r.text)
                if expected == 401:
                    assert r.headers["WWW-Authenticate"].startswith("Bearer"), (method, path)
        assert ("GET", "/api/admin/audit") in routes
        denied = [a for a in await audit_rows(system) if a.outcome == "forbidden"]
        assert len(denied) == len(routes) and all(a.actor == "alice" for a in denied)


async def test_tokens_from_the_cli_helper_and_production_refusal(system: System) -> None:
    settings = api_settings(system)
    minted = mint_token(settings, role="admin", ttl_seconds=60, subject="ops", tenant="acme")
    async with api(system) as (_, http):
        r = await http.get(f"{Q}/stats", headers=auth(minted))
        assert r.status_code == 200
    with pytest.raises(Exception, match="JWT_SECRET"):
        create_app(system.settings.model_copy(update={"env": "production", "jwt_secret": None}))


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_tenant_isolation(system: System) -> None:
    acme, globex = auth(tenant="acme", sub="acme-ops"), auth(tenant="globex", sub="globex-ops")
    provider = ScriptedProvider()
    async with api(system) as (_, http), system.worker(providers=Providers(email=provider, push=provider)):
        r = await http.post(
            "/api/notifications/email",
            headers=auth(role="service", tenant="acme"),
            json={"to": "bad@example.com", "subject": "s", "text": "hello"},
        )
        nid = r.json()["notificationId"]
        await system.wait_status(nid, "failed")
        other = await enqueue_email(http, "ok@example.com", tenant="globex")
        await system.wait_status(other, "sent")

        assert [
            i["notificationId"] for i in (await http.get("/api/admin/notifications", headers=acme)).json()["items"]
        ] == [nid]
        assert (await http.get("/api/admin/notifications", headers=globex)).json()["items"][0][
            "notificationId"
        ] == other
        for method, path in (
            ("GET", f"/api/admin/notifications/{nid}"),
            ("POST", f"/api/admin/notifications/{nid}/retry"),
            ("POST", f"/api/admin/notifications/{nid}/cancel"),
        ):
            r = await http.request(method, path, headers=globex)
            assert r.status_code == 404, (path, r.text)
        assert (await http.get("/api/admin/notifications/dead-letter", headers=globex)).json()["items"] == []
        r = await http.post("/api/admin/notifications/dead-letter/retry", headers=globex, json={})
        assert r.json()["matched"] == 0
        assert (await http.get(f"{Q}/stats", headers=globex)).json()["email"]["failed"] == 0
        assert (await http.get(f"{Q}/stats", headers=acme)).json()["email"]["failed"] == 1
        for path in (f"{Q}/pause", f"{Q}/resume"):
            assert (await http.post(path, headers=acme)).status_code == 403
        r = await http.post(f"{Q}/test-email", headers=acme, json={"to": "ok@example.com", "message": "m"})
        assert (await system.row(r.json()["notificationId"])).tenant == "acme"  # type: ignore[union-attr]
        audit = (await http.get("/api/admin/audit", headers=globex)).json()["items"]
        assert audit and all(e["tenant"] == "globex" for e in audit)
        r = await http.get(f"/api/admin/notifications/{nid}", headers=acme)
        assert r.status_code == 200 and r.json()["notification"]["tenant"] == "acme"


# -- rate limit --------------------------------------------------------------------------------------------
async def test_rate_limit_per_subject(system: System) -> None:
    async with api(system, api_rate_limit=3, api_rate_limit_window_seconds=30) as (_, http):
        bob = auth(sub="bob")
        codes = [(await http.post(f"{Q}/pause", headers=bob, json={"queue": "email"})).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        r = await http.post(f"{Q}/resume", headers=bob)
        assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 30
        r = await http.post("/api/admin/notifications/x/cancel", headers=bob)
        assert r.status_code == 429
        assert (await http.get(f"{Q}/stats", headers=bob)).status_code == 200  # reads are not limited
        assert (await http.post(f"{Q}/resume", headers=auth(sub="carol"))).status_code == 200  # per subject
    limited = [a for a in await audit_rows(system) if a.outcome == "rate_limited"]
    assert {a.action for a in limited} == {"queues.resume", "notifications.cancel"}
    assert all(a.actor == "bob" for a in limited)


async def test_rs256_public_key_verification(system: System, tmp_path: Any) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    key_file = tmp_path / "jwt.pub"
    key_file.write_text(public_pem)
    async with api(system, jwt_secret=None, jwt_public_key=str(key_file), jwt_audience="notifications") as (_, http):
        now = int(time.time())
        claims = {"sub": "idp-user", "role": "admin", "exp": now + 60, "aud": "notifications"}
        good = jwt.encode(claims, private_pem, algorithm="RS256")
        assert (await http.get(f"{Q}/stats", headers=auth(good))).status_code == 200
        wrong_aud = jwt.encode({**claims, "aud": "other"}, private_pem, algorithm="RS256")
        assert (await http.get(f"{Q}/stats", headers=auth(wrong_aud))).status_code == 401
        # HS256 signed with the public key as the secret: the classic algorithm confusion
        confused = jwt.encode(claims, SECRET, algorithm="HS256")
        assert (await http.get(f"{Q}/stats", headers=auth(confused))).status_code == 401
        no_exp = jwt.encode({k: v for k, v in claims.items() if k != "exp"}, private_pem, algorithm="RS256")
        assert (await http.get(f"{Q}/stats", headers=auth(no_exp))).status_code == 401
    settings = api_settings(system, jwt_secret=None, jwt_public_key=public_pem, jwt_private_key=SecretStr(private_pem))
    minted = mint_token(settings, role="service", ttl_seconds=60)
    assert jwt.decode(minted, public_pem, algorithms=["RS256"])["role"] == "service"
