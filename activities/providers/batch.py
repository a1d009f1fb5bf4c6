"""Batch sends: many messages in one provider call, one outcome per message.

A provider with a native batch call (`send_email_batch` / `send_push_batch`: Resend's
`/emails/batch`, FCM's `send_each`, one SMTP connection, one outbox insert) gets the
whole batch at once, through its circuit breaker when it has one. Any other provider
gets concurrent single sends, each keyed by its notification ID.

The answer is one `BatchOutcome` per message, in the order of the messages: a delivery,
or that message's own `DeliveryError`. A failure of the whole call (nothing was sent:
transport error, timeout, 5xx, 429, a rejected API key, an open circuit) is raised as a
`DeliveryError` instead, so the caller retries the batch as one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, TypeVar

from activities.providers.base import (
    BatchOutcome,
    EmailMessage,
    PushMessage,
    single_outcome,
    whole_call_failure,
)
from activities.providers.circuit import CircuitBreakerProvider

DEFAULT_BATCH = 100

M = TypeVar("M", EmailMessage, PushMessage)


def _bare(provider: Any) -> Any:
    """The provider itself, or the one inside its circuit breaker."""
    return provider.inner if isinstance(provider, CircuitBreakerProvider) else provider


def batch_limit(provider: Any) -> int:
    """How many messages one batch call to this provider may carry."""
    limit = getattr(provider, "max_batch", None) or getattr(_bare(provider), "max_batch", None)
    return int(limit) if limit else DEFAULT_BATCH


async def send_email_batch(
    provider: Any, messages: Sequence[EmailMessage], *, idempotency_key: str
) -> list[BatchOutcome]:
    """One outcome per email, in order; raises DeliveryError when the whole call failed."""
    return await _send(provider, messages, idempotency_key, "send_email_batch", "send_email")


async def send_push_batch(
    provider: Any, messages: Sequence[PushMessage], *, idempotency_key: str
) -> list[BatchOutcome]:
    """One outcome per push, in order; raises DeliveryError when the whole call failed."""
    return await _send(provider, messages, idempotency_key, "send_push_batch", "send_push")


async def _send(
    provider: Any, messages: Sequence[M], idempotency_key: str, batch_method: str, single_method: str
) -> list[BatchOutcome]:
    limit = batch_limit(provider)
    if len(messages) > limit:
        raise ValueError(f"{len(messages)} messages in one batch; {provider.name} takes at most {limit}")
    ids = [m.notification_id for m in messages]
    if len(set(ids)) != len(ids):
        # Outcomes are per notification and idempotency is keyed by it: a duplicate is a caller bug.
        raise ValueError("a batch must not hold the same notification ID twice")
    if not messages:
        return []
    if hasattr(_bare(provider), batch_method):
        # Through the breaker when there is one: it counts the batch call as one call.
        outcomes: list[BatchOutcome] = await getattr(provider, batch_method)(
            list(messages), idempotency_key=idempotency_key
        )
        if [o.notification_id for o in outcomes] != ids:
            raise RuntimeError(f"{provider.name}.{batch_method} answered out of order or incompletely")
        return outcomes
    single = getattr(provider, single_method)
    outcomes = list(await asyncio.gather(*(single_outcome(single, m) for m in messages)))
    failure = whole_call_failure(outcomes)
    if failure is not None:
        raise failure
    return outcomes
