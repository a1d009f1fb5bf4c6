"""Provider selection from the settings (`EMAIL_PROVIDER`, `PUSH_PROVIDER`)."""

from __future__ import annotations

from dataclasses import dataclass

from activities.providers.base import (
    DeliveryResult,
    EmailMessage,
    EmailProvider,
    PushMessage,
    PushProvider,
)
from activities.providers.outbox import OutboxProvider
from notifications.config import Settings
from notifications.db import Database
from notifications.errors import ProviderConfigurationError

__all__ = [
    "DeliveryResult",
    "EmailMessage",
    "EmailProvider",
    "OutboxProvider",
    "Providers",
    "PushMessage",
    "PushProvider",
    "build_providers",
]


@dataclass
class Providers:
    email: EmailProvider
    push: PushProvider


def build_email_provider(settings: Settings, db: Database) -> EmailProvider:
    if settings.email_provider == "outbox":
        return OutboxProvider(db, latency_ms=settings.outbox_latency_ms)
    raise ProviderConfigurationError(f"EMAIL_PROVIDER={settings.email_provider} is not available yet")


def build_push_provider(settings: Settings, db: Database) -> PushProvider:
    if settings.push_provider == "outbox":
        return OutboxProvider(db, latency_ms=settings.outbox_latency_ms)
    raise ProviderConfigurationError(f"PUSH_PROVIDER={settings.push_provider} is not available yet")


def build_providers(settings: Settings, db: Database) -> Providers:
    """Fails fast, before the worker polls, when a production provider is misconfigured."""
    return Providers(email=build_email_provider(settings, db), push=build_push_provider(settings, db))
