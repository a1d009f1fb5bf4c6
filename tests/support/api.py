"""The admin API in the test's process: settings with a known JWT secret, tokens, an httpx client on the app."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt
from fastapi import FastAPI
from pydantic import SecretStr

from api.main import create_app
from notifications.client import NotificationClient
from notifications.config import Settings
from tests.support.system import System

SECRET = "api-test-secret-" + "k" * 40
BASE = "http://api.test"
Q = "/api/admin/notifications/queues"


def api_settings(system: System, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"jwt_secret": SecretStr(SECRET), "send_timeout_seconds": 30}
    values.update(overrides)
    return system.settings.model_copy(update=values)


def token(
    role: str = "admin",
    sub: str = "alice",
    tenant: str | None = None,
    ttl: int = 300,
    secret: str = SECRET,
    **claims: Any,
) -> str:
    now = int(time.time())
    body: dict[str, Any] = {"sub": sub, "role": role, "iat": now, "exp": now + ttl, **claims}
    if tenant:
        body["tenant"] = tenant
    return jwt.encode(body, secret, algorithm="HS256")


def auth(tok: str | None = None, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok or token(**kwargs)}"}


ADMIN = auth(ttl=24 * 3600)  # minted once, at import: it must outlive a whole session


@asynccontextmanager
async def api(system: System, **overrides: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = api_settings(system, **overrides)
    app = create_app(settings, client=NotificationClient(system.temporal, system.db, settings))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        yield app, http


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
