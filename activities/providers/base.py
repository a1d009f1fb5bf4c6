"""The provider interface: one bounded call to the outside world per send attempt.

A provider turns a message into a delivery or a `DeliveryError` with a code from
`notifications.errors.ErrorCode`; it never sleeps, never retries and never
decides about retries (Temporal does, from the error's category). The
notification ID is passed as the idempotency key and must reach the provider's
API, so that a repeated attempt (timeout, worker crash) delivers at most once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class EmailMessage:
    notification_id: str
    to: str
    subject: str
    html: str | None
    text: str | None
    sender: str
    type: str | None = None
    user_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # List-Unsubscribe and List-Unsubscribe-Post


@dataclass(frozen=True)
class PushMessage:
    notification_id: str
    user_id: str | None
    token: str | None  # an explicit device token; otherwise the user's registered devices
    title: str
    body: str
    data: dict[str, str] = field(default_factory=dict)
    type: str | None = None


@dataclass(frozen=True)
class DeliveryResult:
    provider: str
    provider_message_id: str | None
    details: dict[str, Any] = field(default_factory=dict)  # e.g. per-device outcomes of a push


@runtime_checkable
class EmailProvider(Protocol):
    name: str

    async def send_email(self, message: EmailMessage, *, idempotency_key: str) -> DeliveryResult: ...


@runtime_checkable
class PushProvider(Protocol):
    name: str

    async def send_push(self, message: PushMessage, *, idempotency_key: str) -> DeliveryResult: ...


class ProviderHealth(Protocol):
    """Optional: providers that can report configuration problems or an open circuit."""

    def health(self) -> dict[str, Any]: ...
