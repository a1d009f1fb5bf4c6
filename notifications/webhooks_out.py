"""Webhooks out: endpoints the customer registers, the events they receive, and how each is signed.

Events are written by triggers in the transaction of the change (migration 0006); the dispatcher
(`activities.webhooks`) sends them. A body is `{"id", "type", "createdAt", "data"}`, `data` being
the notification record as the admin API returns it plus its `version`; it is signed as Standard
Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`) with
the `standardwebhooks` library, by the current secret and, for 24 h after a rotation, the previous
one too. `webhook-id` is the event's, the same on every retry.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import secrets
import socket
from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator
from standardwebhooks.webhooks import Webhook

from notifications.errors import NotificationValidationError
from notifications.schemas import NotificationRecord, as_utc
from notifications.types import Status

EVENT_TYPES = tuple(
    [f"notification.{s.value}" for s in Status if s != Status.PENDING]
    + ["notification.opened", "notification.clicked", "notification.complained"]
)
ROTATION_OVERLAP_HOURS = 24


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def new_endpoint_id() -> str:
    return "we_" + secrets.token_hex(12)


def message_id(event_id: int) -> str:
    return f"msg_{event_id}"


class EndpointIn(BaseModel):
    """`POST /api/admin/webhooks` and, every field optional, `PATCH`."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: str = Field(min_length=1, max_length=2048)
    events: list[str] = Field(min_length=1, max_length=32)
    description: str | None = Field(None, max_length=1000)

    @field_validator("events")
    @classmethod
    def _known(cls, events: list[str]) -> list[str]:
        return known_events(events)


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: str | None = Field(None, min_length=1, max_length=2048)
    events: list[str] | None = Field(None, min_length=1, max_length=32)
    description: str | None = Field(None, max_length=1000)
    enabled: bool | None = None

    @field_validator("events")
    @classmethod
    def _known(cls, events: list[str] | None) -> list[str] | None:
        return None if events is None else known_events(events)


def known_events(events: list[str]) -> list[str]:
    unknown = [e for e in events if e != "*" and e not in EVENT_TYPES]
    if unknown:
        raise ValueError(f"unknown event types {unknown}; use {', '.join(EVENT_TYPES)} or *")
    return sorted(set(events))


async def check_url(url: str, *, allow_private: bool) -> str:
    """An http(s) URL; unless `allow_private`, one whose host resolves to public addresses only
    (no server-side request forgery through the dispatcher). 422 naming `url` otherwise."""
    if allow_private:
        _http_url(url)
    else:
        await resolve_url(url, allow_private=False)
    return url


async def resolve_url(url: str, *, allow_private: bool) -> list[str]:
    """The addresses the host of an http(s) `url` resolves to, in the resolver's order, for the
    dispatcher to connect to one of them and never to a later answer. Unless `allow_private`, any
    loopback, private or link-local one refuses the lot (422 naming `url`): a client may connect to
    any address of a name. Resolved by the event loop's resolver (in a thread), never blocking the loop."""
    parts = _http_url(url)
    host = parts.raw_host.decode("ascii")  # IDNA-encoded: the very name httpx would look up and present
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise NotificationValidationError([{"field": "url", "message": "its host does not resolve"}]) from None
        addresses = list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))
    if not addresses:
        raise NotificationValidationError([{"field": "url", "message": "its host does not resolve"}])
    if not allow_private:
        for address in map(ipaddress.ip_address, addresses):
            if not address.is_global or address.is_multicast:
                raise NotificationValidationError(
                    [{"field": "url", "message": "resolves to a loopback, private or link-local address"}]
                )
    return addresses


def _http_url(url: str) -> httpx.URL:
    try:
        parts = httpx.URL(url)
    except httpx.InvalidURL:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.raw_host:
        raise NotificationValidationError([{"field": "url", "message": "must be an http(s) URL with a host"}])
    return parts


def endpoint_json(row: Any, *, with_secret: bool = False) -> dict[str, Any]:
    body = {
        "id": row.id,
        "url": row.url,
        "events": list(row.events or []),
        "description": row.description,
        "enabled": bool(row.enabled),
        "disabledReason": row.disabled_reason,
        "tenant": row.tenant,
        "createdAt": as_utc(row.created_at).isoformat(),
        "updatedAt": as_utc(row.updated_at).isoformat(),
    }
    if with_secret:
        body["secret"] = row.secret
    return body


def delivery_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "eventId": message_id(row.event_id),
        "event": row.type,
        "notificationId": row.notification_id,
        "version": row.version,
        "status": row.status,
        "attempts": row.attempts,
        "nextAttemptAt": as_utc(row.next_attempt_at).isoformat() if row.next_attempt_at else None,
        "lastStatusCode": row.last_status_code,
        "lastError": row.last_error,
        "lastAttemptAt": as_utc(row.last_attempt_at).isoformat() if row.last_attempt_at else None,
    }


def body(event_id: int, kind: str, created_at: datetime, version: int, snapshot: dict[str, Any]) -> bytes:
    """The event as the endpoint receives it; `data` is the record as of the change."""
    record = NotificationRecord.from_row(_Row(snapshot)).to_json()
    record["version"] = version
    payload = {"id": message_id(event_id), "type": kind, "createdAt": as_utc(created_at).isoformat(), "data": record}
    return json.dumps(payload, separators=(",", ":"), default=str).encode()


def headers(event_id: int, sent_at: datetime, payload: bytes, secrets_: list[str]) -> dict[str, str]:
    """Standard Webhooks headers, one `v1,` signature per secret still in use."""
    msg = message_id(event_id)
    signatures = " ".join(Webhook(secret).sign(msg, sent_at, payload) for secret in secrets_)
    return {
        "webhook-id": msg,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": "notifications-webhooks/1",
    }


class _Row:
    """A snapshot (the notifications row as JSON) read like a row."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __getattr__(self, name: str) -> Any:
        value = self._values.get(name)
        if isinstance(value, str) and name.endswith("_at") and value:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        if name in ("paused", "critical"):
            return bool(value)
        return value
