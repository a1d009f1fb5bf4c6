"""The Python client: where a notification enters the system.

    validate -> start NotificationWorkflow (it carries the whole notification) -> SQL row `queued`

Enqueueing is idempotent on `notificationId`: the workflow ID `notification-<id>`
is unique (duplicate starts are rejected) and the row insert is INSERT-or-ignore,
so the same ID twice gives one row, one workflow, one delivery.

What the caller is told is what happens. Temporal unreachable: nothing is stored and
the caller gets NotificationUnavailableError. Once the workflow exists the answer is
success, whatever the database does: with the database down the record comes back
with `mirrored=False`, and the worker writes the row from the workflow input when
the database answers again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from notifications.campaigns import CampaignsMixin
from notifications.config import Settings, get_settings
from notifications.control import ControlMixin
from notifications.devices import DevicesMixin
from notifications.errors import (
    NotificationConflictError,
    NotificationNotFoundError,
    NotificationUnavailableError,
    NotificationValidationError,
)
from notifications.fallback import render_fallback
from notifications.queues import QueuesMixin
from notifications.schemas import (
    MAX_PUSH_PAYLOAD,
    DeliveryAttemptRecord,
    DeliveryEventRecord,
    EmailNotification,
    NotificationRecord,
    PushNotification,
    check_schedule,
    validate_payload,
    validate_priority,
)
from notifications.sql import store
from notifications.sql.engine import Database, reachable
from notifications.sql.models import DeliveryAttempt, DeliveryEvent, Notification, utcnow
from notifications.sql.rows import as_row, row_values
from notifications.starts import WorkflowStarts
from notifications.templating import render_email, render_push
from notifications.temporal import AMBIGUOUS, UNREACHABLE, connect, unreachable
from notifications.temporal import reachable as temporal_reachable
from notifications.types import (
    CHANNEL_ATTRIBUTE,
    STATUS_ATTRIBUTE,
    STATUS_QUERY,
    Channel,
    NotificationInput,
    Status,
    workflow_id_for,
)
from notifications.unsubscribe import UnsubscribeTokens
from notifications.user_preferences import PreferencesMixin

log = logging.getLogger("notifications.client")


class NotificationClient(ControlMixin, QueuesMixin, DevicesMixin, PreferencesMixin, CampaignsMixin):
    """Enqueue, inspect and control notifications. One per process is plenty."""

    def __init__(self, temporal: Client, db: Database, settings: Settings) -> None:
        self.temporal = temporal
        self.db = db
        self.settings = settings
        self._policy = settings.delivery_policy()
        # channel -> (its pause flag as last read or written, monotonic time of that read; 0 after a write)
        self._queue_flags: dict[str, tuple[bool, float]] = {}
        self._queue_reads: dict[str, asyncio.Future[bool]] = {}  # QueuesMixin._queue_paused
        self._unsubscribe: UnsubscribeTokens | None = None  # made on the first templated email
        self._starting = 0  # enqueues waiting for their workflow's start: a new row waits for theirs
        self._linger_s = settings.enqueue_linger_ms / 1000
        self._starts = WorkflowStarts(temporal)

    @classmethod
    async def connect(cls, settings: Settings | None = None) -> NotificationClient:
        settings = settings or get_settings()
        return cls(await connect(settings), Database.from_settings(settings), settings)

    async def close(self) -> None:
        await self.db.dispose()

    # -- enqueue ------------------------------------------------------------------------------
    async def enqueue_email(
        self, payload: Mapping[str, Any] | EmailNotification, priority: int | None = None
    ) -> NotificationRecord:
        p: EmailNotification = validate_payload(EmailNotification, payload)
        prio = validate_priority(priority, self.settings.default_priority)
        subject, html, text = render_email(p, unsubscribe_url=lambda: self._unsubscribe_url(p))
        return await self._enqueue(
            self._input(p, Channel.EMAIL, prio, to=str(p.to), subject=subject, html=html, text=text)
        )

    def _unsubscribe_url(self, p: EmailNotification) -> str:
        if self._unsubscribe is None:
            self._unsubscribe = UnsubscribeTokens.from_settings(self.settings)
        return self._unsubscribe.url(p.tenant, p.userId, str(p.to), p.type)

    async def enqueue_push(
        self, payload: Mapping[str, Any] | PushNotification, priority: int | None = None
    ) -> NotificationRecord:
        p: PushNotification = validate_payload(PushNotification, payload)
        prio = validate_priority(priority, self.settings.default_priority)
        title, message = render_push(p)
        if p.payload_size(title, message) > MAX_PUSH_PAYLOAD:
            raise NotificationValidationError(
                [{"field": "data", "message": f"push payload exceeds {MAX_PUSH_PAYLOAD} bytes"}]
            )
        fallback = render_fallback(p, self._unsubscribe_url)
        return await self._enqueue(
            self._input(p, Channel.PUSH, prio, title=title, message=message, token=p.token, fallback=fallback)
        )

    async def enqueue_prepared(self, inp: NotificationInput) -> NotificationRecord:
        """Enqueue a workflow input built and rendered already (a push's fallback email): the same
        start and row as any enqueue, and as idempotent on its notificationId."""
        return await self._enqueue(inp)

    def _input(
        self, p: EmailNotification | PushNotification, channel: Channel, priority: int, **content: Any
    ) -> NotificationInput:
        """The workflow input: the fields both channels share, plus the channel's rendered content."""
        send_at, expires_at = check_schedule(
            p.sendAt, p.expiresAt, now=utcnow(), max_days=self.settings.max_schedule_days
        )
        return NotificationInput(
            sendAt=send_at.isoformat() if send_at else None,
            expiresAt=expires_at.isoformat() if expires_at else None,
            notificationId=p.notificationId or uuid.uuid4().hex,
            channel=channel.value,
            priority=priority,
            type=p.type,
            userId=p.userId,
            tenant=p.tenant,
            critical=p.critical,
            data=p.data,
            policy=self._policy,
            **content,
        )

    async def _enqueue(self, inp: NotificationInput) -> NotificationRecord:
        """Start the workflow, then record the row (on PostgreSQL in one INSERT with the rows of other
        enqueues in flight, waiting up to ENQUEUE_LINGER_MS for them: docs/decisions/0031).

        The workflow input carries the whole notification, so the row can never be the
        only copy: if this process dies between the two steps, or the database refuses
        the insert, the send activity creates the row from the input on its first attempt.
        """
        now = utcnow()
        inp.enqueuedAt = now.isoformat()
        inp.startPaused = await self._queue_paused(inp.channel)
        self._starting += 1
        try:
            run_id = await self._start(inp)
        finally:
            self._started()
        if run_id is None:  # this notificationId was enqueued before: one notification, one delivery
            return await self._existing(inp, now)
        values = {**row_values(inp, Status.SCHEDULED if inp.sendAt else Status.QUEUED, now), "run_id": run_id}
        accepted = NotificationRecord.from_row(as_row(values))
        # Alone, the row goes at once; while other enqueues are starting it waits briefly for theirs.
        try:
            inserted = await store.insert_row(self.db, values, self._linger_s if self._starting else 0.0)
        except Exception as exc:  # the workflow exists: this is a success, whatever SQL says
            log.warning(
                "notification enqueued; its SQL row will be written by the worker (%s)",
                type(exc).__name__,
                extra={"notification_id": inp.notificationId},
            )
            return accepted.model_copy(update={"mirrored": False})
        if inserted:
            return accepted
        try:
            return await self.get(inp.notificationId)  # the worker was faster
        except NotificationUnavailableError:
            return accepted.model_copy(update={"mirrored": False})

    def _started(self) -> None:
        self._starting -= 1
        if not self._starting:  # no other row can come: the held ones go now
            store.release_held(self.db)

    async def _existing(self, inp: NotificationInput, now: datetime) -> NotificationRecord:
        """The record of a notification enqueued before under the same ID."""
        try:
            return await self.get(inp.notificationId)
        except NotificationNotFoundError:  # its first enqueue is still on its way to SQL
            return NotificationRecord.from_row(as_row(row_values(inp, Status.QUEUED, now)))
        except NotificationUnavailableError:  # the workflow is the record meanwhile
            record = await self._record_from_workflow(inp, now)
        if record.channel != inp.channel:  # the API's own check reads SQL, which is down
            raise NotificationConflictError(
                f"notificationId {inp.notificationId!r} is already used by another notification"
            )
        return record

    async def _record_from_workflow(self, inp: NotificationInput, now: datetime) -> NotificationRecord:
        with temporal_reachable(inp.notificationId):
            described = await self.handle(inp.notificationId).describe()
        attributes = described.typed_search_attributes
        values = row_values(inp, Status(attributes.get(STATUS_ATTRIBUTE) or Status.QUEUED.value), now)
        values.update(channel=attributes.get(CHANNEL_ATTRIBUTE) or inp.channel, run_id=described.run_id)
        return NotificationRecord.from_row(as_row(values)).model_copy(update={"mirrored": False})

    async def start_run(self, inp: NotificationInput) -> str | None:
        """Start the workflow of a notification whose row exists (a campaign's recipient going on alone);
        None when it is running or ran already."""
        return await self._start(inp)

    async def _start(
        self, inp: NotificationInput, *, reuse: WorkflowIDReusePolicy = WorkflowIDReusePolicy.REJECT_DUPLICATE
    ) -> str | None:
        try:
            return await self._starts.start(inp, reuse)
        except RPCError as exc:
            if exc.status not in UNREACHABLE:
                raise
            return await self._started_anyway(inp, exc)

    async def _started_anyway(self, inp: NotificationInput, exc: RPCError) -> str:
        """The run ID when a start whose answer was lost did reach Temporal; else the typed error."""
        if exc.status in AMBIGUOUS:
            try:
                described = await self.handle(inp.notificationId).describe(rpc_timeout=timedelta(seconds=5))
            except RPCError:
                pass
            else:  # ours, or an earlier enqueue of this ID: either way it is enqueued, once
                if described.run_id:
                    return described.run_id
        raise unreachable(exc, inp.notificationId) from exc

    # -- reading ------------------------------------------------------------------------------
    async def get(self, notification_id: str) -> NotificationRecord:
        with reachable():
            async with self.db.sessions() as session:
                row = await session.get(Notification, notification_id)
        if row is None:
            raise NotificationNotFoundError(f"no notification with ID {notification_id!r}")
        return NotificationRecord.from_row(row)

    async def delivery_log(self, notification_id: str) -> list[DeliveryAttemptRecord]:
        with reachable():
            async with self.db.sessions() as session:
                rows = await session.scalars(
                    select(DeliveryAttempt)
                    .where(DeliveryAttempt.notification_id == notification_id)
                    .order_by(DeliveryAttempt.started_at, DeliveryAttempt.attempt)
                )
                return [DeliveryAttemptRecord.model_validate(r) for r in rows]

    async def delivery_events(self, notification_id: str) -> list[DeliveryEventRecord]:
        """What the provider's webhooks said after `sent`: delivered, bounced, opened ..., oldest first."""
        with reachable():
            async with self.db.sessions() as session:
                rows = await session.scalars(
                    select(DeliveryEvent)
                    .where(DeliveryEvent.notification_id == notification_id)
                    .order_by(DeliveryEvent.occurred_at, DeliveryEvent.id)
                )
                return [DeliveryEventRecord.model_validate(r) for r in rows]

    def handle(self, notification_id: str) -> WorkflowHandle[Any, Any]:
        return self.temporal.get_workflow_handle(workflow_id_for(notification_id))

    async def status(self, notification_id: str) -> dict[str, Any]:
        """The live `status` query; the SQL record when Temporal cannot answer it.

        That is a workflow gone past the namespace retention, no worker running to
        answer the query (it would otherwise wait out Temporal's query timeout), or
        Temporal itself unreachable.
        """
        try:
            result: dict[str, Any] = await self.handle(notification_id).query(
                STATUS_QUERY, rpc_timeout=timedelta(seconds=self.settings.query_timeout_seconds)
            )
            return result
        except RPCError as exc:
            if exc.status not in (
                RPCStatusCode.NOT_FOUND,
                RPCStatusCode.DEADLINE_EXCEEDED,
                RPCStatusCode.CANCELLED,  # the client-side rpc_timeout
                RPCStatusCode.FAILED_PRECONDITION,
                RPCStatusCode.UNAVAILABLE,
            ):
                raise
        return (await self.get(notification_id)).to_json()


# -- module-level API, as in the seed's integration examples ------------------------------------
_default: dict[int, NotificationClient] = {}


async def default_client() -> NotificationClient:
    """A client for this event loop, built from the environment's settings on first use."""
    key = id(asyncio.get_running_loop())
    if key not in _default:
        _default[key] = await NotificationClient.connect()
    return _default[key]


async def enqueue_email_notification(
    payload: Mapping[str, Any] | EmailNotification,
    priority: int | None = None,
    *,
    client: NotificationClient | None = None,
) -> NotificationRecord:
    """Queue an email: `{notificationId?, to, subject, html, text, type, userId}` and a priority 1-10."""
    return await (client or await default_client()).enqueue_email(payload, priority)


async def enqueue_push_notification(
    payload: Mapping[str, Any] | PushNotification,
    priority: int | None = None,
    *,
    client: NotificationClient | None = None,
) -> NotificationRecord:
    """Queue a push: `{notificationId?, userId, title, message, data}` and a priority 1-10."""
    return await (client or await default_client()).enqueue_push(payload, priority)
