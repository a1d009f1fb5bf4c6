"""Provider selection from the settings (`EMAIL_PROVIDER`, `PUSH_PROVIDER`).

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
    "Providers",
    "PushMessage",
    "PushProvider",
    "build_email_provider",
    "build_providers",
    "build_push_provider",
    "with_circuit_breaker",
]


@dataclass
class Providers:
    email: EmailProvider
    push: PushProvider


def build_email_provider(settings: Settings, db: Database) -> EmailProvider:
    """The bare email provider the settings name (no circuit breaker)."""
    if settings.email_provider == "outbox":
        return OutboxProvider(db, latency_ms=settings.outbox_latency_ms)
    if settings.email_provider == "resend":
        from activities.providers.resend import ResendProvider

        return ResendProvider(settings)
    if settings.email_provider == "smtp":
        from activities.providers.smtp import SmtpProvider

        return SmtpProvider(settings)
    raise ProviderConfigurationError(f"EMAIL_PROVIDER={settings.email_provider} is unknown (resend, smtp, outbox)")


def build_push_provider(settings: Settings, db: Database) -> PushProvider:
    """The bare push provider the settings name (no circuit breaker)."""
    if settings.push_provider == "outbox":
        return OutboxProvider(db, latency_ms=settings.outbox_latency_ms)
    if settings.push_provider == "fcm":
        from activities.providers.fcm import FcmProvider

        return FcmProvider(settings, db)
    raise ProviderConfigurationError(f"PUSH_PROVIDER={settings.push_provider} is unknown (fcm, outbox)")


def with_circuit_breaker(provider: Any, channel: str, settings: Settings, db: Database | None) -> Any:
    return CircuitBreakerProvider(
        provider,
        channel=channel,
        db=db,
        threshold=settings.circuit_failure_threshold,
        cooldown_seconds=settings.circuit_cooldown_seconds,
    )


def build_providers(settings: Settings, db: Database) -> Providers:
    """Fails fast, before the worker polls, when a production provider is misconfigured."""
    email = with_circuit_breaker(build_email_provider(settings, db), "email", settings, db)
    push = with_circuit_breaker(build_push_provider(settings, db), "push", settings, db)
    return Providers(email=email, push=push)
