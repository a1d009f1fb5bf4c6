"""Who gets into the dashboard and which forms it carries out: sessions, roles, tenants and CSRF, over HTTP."""

from __future__ import annotations

import html
import json
import re
import uuid

from sqlalchemy import select

from api.dashboard.session import COOKIE, csrf_token
from api.dashboard.signin import sign_in_link
from notifications.sql.models import AuditLog
from tests.support.api import api, api_settings, token
from tests.support.system import System


def _cookie(tok: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={tok}"}


async def _audit(system: System) -> list[AuditLog]:
    async with system.db.sessions() as session:
        return list(await session.scalars(select(AuditLog).order_by(AuditLog.id)))


async def test_sessions_roles_and_forged_forms_are_refused(system: System) -> None:
    async with api(system) as (_, http):
        r = await http.get("/dashboard")
        assert r.status_code == 303 and r.headers["location"] == "/dashboard/login?next=/dashboard"

        expired = token(ttl=-60)
        r = await http.get("/dashboard/notifications", headers=_cookie(expired))
        assert r.status_code == 303 and r.headers["location"].endswith("&ended=1")
        r = await http.post("/dashboard/login", data={"token": expired})
        assert r.status_code == 401 and "token expired" in r.text
        r = await http.post("/dashboard/login", data={"token": token(role="service")})
        assert r.status_code == 401 and "admin role" in r.text
        r = await http.post("/dashboard/login", data={"token": token(secret="another-secret-" + "x" * 40)})
        assert r.status_code == 401 and "refused" in r.text

        admin = token(ttl=600)
        # A sign-in form posted from another site (login CSRF: the operator would end up in the
        # attacker's session) is refused, as the browser describes it or by its Origin.
        for foreign in (
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},
            {"Origin": "https://evil.example"},
            {"Origin": "null"},
        ):
            r = await http.post("/dashboard/login", data={"token": admin}, headers=foreign)
            assert r.status_code == 403 and "another site" in r.text and "set-cookie" not in r.headers, foreign
        r = await http.post(
            "/dashboard/login",
            data={"token": admin, "next": "https://evil.example/"},
            headers={"Origin": str(http.base_url).rstrip("/")},  # ours (the browser test sends same-origin)
        )
        assert r.status_code == 303 and r.headers["location"] == "/dashboard"  # only dashboard paths
        cookie = r.headers["set-cookie"]
        for part in ("HttpOnly", "SameSite=strict", "Path=/dashboard", f"{COOKIE}="):
            assert part.lower() in cookie.lower(), cookie
        max_age = int(cookie.lower().split("max-age=")[1].split(";")[0])
        assert 590 <= max_age <= 600  # the session ends with the token signed in with
        session = cookie.split(f"{COOKIE}=", 1)[1].split(";", 1)[0]
        assert session != admin  # a session of its own, not the pasted token
        bearer = await http.get("/api/admin/audit", headers={"Authorization": f"Bearer {session}"})
        assert bearer.status_code == 401 and "dashboard only" in bearer.text  # never an API token

        page = await http.get("/dashboard", headers=_cookie(session))
        assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
        assert csrf_token(session) in page.text
        drawn = re.search(r"data-series='([^']*)'", page.text)  # the chart drawn from the page itself
        assert drawn is not None and len(json.loads(html.unescape(drawn.group(1)))["minutes"]) == 60
        series = await http.get("/dashboard/overview/series", headers=_cookie(session))  # then its refreshes
        assert series.status_code == 200 and len(series.json()["minutes"]) == 60 and sum(series.json()["sent"]) == 0
        admin = session

        # a form without its CSRF token (or with another session's) changes nothing
        for fields in ({"confirm": "yes"}, {"confirm": "yes", "csrf": csrf_token(token(sub="mallory"))}):
            r = await http.post("/dashboard/queues/email/pause", data=fields, headers=_cookie(admin))
            assert r.status_code == 403 and "did not come from your dashboard" in r.text
        assert not (await system.client.queue_states())["email"]["paused"]
        # the first post asks; the confirmed one pauses, audited as the API's own action
        r = await http.post("/dashboard/queues/email/pause", data={"csrf": csrf_token(admin)}, headers=_cookie(admin))
        assert r.status_code == 200 and "Yes, pause" in r.text
        assert not (await system.client.queue_states())["email"]["paused"]
        fields = {"csrf": csrf_token(admin), "confirm": "yes", "reason": "maintenance"}
        r = await http.post("/dashboard/queues/email/pause", data=fields, headers=_cookie(admin))
        assert r.status_code == 303 and (await system.client.queue_states())["email"]["paused"]

        # the sign-in link: opening it changes nothing, its button signs in once
        link = sign_in_link(api_settings(system), "http://api.test").removeprefix("http://api.test")
        opened = await http.get(link)
        assert opened.status_code == 200 and "Sign in as dev-admin" in opened.text
        assert (await http.get(link)).status_code == 200  # a link preview did not use it up
        link_token = link.split("token=", 1)[1]
        used = await http.post("/dashboard/login", data={"token": link_token})
        assert used.status_code == 303 and used.headers["location"] == "/dashboard"
        for again in (await http.get(link), await http.post("/dashboard/login", data={"token": link_token})):
            assert again.status_code == 401 and "used already" in again.text
        bearer = await http.get("/api/admin/audit", headers={"Authorization": f"Bearer {link_token}"})
        assert bearer.status_code == 401

        # signing out ends the session for good, even for a copy of its cookie
        out = await http.post("/dashboard/logout", data={"csrf": csrf_token(admin)}, headers=_cookie(admin))
        assert out.status_code == 303 and out.headers["location"] == "/dashboard/login"
        after = await http.get("/dashboard", headers=_cookie(admin))
        assert after.status_code == 303 and after.headers["location"].endswith("&ended=1")

    rows = [(a.action, a.outcome, a.details.get("via"), a.details.get("reason")) for a in await _audit(system)]
    assert ("dashboard /dashboard/queues/email/pause", "forbidden", None, "csrf") in rows
    assert ("queues.pause", "ok", "dashboard", "maintenance") in rows
    assert sum(1 for r in rows if r[0] == "dashboard.login" and r[1] == "ok") == 2


async def test_a_tenant_token_sees_its_tenant_only_and_the_rate_limit_holds(system: System) -> None:
    ours, theirs = f"acme-{uuid.uuid4().hex[:6]}", f"globex-{uuid.uuid4().hex[:6]}"
    async with api(system, api_rate_limit=1) as (_, http):
        for nid, tenant in ((ours, "acme"), (theirs, "globex")):
            payload = {"notificationId": nid, "to": "x@example.com", "subject": "s", "html": "h", "tenant": tenant}
            await system.client.enqueue_email(payload, 5)
        acme = token(tenant="acme", ttl=600)
        listing = await http.get("/dashboard/notifications", headers=_cookie(acme))
        assert listing.status_code == 200 and ours in listing.text and theirs not in listing.text
        assert "x***@e***.com" in listing.text and "x@example.com" not in listing.text  # masked on lists
        assert (await http.get(f"/dashboard/notifications/{theirs}", headers=_cookie(acme))).status_code == 404
        overview = await http.get("/dashboard", headers=_cookie(acme))
        assert "Pause email" not in overview.text  # queue-wide switches are not a tenant's
        fields = {"csrf": csrf_token(acme), "confirm": "yes"}
        r = await http.post("/dashboard/queues/email/pause", data=fields, headers=_cookie(acme))
        assert r.status_code == 403 and not (await system.client.queue_states())["email"]["paused"]
        r = await http.get("/dashboard/notifications?since=yesterday", headers=_cookie(acme))
        assert r.status_code == 422 and "since" in r.text  # a bad filter names its field, as a page
        # queue operations count against the API's limit for the same subject
        fields = {"csrf": csrf_token(acme)}
        first = await http.post(f"/dashboard/notifications/{ours}/retry", data=fields, headers=_cookie(acme))
        assert first.status_code == 409  # not failed: a conflict, shown as a page
        second = await http.post(f"/dashboard/notifications/{ours}/retry", data=fields, headers=_cookie(acme))
        assert second.status_code == 429 and int(second.headers["retry-after"]) >= 1
    rows = {(a.action, a.outcome, a.tenant) for a in await _audit(system)}
    assert ("queues.pause", "forbidden", "acme") in rows and ("notifications.retry", "rate_limited", "acme") in rows


async def test_suppressions_and_a_campaign_are_managed_from_the_dashboard(system: System) -> None:
    admin = token(ttl=600)
    form = {"csrf": csrf_token(admin)}
    async with api(system) as (_, http):
        r = await http.post(
            "/dashboard/suppressions",
            data={**form, "channel": "email", "address": "Spam.Trap@Example.com", "note": "reported"},
            headers=_cookie(admin),
        )
        assert r.status_code == 303, r.text
        listing = await http.get("/dashboard/suppressions", headers=_cookie(admin))
        assert "s***@e***.com" in listing.text and "spam.trap@example.com" not in listing.text.lower()
        removal = re.search(r'action="(/dashboard/suppressions/\d+/remove)"', listing.text)
        assert removal is not None
        assert (await http.post(removal.group(1), data=form, headers=_cookie(admin))).status_code == 303
        assert "s***@e***.com" not in (await http.get("/dashboard/suppressions", headers=_cookie(admin))).text

        draft = await system.client.create_campaign(
            {"name": "Winter", "channel": "email", "subject": "Hi", "html": "<p>Hi</p>", "draft": True}
        )
        cid = draft["campaignId"]
        page = await http.get(f"/dashboard/campaigns/{cid}", headers=_cookie(admin))
        assert page.status_code == 200 and "Cancel campaign" in page.text
        asked = await http.post(f"/dashboard/campaigns/{cid}/cancel", data=form, headers=_cookie(admin))
        assert asked.status_code == 200 and "Yes, cancel it" in asked.text  # broad: asked first
        assert (await system.client.campaign(cid))["status"] == "draft"
        done = await http.post(
            f"/dashboard/campaigns/{cid}/cancel", data={**form, "confirm": "yes"}, headers=_cookie(admin)
        )
        assert done.status_code == 303 and (await system.client.campaign(cid))["status"] == "cancelled"

    rows = {(a.action, a.outcome, a.details.get("via")) for a in await _audit(system)}
    assert {("suppressions.add", "ok", "dashboard"), ("suppressions.remove", "ok", "dashboard")} <= rows
    assert ("campaigns.cancel", "ok", "dashboard") in rows
