"""Provider selection from the settings (`EMAIL_PROVIDER`, `PUSH_PROVIDER`, or lists in failover
order: `EMAIL_PROVIDERS`, `PUSH_PROVIDERS`).

The outbox stays the default so the system runs with no account anywhere. A
production provider is built (and its settings checked) here, before the worker
polls: a missing API key or credential stops the worker with a message naming
the setting, instead of failing every notification later. Every provider is
wrapped in its channel's circuit breaker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from activities.providers.base import (
    DeliveryResult,
    EmailMessage,
    EmailProvider,
    PushMessage,
    PushProvider,
)
from activities.providers.chain import ProviderChain
from activities.providers.circuit import CircuitBreakerProvider
from activities.providers.outbox import OutboxProvider
from notifications.config import Settings
from notifications.errors import ProviderConfigurationError
from notifications.sql.engine import Database

__all__ = [
    "DeliveryResult",
    "EmailMessage",
    "EmailProvider",
    "OutboxProvider",
    "ProviderChain",
    "Providers",
    "PushMessage",
    "PushProvider",
    "build_channel",
    "build_email_provider",
    "build_providers",
    "build_push_provider",
    "with_circuit_breaker",
]


@dataclass
class Providers:
    email: EmailProvider
    push: PushProvider


def build_email_provider(settings: Settings, db: Database, name: str | None = None) -> EmailProvider:
    """The bare email provider `name` (default: the first the settings name), without a circuit breaker."""
    name = name or settings.provider_order("email")[0]
    if name == "outbox":
        return OutboxProvider(db, latency_ms=settings.outbox_latency_ms)
    if name == "resend":
        from activities.providers.resend import ResendProvider

        return ResendProvider(settings)
    if name == "smtp":
        from activities.providers.smtp import SmtpProvider

        return SmtpProvider(settings)
    raise ProviderConfigurationError(f"EMAIL_PROVIDER={name} is unknown (resend, smtp, outbox)")


def build_push_provider(settings: Settings, db: Database, name: str | None = None) -> PushProvider:
    """The bare push provider `name` (default: the first the settings name), without a circuit breaker."""
    name = name or settings.provider_order("push")[0]
    if name == "outbox":
        return OutboxProvider(db, latency_ms=settings.outbox_latency_ms)
    if name == "fcm":
        from activities.providers.fcm import FcmProvider

        return FcmProvider(settings, db)
    raise ProviderConfigurationError(f"PUSH_PROVIDER={name} is unknown (fcm, outbox)")


def with_circuit_breaker(
    provider: Any, channel: str, settings: Settings, db: Database | None, *, in_chain: bool = False
) -> Any:
    return CircuitBreakerProvider(
        provider,
        channel=channel,
        db=db,
        threshold=settings.circuit_failure_threshold,
        cooldown_seconds=settings.circuit_cooldown_seconds,
        shared_cache_seconds=settings.circuit_shared_cache_seconds,
        open_on_configuration=in_chain,
    )


def build_channel(settings: Settings, db: Database, channel: str) -> Any:
    """The channel's providers in failover order, each behind its breaker: one breaker, or a chain."""
    build = build_email_provider if channel == "email" else build_push_provider
    names = settings.provider_order(channel)
    wrapped = [
        with_circuit_breaker(build(settings, db, n), channel, settings, db, in_chain=len(names) > 1) for n in names
    ]
    if len(wrapped) == 1:
        return wrapped[0]
    return ProviderChain(
        channel,
        wrapped,
        failover_after=settings.failover_after_attempts,
        failover_on_timeout=settings.failover_on_timeout,
    )


def build_providers(settings: Settings, db: Database) -> Providers:
    """Fails fast, before the worker polls, when a production provider is misconfigured."""
    return Providers(email=build_channel(settings, db, "email"), push=build_channel(settings, db, "push"))
