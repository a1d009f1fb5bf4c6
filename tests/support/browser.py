"""A real browser for the tests: Debian's Chromium driven by Playwright, cut off from the internet.

Nothing is downloaded from a browser vendor: Playwright drives `/usr/bin/chromium` (the `chromium`
package; `.ci/run` installs it). Every request that is not to this machine is aborted and recorded,
and the host resolver maps every other name to nothing, so the browser's own background lookups stay
local too. Console errors and uncaught page errors are recorded for the test to assert on.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.system import ROOT

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",  # the tests run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
LOCAL = ("http://127.0.0.1", "http://localhost", "data:", "blob:", "about:")
SCREENSHOTS = Path(os.environ.get("TEST_OUTPUT_DIR", ROOT / "test-output")) / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def chromium_path() -> str:
    found = shutil.which(CHROMIUM)
    if found is None:
        raise RuntimeError(
            f"the browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)"
        )
    return found


@dataclass
class Watched:
    """A page in its own browser context, with what it tried to reach outside and what went wrong."""

    page: Any
    blocked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    async def screenshot(self, name: str, *, full_page: bool = False) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        size = self.page.viewport_size or DESKTOP
        path = SCREENSHOTS / f"{name}-{size['width']}x{size['height']}.png"
        await self.page.screenshot(path=str(path), full_page=full_page)
        return path


@asynccontextmanager
async def watched_page(
    browser: Any, viewport: dict[str, int] = DESKTOP, *, timezone_id: str | None = None
) -> AsyncIterator[Watched]:
    context = await browser.new_context(viewport=viewport, timezone_id=timezone_id)
    page = await context.new_page()
    watched = Watched(page)

    async def guard(route: Any) -> None:
        url = route.request.url
        if url.startswith(LOCAL):
            await route.continue_()
        else:
            watched.blocked.append(url)
            await route.abort("blockedbyclient")

    await context.route("**/*", guard)
    page.on("console", lambda message: message.type == "error" and watched.console_errors.append(message.text))
    page.on("pageerror", lambda error: watched.page_errors.append(str(error)))
    try:
        yield watched
    finally:
        await context.close()
