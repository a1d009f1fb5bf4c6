"""The provider interface: one bounded call to the outside world per send attempt.

A provider turns a message into a delivery or a `DeliveryError` with a code from
`notifications.errors.ErrorCode`; it never sleeps, never retries and never
decides about retries (Temporal does, from the error's category). The
notification ID is passed as the idempotency key and must reach the provider's
API, so that a repeated attempt (timeout, worker crash) delivers at most once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from notifications.errors import DeliveryError, ErrorCategory


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
    reached: Mapping[str, str] = field(default_factory=dict)  # devices earlier attempts reached: key -> message ID
    tenant: str | None = None  # whose suppression list the user's devices are checked against
    critical: bool = False


@dataclass(frozen=True)
class DeliveryResult:
    provider: str
    provider_message_id: str | None
    details: dict[str, Any] = field(default_factory=dict)  # e.g. per-device outcomes of a push


@dataclass(frozen=True)
class BatchOutcome:
    """One message's outcome in a batch call: its delivery, or the DeliveryError of that message alone."""

    notification_id: str
    result: DeliveryResult | None = None
    error: DeliveryError | None = None


async def single_outcome(send: Callable[..., Awaitable[DeliveryResult]], message: Any) -> BatchOutcome:
    """`send(message)` keyed by its notification ID, as one outcome: its own DeliveryError captured."""
    try:
        result = await send(message, idempotency_key=message.notification_id)
    except DeliveryError as exc:
        return BatchOutcome(message.notification_id, error=exc)
    return BatchOutcome(message.notification_id, result=result)


def whole_call_failure(outcomes: Sequence[BatchOutcome]) -> DeliveryError | None:
    """The error to raise for the whole batch when nothing was delivered and no message was refused
    for itself (every failure transient, rate-limited or configuration): retry it as one call.

    Mirrors a single send's choice: a rate limit first (it carries the longest wait), then the
    longest Retry-After, then a configuration error.
    """
    errors = [o.error for o in outcomes if o.error is not None]
    if not errors or any(o.result is not None for o in outcomes):
        return None
    if any(e.category is ErrorCategory.PERMANENT for e in errors):
        return None
    retryable = sorted(
        (e for e in errors if e.retryable),
        key=lambda e: (e.category is not ErrorCategory.RATE_LIMITED, -(e.retry_after or 0)),
    )
    return retryable[0] if retryable else errors[0]


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
