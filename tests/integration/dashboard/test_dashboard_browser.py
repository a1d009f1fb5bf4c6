"""The dashboard in a real browser (Debian's Chromium, cut off from the internet) against the real system:
the Temporal dev server, SQLite, a worker and the API served on a local port."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Page, expect

from activities.providers import Providers
from api.dashboard.signin import sign_in_link
from api.main import create_app
from notifications.client import NotificationClient
from notifications.config import Settings
from tests.support.api import api_settings, token
from tests.support.browser import DESKTOP, PHONE, Watched, watched_page
from tests.support.scripted import ScriptedProvider, invalid_recipient
from tests.support.serving import serve
from tests.support.system import System

ZONE = "America/New_York"  # the browser's zone: times shown and typed in it
PAGES = ("", "/notifications", "/dead-letters", "/campaigns", "/suppressions", "/webhooks", "/audit")


@dataclass
class Dashboard:
    url: str
    settings: Settings
    provider: ScriptedProvider


@pytest.fixture
async def dashboard(system: System) -> AsyncIterator[Dashboard]:
    settings = api_settings(system)
    app = create_app(settings, client=NotificationClient(system.temporal, system.db, settings))
    provider = ScriptedProvider()
    async with serve(app) as url, system.worker(providers=Providers(email=provider, push=provider)):
        yield Dashboard(url, settings, provider)


async def _enqueue(system: System, to: str, **extra: Any) -> str:
    nid = f"dash-{uuid.uuid4().hex[:8]}"
    payload = {"notificationId": nid, "to": to, "subject": "Hi", "html": "<p>Hi</p>", **extra}
    await system.client.enqueue_email(payload, 5)
    return nid


async def _confirm(page: Page, button: str, confirm: str) -> None:
    await page.get_by_role("button", name=button).click()
    await page.get_by_role("button", name=confirm).click()


def _clean(w: Watched) -> None:
    assert w.blocked == [] and w.console_errors == [] and w.page_errors == [], (w.blocked, w.console_errors)


async def test_an_operator_signs_in_pauses_a_queue_and_retries_a_dead_letter(
    chromium: Any, system: System, dashboard: Dashboard
) -> None:
    base = f"{dashboard.url}/dashboard"
    async with watched_page(chromium, DESKTOP) as refused:
        await refused.page.goto(base)  # not signed in: the sign-in form, which refuses a wrong token
        await expect(refused.page).to_have_url(re.compile(r"/dashboard/login"))
        await refused.screenshot("dashboard-login")
        await refused.page.get_by_label("Admin token").fill("not-a-token")
        await refused.page.get_by_role("button", name="Sign in").click()
        await expect(refused.page.get_by_role("alert")).to_contain_text("refused")
    assert refused.console_errors == [
        "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    ]

    async with watched_page(chromium, DESKTOP, timezone_id=ZONE) as w:
        page = w.page
        link = sign_in_link(dashboard.settings, dashboard.url)  # what `notifications dev` prints
        await page.goto(link)
        await page.get_by_role("button", name="Sign in as dev-admin").click()
        await expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()
        assert "token=" not in page.url
        await page.keyboard.press("Tab")  # the first stop of the keyboard is the skip link
        await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()

        # pause the email queue from the Overview: asked first, then held
        await _confirm(page, "Pause email", "Yes, pause")
        await expect(page.get_by_role("status")).to_have_text("The email queue was paused.")
        await expect(page.locator("[data-queue-state=email]")).to_have_text("paused")
        held = await _enqueue(system, "held@example.com")
        await page.goto(f"{base}/notifications")
        await page.get_by_role("link", name=held).click()
        await expect(page.get_by_role("heading", name=re.compile(held))).to_contain_text("queued")
        await expect(page.locator("dl.record").first).to_contain_text("held@example.com")  # in full on its own page
        await w.screenshot("dashboard-notification")
        await page.get_by_role("link", name="Overview").click()
        await expect(page.locator("[data-count=email-waiting]")).to_have_text("1")
        await _confirm(page, "Resume email", "Yes, resume")
        await system.wait_status(held, "sent")
        await expect(page.locator("[data-queue-state=email]")).to_have_text("running")
        await expect(page.locator("[data-count=email-completed]")).to_have_text("1", timeout=10_000)  # live

        # a dead letter, retried from its page
        failed = await _enqueue(system, "bounce@example.com")
        dashboard.provider.fail(failed, invalid_recipient())
        await system.wait_status(failed, "failed")
        await page.get_by_role("link", name="Dead letters").click()
        row = page.get_by_role("row").filter(has_text=failed)
        await expect(row).to_contain_text("INVALID_RECIPIENT")
        await expect(row).to_contain_text("b***@e***.com")  # masked on a list page
        await w.screenshot("dashboard-dead-letters")
        await row.get_by_role("link", name=failed).click()
        await page.get_by_role("button", name="Retry").click()
        await expect(page.get_by_role("status")).to_have_text("Retried: a new run started.")
        await system.wait_status(failed, "sent")
        await page.reload()
        await expect(page.get_by_role("heading", name=re.compile(failed))).to_contain_text("sent")
        await expect(page.locator("table").first).to_contain_text("INVALID_RECIPIENT")  # the first attempt's log

        # retry all matching, asked first
        second = await _enqueue(system, "bounce-again@example.com")
        dashboard.provider.fail(second, invalid_recipient())
        await system.wait_status(second, "failed")
        await page.get_by_role("link", name="Dead letters").click()
        await _confirm(page, "Retry all matching…", "Yes, retry them")
        await expect(page.get_by_role("status")).to_contain_text("Retried 1 notification")
        await system.wait_status(second, "sent")

        # a scheduled notification: rescheduled in the browser's own time, then cancelled
        later = datetime.now(UTC) + timedelta(hours=1)
        scheduled = await _enqueue(system, "later@example.com", sendAt=later.isoformat())
        await page.goto(f"{base}/notifications/{scheduled}")
        await expect(page.locator("time").first).not_to_contain_text("UTC")  # shown in the browser's zone
        await expect(page.locator("time").first).to_have_attribute("title", re.compile("UTC$"))
        wanted = (later + timedelta(hours=1)).replace(second=0, microsecond=0)
        await page.get_by_label("Send at (your time)").fill(
            wanted.astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%dT%H:%M")
        )
        await page.get_by_role("button", name="Reschedule").click()
        await expect(page.get_by_role("status")).to_have_text("Rescheduled.")
        row = await system.row(scheduled)
        assert row is not None and row.send_at is not None
        assert row.send_at.replace(tzinfo=UTC) == wanted  # the local time read in the browser's zone
        await page.get_by_role("button", name="Cancel").click()
        await expect(page.get_by_role("status")).to_have_text("Cancelled.")
        await expect(page.get_by_role("heading", name=re.compile(scheduled))).to_contain_text("cancelled")

        await page.goto(base)
        await expect(page.locator("[data-sent]")).to_have_text("3")  # the chart's last hour
        await expect(page.locator("#chart canvas")).to_be_visible()
        for path in PAGES:  # every page at desktop width, with nothing reaching outside
            await page.goto(f"{base}{path}")
            await expect(page.locator("h1")).to_be_visible()
            await w.screenshot(f"dashboard{path.replace('/', '-') or '-overview'}")
    _clean(w)

    async with watched_page(chromium, PHONE) as phone:
        await phone.page.goto(link)  # the link signs in once
        await expect(phone.page.get_by_role("alert")).to_contain_text("used already")
        phone.console_errors.clear()  # that page's own 401
        await phone.page.get_by_label("Admin token").fill(token(ttl=600))
        await phone.page.get_by_role("button", name="Sign in").click()
        await expect(phone.page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()
        for path in (*PAGES, f"/notifications/{failed}"):
            await phone.page.goto(f"{base}{path}")
            await expect(phone.page.locator("h1")).to_be_visible()
            width = await phone.page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{path} scrolls sideways at a phone's width ({width}px)"
            await phone.screenshot(f"dashboard{path.replace('/', '-').replace(failed, 'detail') or '-overview'}")
    _clean(phone)
