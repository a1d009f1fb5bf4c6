"""`/docs` and `/redoc` render in a real browser with the internet cut off: their scripts are the API's own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api.main import create_app
from tests.support.browser import watched_page
from tests.support.serving import serve
from tests.support.system import System

# ReDoc's bundle shows an attribution logo from its CDN; the page's CSP refuses it (no request leaves)
REDOC_LOGO_REFUSED = "cdn.redoc.ly"


@pytest.fixture
async def api_url(system: System) -> AsyncIterator[str]:
    async with serve(create_app(system.settings, client=system.client)) as url:
        yield url


async def test_docs_and_redoc_render_their_operations_offline(chromium: Any, api_url: str) -> None:
    async with watched_page(chromium) as docs:
        await docs.page.goto(f"{api_url}/docs")
        await docs.page.locator(".opblock").first.wait_for(timeout=15_000)
        paths = await docs.page.locator(".opblock-summary-path").all_inner_texts()
        await docs.screenshot("docs")
    assert len(paths) >= 20 and "/api/notifications/email" in paths
    assert docs.blocked == [] and docs.console_errors == [] and docs.page_errors == []
    async with watched_page(chromium) as redoc:
        await redoc.page.goto(f"{api_url}/redoc")
        operations = redoc.page.locator("[data-section-id^='operation/']")
        await operations.first.wait_for(timeout=15_000)
        count = await operations.count()
        await redoc.screenshot("redoc")
    assert count >= 20
    assert redoc.blocked == [] and redoc.page_errors == []
    assert all(REDOC_LOGO_REFUSED in e for e in redoc.console_errors), redoc.console_errors


async def test_the_pages_name_only_local_assets(api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url) as http:
        for page in ("/docs", "/redoc"):
            answer = await http.get(page)
            assert answer.status_code == 200
            assert "img-src 'self' data:" in answer.headers["content-security-policy"]
            assert "cdn." not in answer.text and "fonts.googleapis" not in answer.text
            assert "tiangolo" not in answer.text
        script = await http.get("/static/vendor/swagger-ui-dist-5.36.0/swagger-ui-bundle.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        assert (await http.get("/static/vendor/redoc-2.5.4/redoc.standalone.js")).status_code == 200
        assert (await http.get("/static/vendor/../../main.py")).status_code == 404
