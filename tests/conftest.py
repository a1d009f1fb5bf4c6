"""Fixtures: real services for every test that asks for them.

A Temporal dev server from the installed binary (started once per session, with the same flags
`notifications dev` uses, and shared), a fresh SQLite file or PostgreSQL database per test, and a
`System` (tests/support/system.py) on them; at teardown every workflow a test left running is
terminated so tests stay independent. A test that asks for none of these (tests/unit) starts
nothing. The helpers live in tests/support/; nothing imports from this module.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from temporalio.testing import WorkflowEnvironment

from notifications.config import Settings
from notifications.sql.engine import Database
from notifications.sql.migrate import upgrade
from tests.support.system import (
    PG_ADMIN_URL,
    System,
    make_settings,
    make_system,
    start_dev_env,
)


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_env()
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def temporal_address(temporal_env: WorkflowEnvironment) -> str:
    return temporal_env.client.service_client.config.target_host


# -- databases ----------------------------------------------------------------------------------
@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'notifications.db'}"


@pytest.fixture
def postgresql_url() -> Any:
    name = f"notif_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest) -> str:
    """SQLite by default; tests that must also run on PostgreSQL parametrize this fixture indirectly."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
async def db(database_url: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database and nothing else: the SQL layer's own tests (no Temporal)."""
    settings = Settings(database_url=database_url, data_dir=tmp_path)
    await asyncio.to_thread(upgrade, settings)
    database = Database.from_settings(settings)
    yield database
    await database.dispose()


# -- the system under test ---------------------------------------------------------------------
@pytest.fixture
def settings(temporal_address: str, database_url: str, tmp_path: Path) -> Settings:
    return make_settings(temporal_address, database_url, tmp_path)


@pytest.fixture
def system_with(temporal_address: str, database_url: str, tmp_path: Path) -> Callable[..., Any]:
    """`async with system_with(base_delay_ms=1000) as s:` a system whose settings differ from the default."""

    def build(**overrides: Any) -> Any:
        return make_system(make_settings(temporal_address, database_url, tmp_path, **overrides))

    return build


@pytest.fixture
async def slow_retry_system(system_with: Callable[..., Any]) -> AsyncIterator[System]:
    """Retries come due after ~1 s: long enough to pause, cancel or expire between two attempts."""
    async with system_with(base_delay_ms=1000) as system:
        yield system


@pytest.fixture
async def system(settings: Settings) -> AsyncIterator[System]:
    """Database migrated, client connected; start workers with `async with system.worker(): ...`."""
    async with make_system(settings) as s:
        yield s


# -- a real browser -----------------------------------------------------------------------------
@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Any]:
    """Debian's Chromium through Playwright, one per test process."""
    from playwright.async_api import async_playwright

    from tests.support.browser import LAUNCH_ARGS, chromium_path

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path(), args=LAUNCH_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()
