"""A provider whose behaviour each test scripts: failures per notification, a gate to hold sends."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field

from activities.providers.base import DeliveryResult, EmailMessage, PushMessage
from notifications.errors import DeliveryError, ErrorCode


@dataclass
class Call:
    key: str
    at: float  # time.monotonic() when the provider was called


@dataclass
class ScriptedProvider:
    name: str = "scripted"
    # notification ID -> errors to raise on its next calls, in order
    failures: dict[str, list[DeliveryError]] = field(default_factory=lambda: defaultdict(list))
    always_fail: DeliveryError | None = None
    gate: asyncio.Event | None = None  # when set (and cleared), sends wait for it
    calls: list[Call] = field(default_factory=list)
    delivered: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    entered: asyncio.Event = field(default_factory=asyncio.Event)

    def fail(self, key: str, *errors: DeliveryError) -> None:
        self.failures[key].extend(errors)

    def calls_for(self, key: str) -> list[Call]:
        return [c for c in self.calls if c.key == key]

    async def send_email(self, message: EmailMessage, *, idempotency_key: str) -> DeliveryResult:
        return await self._send(idempotency_key)

    async def send_push(self, message: PushMessage, *, idempotency_key: str) -> DeliveryResult:
        return await self._send(idempotency_key)

    async def _send(self, key: str) -> DeliveryResult:
        self.calls.append(Call(key, time.monotonic()))
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.failures.get(key):
            raise self.failures[key].pop(0)
        if self.always_fail is not None:
            raise self.always_fail
        self.delivered[key] += 1
        return DeliveryResult(provider=self.name, provider_message_id=f"{self.name}-{key}")


def unavailable() -> DeliveryError:
    return DeliveryError(ErrorCode.PROVIDER_UNAVAILABLE, "provider answered 503")


def invalid_recipient() -> DeliveryError:
    return DeliveryError(ErrorCode.INVALID_RECIPIENT, "recipient address rejected")
