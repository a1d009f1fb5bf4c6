"""Preference documents: read, replaced whole (PUT), and an opt-out added (one-click unsubscribe)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, update

from notifications.preferences import gates, validate_preferences
from notifications.sql.dialect import insert_ignore_sync
from notifications.sql.engine import Database
from notifications.sql.models import Preference, utcnow


async def get_preferences(db: Database, tenant: str, subject: str) -> dict[str, Any] | None:
    async with db.sessions() as session:
        document = await session.scalar(
            select(Preference.document).where(Preference.tenant == tenant, Preference.subject == subject)
        )
    return dict(document) if document is not None else None


async def put_preferences(db: Database, tenant: str, subject: str, document: dict[str, Any], actor: str) -> None:
    """Store `document` (already validated) in place of the subject's; a new version."""
    await db.run(_put, tenant, subject, document, actor)


async def add_opt_out(db: Database, tenant: str, subject: str, channel: str, type_: str | None, actor: str) -> bool:
    """Opt the subject out of `type_` on `channel` (or of the channel, without a type), keeping the
    rest of its document; False when it was opted out already."""
    return await db.run(_add_opt_out, tenant, subject, channel, type_, actor)


def _add_opt_out(conn: Connection, tenant: str, subject: str, channel: str, type_: str | None, actor: str) -> bool:
    found = conn.execute(
        select(Preference.document).where(Preference.tenant == tenant, Preference.subject == subject).with_for_update()
    ).scalar()
    document: dict[str, Any] = dict(found or {})
    if type_:
        types = dict(document.get("types") or {})
        rule = types.get(type_)
        if rule is False:
            return False
        rule_channels = dict(rule.get("channels") or {}) if isinstance(rule, dict) else {}
        if rule_channels.get(channel) is False:
            return False
        types[type_] = {"channels": {**rule_channels, channel: False}}
        document["types"] = types
    else:
        channels = dict(document.get("channels") or {})
        if channels.get(channel) is False:
            return False
        document["channels"] = {**channels, channel: False}
    _put(conn, tenant, subject, validate_preferences(document), actor)
    return True


def _put(conn: Connection, tenant: str, subject: str, document: dict[str, Any], actor: str) -> None:
    values = {"document": document, "gates": gates(document), "updated_by": actor[:128], "updated_at": utcnow()}
    key = (Preference.tenant == tenant, Preference.subject == subject)
    if conn.execute(update(Preference).where(*key).values(version=Preference.version + 1, **values)).rowcount:
        return
    row = {"tenant": tenant, "subject": subject, "version": 1, **values}
    if not insert_ignore_sync(conn, Preference, row, ["tenant", "subject"]):  # a concurrent first write
        conn.execute(update(Preference).where(*key).values(version=Preference.version + 1, **values))
