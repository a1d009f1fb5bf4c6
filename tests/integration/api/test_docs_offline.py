"""`/docs` and `/redoc` name only the API's own assets: they render with no internet."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from api.main import create_app
from tests.support.serving import serve
from tests.support.system import System


@pytest.fixture
async def api_url(system: System) -> AsyncIterator[str]:
    async with serve(create_app(system.settings, client=system.client)) as url:
        yield url


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
