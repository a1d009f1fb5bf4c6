"""A push's `fallback` over HTTP: a bad one is a 422 naming its field; the records of a push and of
the email sent in its place name each other (`fallbackId`, `fallbackOf`) in the detail and the list."""

from __future__ import annotations

from typing import Any

import httpx

from activities.providers import OutboxProvider, Providers
from notifications.errors import DeliveryError, ErrorCode
from tests.support.api import ADMIN, api, auth, uid
from tests.support.scripted import ScriptedProvider
from tests.support.system import System, wait_until

SERVICE = auth(role="service", sub="svc", ttl=3600)
TO = "patient@example.com"


def push(**extra: Any) -> dict[str, Any]:
    return {"userId": "u-api", "title": "Results", "message": "Your results are ready", **extra}


def fallback(**email: Any) -> dict[str, Any]:
    return {"email": {"to": TO, "subject": "Your results", "text": "They are ready.", **email}}


async def fields(http: httpx.AsyncClient, path: str, body: dict[str, Any], **headers: str) -> set[str]:
    r = await http.post(path, json=body, headers={**SERVICE, **headers})
    assert r.status_code == 422, r.text
    return {e["field"] for e in r.json()["errors"]}


async def test_bad_fallbacks_are_422_naming_the_field(system: System) -> None:
    async with api(system) as (_, http):
        url = "/api/notifications/push"
        assert await fields(http, url, push(fallback=fallback(subjct="typo"))) == {"fallback.email.subjct"}
        assert await fields(http, url, push(fallback=fallback(to="not-an-address"))) == {"fallback.email.to"}
        assert await fields(http, url, push(fallback={"email": {"subject": "s", "text": "t"}})) == {"fallback.email.to"}
        assert await fields(http, url, push(fallback={"email": {"to": TO}})) == {
            "fallback.email.subject",
            "fallback.email.html",
        }
        assert await fields(http, url, push(fallback=fallback(subject=None))) == {"fallback.email.subject"}
        assert await fields(http, url, push(fallback={"sms": {}, "email": fallback()["email"]})) == {"fallback.sms"}
        assert await fields(http, url, push(fallback="email")) == {"fallback"}
        # a template is rendered at the enqueue, with the push's data
        unknown = {"email": {"to": TO, "type": "no_such_template"}}
        assert await fields(http, url, push(fallback=unknown)) == {"fallback.email.type"}
        typed = {"email": {"to": TO, "type": "appointment_reminder"}}
        assert await fields(http, url, push(fallback=typed, data={"name": "Amina"})) == {"data.provider_name"}
        # the email's ID is the push's plus -fallback-email, within the 128 characters of an ID
        long_key = "k" * 120
        assert await fields(http, url, push(fallback=fallback()), **{"Idempotency-Key": long_key}) == {"notificationId"}
        # only a push falls back
        email = {"to": TO, "subject": "s", "text": "t", "fallback": fallback()}
        assert await fields(http, "/api/notifications/email", email) == {"fallback"}
        r = await http.get("/api/admin/notifications", headers=ADMIN, params={"userId": "u-api"})
        assert r.status_code == 200 and r.json()["items"] == []  # nothing was stored


async def test_the_records_name_each_other(system: System) -> None:
    provider = ScriptedProvider()
    nid = uid("api-fb")
    fallback_id = f"{nid}-fallback-email"
    provider.fail(nid, DeliveryError(ErrorCode.NO_VALID_DEVICES, "no valid device"))
    user = uid("user")
    async with api(system) as (_, http), system.worker(Providers(email=OutboxProvider(system.db), push=provider)):
        r = await http.post(
            "/api/notifications/push",
            json=push(userId=user, fallback=fallback(), priority=9),
            headers={**SERVICE, "Idempotency-Key": nid},
        )
        assert r.status_code == 202, r.text
        await system.wait_status(fallback_id, "sent")
        await wait_until(lambda: _linked(system, nid))
        detail = (await http.get(f"/api/admin/notifications/{nid}", headers=ADMIN)).json()
        email = (await http.get(f"/api/admin/notifications/{fallback_id}", headers=ADMIN)).json()
        listed = (await http.get("/api/admin/notifications", headers=ADMIN, params={"userId": user})).json()
    assert detail["notification"]["status"] == "failed" and detail["notification"]["errorCode"] == "NO_VALID_DEVICES"
    assert detail["notification"]["fallbackId"] == fallback_id and detail["notification"]["fallbackOf"] is None
    assert detail["workflow"]["fallbackId"] == fallback_id
    assert email["notification"]["fallbackOf"] == nid and email["notification"]["channel"] == "email"
    assert email["notification"]["priority"] == 9 and email["notification"]["status"] == "sent"
    assert email["workflow"]["fallbackOf"] == nid
    by_id = {item["notificationId"]: item for item in listed["items"]}
    assert by_id[nid]["fallbackId"] == fallback_id and by_id[fallback_id]["fallbackOf"] == nid


async def _linked(system: System, nid: str) -> bool:
    row = await system.row(nid)
    return row is not None and row.fallback_id is not None
