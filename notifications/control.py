"""Controlling one notification: pause and resume, cancel, reschedule, retry.

A control the caller is told succeeded happened; one it is told failed changed nothing.
Cancel and reschedule are workflow updates, so the answer is the workflow's own: `cancelled`
only once the notification can no longer be sent, and 409 (NotificationConflictError) when an
attempt got there first.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from notifications.audit import audited
from notifications.config import Settings
from notifications.errors import (
    NotificationConflictError,
    NotificationError,
    NotificationUnavailableError,
    NotificationValidationError,
)
from notifications.schemas import NotificationRecord, Reschedule, as_utc, check_schedule, validate_payload
from notifications.sql import queries, store
from notifications.sql.engine import Database, reachable
from notifications.sql.models import utcnow
from notifications.temporal import reachable as temporal_reachable
from notifications.types import (
    CANCEL_UPDATE,
    PAUSE_SIGNAL,
    RESCHEDULE_UPDATE,
    RESUME_SIGNAL,
    CancelRequest,
    DeliveryPolicy,
    NotificationInput,
    PauseRequest,
    RescheduleRequest,
    Status,
)


class ControlMixin:
    """The controls of NotificationClient."""

    temporal: Client
    db: Database
    settings: Settings
    _policy: DeliveryPolicy

    if TYPE_CHECKING:  # NotificationClient's

        async def get(self, notification_id: str) -> NotificationRecord: ...
        def handle(self, notification_id: str) -> WorkflowHandle[Any, Any]: ...
        async def _start(self, inp: NotificationInput, *, reuse: WorkflowIDReusePolicy = ...) -> str | None: ...

    # -- control: one notification -------------------------------------------------------
    async def pause(self, notification_id: str, reason: str | None = None) -> None:
        """Hold one notification. The SQL flag comes first: a send already handed to a worker
        checks it before it starts, even though its workflow sees the signal only afterwards."""
        await self._set_paused(notification_id, True, PauseRequest(reason=reason))

    async def resume(self, notification_id: str) -> None:
        await self._set_paused(notification_id, False, PauseRequest())

    async def _set_paused(self, notification_id: str, paused: bool, request: PauseRequest) -> None:
        before = (await self.get(notification_id)).paused
        with reachable():
            await store.set_paused(self.db, notification_id, paused)
        try:
            with temporal_reachable():
                await self.handle(notification_id).signal(PAUSE_SIGNAL if paused else RESUME_SIGNAL, request)
        except NotificationUnavailableError:
            with contextlib.suppress(Exception):  # the caller is told nothing changed: make it so
                await store.set_paused(self.db, notification_id, before)
            raise

    async def cancel(
        self, notification_id: str, reason: str | None = None, *, actor: str | None = None
    ) -> NotificationRecord:
        """End a notification unsent: scheduled, held, queued or between retries.

        A send already in flight is let finish; if it delivered, this is a conflict. With an
        `actor` the attempt is audited as `notifications.cancel` (the admin API audits its own).
        """
        async with audited(self.db, actor, "notifications.cancel", notification_id) as entry:
            record = await self.get(notification_id)
            entry.tenant = record.tenant
            await self._update(record, CANCEL_UPDATE, CancelRequest(reason=reason), "cancel")
            record = await self.get(notification_id)
            entry.details["status"] = record.status
        return record

    async def reschedule(
        self, notification_id: str, send_at: datetime | str, *, actor: str | None = None
    ) -> NotificationRecord:
        """Move sendAt, before the first send attempt (a time in the past: now). With an `actor`
        the attempt is audited as `notifications.reschedule`, like `cancel`."""
        async with audited(self.db, actor, "notifications.reschedule", notification_id) as entry:
            when = validate_payload(Reschedule, {"sendAt": send_at}).sendAt
            now = utcnow()
            due, _ = check_schedule(when, None, now=now, max_days=self.settings.max_schedule_days)
            send_at_text = (due or now).isoformat()
            entry.details["sendAt"] = send_at_text
            record = await self.get(notification_id)
            entry.tenant = record.tenant
            if record.expires_at is not None and (due or now) >= as_utc(record.expires_at):
                message = f"must be before the notification's expiresAt ({record.expires_at})"
                raise NotificationValidationError([{"field": "sendAt", "message": message}])
            await self._update(
                record, RESCHEDULE_UPDATE, RescheduleRequest(sendAt=send_at_text), f"reschedule-{send_at_text}"
            )
            return await self.get(notification_id)

    async def _update(self, record: NotificationRecord, name: str, request: Any, update_id: str) -> None:
        """Run a workflow update and wait for its answer; a call repeated with the same ID (a
        cancel is one per run) attaches to the first instead of running again."""
        notification_id = record.notification_id
        if Status(record.status).terminal:
            raise NotificationConflictError(f"notification {notification_id} is already {record.status}")
        # A cancel may wait for a send in flight (up to twice SEND_TIMEOUT_SECONDS with its slot);
        # past that no worker is answering it.
        limit = 2 * self.settings.send_timeout_seconds + self.settings.query_timeout_seconds
        try:
            async with asyncio.timeout(limit):
                with temporal_reachable(notification_id):
                    await self.handle(notification_id).execute_update(name, request, id=update_id)
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            raise NotificationUnavailableError(
                f"no worker answered the {name} of {notification_id} within {limit:.0f} s; it may still apply "
                "when one does: repeat the call to learn its outcome",
                service="temporal",
                notification_id=notification_id,
            ) from None
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause or exc)
            raise NotificationConflictError(f"notification {notification_id}: {message}") from None
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            # The workflow ended before it took the update (a send in flight delivered, say).
            status = (await self.get(notification_id)).status
            raise NotificationConflictError(f"notification {notification_id} is already {status}") from None

    async def retry(self, notification_id: str) -> NotificationRecord:
        """Re-run a failed notification: a new workflow run, same ID, fresh attempts.

        Refused while a run of it is still going (the workflow ID is unique among
        running workflows), and for anything that is not `failed`.
        """
        with reachable(), temporal_reachable():
            return await self._retry(notification_id)

    async def retry_failed(
        self, filt: queries.NotificationFilter, limit: int
    ) -> tuple[int, list[str], list[dict[str, str]]]:
        """Retry the failed notifications matching `filt` (its status is forced to failed), at most
        `limit`: how many matched, the IDs retried, and each one that could not be, with why (retried
        meanwhile by someone else, say; the others still go)."""
        rows, _ = await queries.list_notifications(self.db, replace(filt, status=Status.FAILED.value), limit=limit)
        retried: list[str] = []
        errors: list[dict[str, str]] = []
        for row in rows:
            try:
                await self.retry(row.id)
                retried.append(row.id)
            except NotificationError as exc:
                errors.append({"notificationId": row.id, "error": str(exc)})
        return len(rows), retried, errors

    async def _retry(self, notification_id: str) -> NotificationRecord:
        inp = await store.claim_for_retry(self.db, notification_id, self._policy)
        inp.enqueuedAt = utcnow().isoformat()
        run_id = await self._start(inp, reuse=WorkflowIDReusePolicy.ALLOW_DUPLICATE)
        await store.end_retry_claim(self.db, notification_id, run_id=run_id)  # failed again without a run
        if run_id is None:
            raise NotificationConflictError(f"notification {notification_id} has a run in progress")
        return await self.get(notification_id)
