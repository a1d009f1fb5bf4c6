"""Reading and writing preferences through the client: users' documents and their tenants' defaults.

Documents are validated here (`notifications.preferences`), stored whole, and each change is
written to the audit trail with who made it. They need only the database, not Temporal.
"""

from __future__ import annotations

from typing import Any

from notifications.devices import TENANT_PATTERN
from notifications.errors import NotificationValidationError
from notifications.preferences import TENANT_SUBJECT, tenant_key, user_subject, validate_preferences
from notifications.sql import store
from notifications.sql.engine import Database, reachable

CLIENT_ACTOR = "client"


def _tenant(tenant: str | None) -> str:
    """The tenant key (`preferences.tenant_key`) of a name the caller gave, checked."""
    if tenant is not None and not TENANT_PATTERN.match(tenant):
        raise NotificationValidationError(
            [{"field": "tenant", "message": "must be a short name (letters, digits, . _ -)"}]
        )
    return tenant_key(tenant)


def _user(user_id: str) -> str:
    if not user_id or not user_id.strip() or len(user_id) > 128:
        raise NotificationValidationError([{"field": "userId", "message": "is required (1-128 characters)"}])
    return user_subject(user_id)


class PreferencesMixin:
    """`NotificationClient`'s preference methods."""

    db: Database

    async def get_preferences(self, user_id: str, *, tenant: str | None = None) -> dict[str, Any]:
        """The user's own document (`{}` when they set nothing: everything allowed)."""
        return await _get(self.db, _tenant(tenant), _user(user_id))

    async def set_preferences(
        self, user_id: str, prefs: Any, *, tenant: str | None = None, actor: str | None = CLIENT_ACTOR
    ) -> dict[str, Any]:
        """Replace the user's document; NotificationValidationError names a bad field. Applies to
        every send that comes due afterwards, scheduled ones included."""
        return await _set(self.db, _tenant(tenant), _user(user_id), prefs, actor)

    async def get_tenant_preferences(self, tenant: str) -> dict[str, Any]:
        """The tenant's defaults, which each user's own values override key by key."""
        return await _get(self.db, _tenant(tenant), TENANT_SUBJECT)

    async def set_tenant_preferences(
        self, tenant: str, prefs: Any, *, actor: str | None = CLIENT_ACTOR
    ) -> dict[str, Any]:
        return await _set(self.db, _tenant(tenant), TENANT_SUBJECT, prefs, actor)


async def _get(db: Database, tenant: str, subject: str) -> dict[str, Any]:
    with reachable():
        return await store.get_preferences(db, tenant, subject) or {}


async def _set(db: Database, tenant: str, subject: str, prefs: Any, actor: str | None) -> dict[str, Any]:
    """Store the document; the audit row, when an actor is named (the API writes its own)."""
    document = validate_preferences(prefs)
    with reachable():
        await store.put_preferences(db, tenant, subject, document, actor or "api")
        if actor is not None:
            await store.write_audit(
                db,
                actor=actor,
                tenant=tenant,
                action="preferences.set",
                target=subject,
                outcome="ok",
                details={"preferences": document},
            )
    return document
