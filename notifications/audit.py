"""Audit rows written by the library itself, for changes made without the admin API (CLI, scripts).

The API writes its own rows (api/deps.py `Audit`), so the client writes one only when its caller
names an actor; the outcome names are the API's, so one trail reads the same whoever wrote it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from notifications.errors import NotificationConflictError, NotificationNotFoundError, NotificationValidationError
from notifications.sql import store
from notifications.sql.engine import Database

log = logging.getLogger("notifications.audit")

_OUTCOMES: tuple[tuple[type[BaseException], str], ...] = (
    (NotificationNotFoundError, "not_found"),
    (NotificationConflictError, "conflict"),
    (NotificationValidationError, "invalid"),
)


def audit_outcome(exc: BaseException) -> str:
    """The audit outcome of an operation that raised `exc`."""
    return next((name for kind, name in _OUTCOMES if isinstance(exc, kind)), "error")


@dataclass
class AuditEntry:
    """What the row will say; the operation fills in what it learns (the tenant, details)."""

    target: str | None
    tenant: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@asynccontextmanager
async def audited(db: Database, actor: str | None, action: str, target: str | None) -> AsyncIterator[AuditEntry]:
    """One row per operation, whatever its outcome; none when `actor` is None."""
    entry = AuditEntry(target=target)
    if actor is None:
        yield entry
        return
    outcome = "ok"
    try:
        yield entry
    except BaseException as exc:
        outcome = audit_outcome(exc)
        entry.details.setdefault("error", type(exc).__name__)
        raise
    finally:
        try:  # shielded: a caller cancelled now still leaves the row of what it did
            await asyncio.shield(
                store.write_audit(
                    db,
                    actor=actor,
                    tenant=entry.tenant,
                    action=action,
                    target=entry.target,
                    outcome=outcome,
                    details=entry.details,
                )
            )
        except Exception as exc:  # the change happened (or not) regardless: the caller must hear its result
            # type only: a database error's text carries the row's parameters
            log.error("could not write the audit row for %s by %s: %s", action, actor, type(exc).__name__)
