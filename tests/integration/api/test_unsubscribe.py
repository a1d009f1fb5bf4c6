"""One-click unsubscribe end to end: the link an email carries, the page a GET shows (changing
nothing), the POST that opts out (idempotent, audited), forged tokens, and the next email."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from notifications.sql.models import AuditLog
from notifications.unsubscribe import UnsubscribeTokens
from tests.support.api import ADMIN, api, auth, uid
from tests.support.system import System, outbox_providers

ONE_CLICK = {"content": "List-Unsubscribe=One-Click", "headers": {"content-type": "application/x-www-form-urlencoded"}}


async def _send(http: Any, system: System, **payload: Any) -> Any:
    body = {"to": "pat@example.com", "subject": "News", "text": "t", "type": "newsletter", **payload}
    body = {k: v for k, v in body.items() if v is not None}
    r = await http.post("/api/notifications/email", headers=auth(role="service", sub="svc"), json=body)
    assert r.status_code == 202, r.text
    return await system.wait_status(r.json()["notificationId"], "sent", "suppressed")


async def _link(system: System, notification_id: str) -> str:
    [message] = [m for m in await system.outbox() if m.notification_id == notification_id]
    headers = message.body["headers"]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = str(headers["List-Unsubscribe"]).strip("<>")
    return url.removeprefix(system.settings.public_base_url)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_one_click_unsubscribes_a_user_from_that_type_of_email(system: System) -> None:
    user = uid("u")
    async with api(system) as (_, http), system.worker(outbox_providers(system)):
        first = await _send(http, system, userId=user)
        assert first.status == "sent"
        path = await _link(system, first.id)

        page = await http.get(path)  # what a mail scanner or a click does: nothing changes
        assert page.status_code == 200 and 'method="post"' in page.text and "newsletter emails" in page.text
        assert (
            "pat@example.com" not in page.text
            and "<script" not in page.text
            and "http" not in page.text.split("<body", 1)[1].replace("http-equiv", "")
        )  # nothing loaded from anywhere
        assert await system.client.get_preferences(user) == {}

        r = await http.post(path, **ONE_CLICK)  # type: ignore[arg-type]
        assert r.status_code == 200 and "unsubscribed" in r.text
        assert await system.client.get_preferences(user) == {"types": {"newsletter": {"channels": {"email": False}}}}
        again = await http.post(path, **ONE_CLICK)  # type: ignore[arg-type]
        assert again.status_code == 200  # idempotent

        assert (await _send(http, system, userId=user)).status == "suppressed"
        assert (await _send(http, system, userId=user, type="appointment_reminder")).status == "sent"
        assert (await _send(http, system, userId=user, critical=True)).status == "sent"

    async with system.db.sessions() as session:
        entries = list(await session.scalars(select(AuditLog).where(AuditLog.action == "unsubscribe")))
    assert [(e.actor, e.outcome, e.target) for e in entries] == [
        ("unsubscribe", "ok", f"user:{user}"),
        ("unsubscribe", "already", f"user:{user}"),
    ]


async def test_an_address_without_a_user_is_unsubscribed_by_address(system: System) -> None:
    async with api(system) as (_, http), system.worker(outbox_providers(system)):
        first = await _send(http, system, to="Solo@Example.com")
        path = await _link(system, first.id)
        r = await http.post(path, content=b"List-Unsubscribe=One-Click")  # no content type: urlencoded is assumed
        assert r.status_code == 200, r.text
        assert (await _send(http, system, to="solo@example.com")).status == "suppressed"
        assert (await _send(http, system, to="other@example.com")).status == "sent"
    async with system.db.sessions() as session:
        entry = await session.scalar(select(AuditLog).where(AuditLog.action == "unsubscribe"))
    assert entry is not None and entry.target is not None and "solo" not in entry.target.lower()


async def test_forged_altered_and_bodiless_requests_change_nothing(system: System) -> None:
    user = uid("u")
    genuine = UnsubscribeTokens.from_settings(system.settings).token(None, user, None, "newsletter")
    forged = UnsubscribeTokens("another secret", "http://x").token(None, user, None, "newsletter")
    sealed, _, signature = genuine.partition(".")
    altered = f"{sealed[:-3]}{'A' if sealed[-3] != 'A' else 'B'}{sealed[-2:]}.{signature}"
    async with api(system) as (_, http):
        for token in (forged, altered, "not-a-token", sealed):
            for method in ("GET", "POST"):
                r = await http.request(method, f"/unsubscribe/{token}", **ONE_CLICK)  # type: ignore[arg-type]
                assert r.status_code == 400 and "not valid" in r.text, (method, token, r.text)
                assert user not in r.text and "newsletter" not in r.text
        r = await http.post(f"/unsubscribe/{genuine}")  # a POST without RFC 8058's body
        assert r.status_code == 400
        multipart = await http.post(f"/unsubscribe/{genuine}", files={"List-Unsubscribe": (None, "One-Click")})
        assert multipart.status_code == 200, multipart.text
    assert await system.client.get_preferences(user) == {"types": {"newsletter": {"channels": {"email": False}}}}


async def test_an_address_out_of_every_email_goes_on_the_suppression_list(system: System) -> None:
    async with api(system) as (_, http), system.worker(outbox_providers(system)):
        first = await _send(http, system, to="all@example.com", type=None)
        r = await http.post(await _link(system, first.id), **ONE_CLICK)  # type: ignore[arg-type]
        assert r.status_code == 200 and "these emails" in r.text
        [entry] = (await http.get("/api/admin/suppressions", headers=ADMIN)).json()["items"]
        assert (entry["address"], entry["reason"], entry["channel"]) == ("all@example.com", "unsubscribe", "email")
        later = await _send(http, system, to="all@example.com", type=None)
        assert (later.status, later.error_code) == ("suppressed", "RECIPIENT_SUPPRESSED")
        assert (await _send(http, system, to="all@example.com", type=None, critical=True)).status == "sent"
