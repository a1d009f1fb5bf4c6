"""One send attempt: begin in SQL -> call the provider -> classify -> finish in SQL.

The attempt checks the queue is not paused, opens a delivery-log row, calls the provider with
the notification ID as idempotency key, closes the row and mirrors the status. Failures are
classified once (`notifications.errors`): retryable ones raise an ApplicationError whose
`next_retry_delay` carries the jittered backoff (or the provider's Retry-After) for Temporal's
RetryPolicy; final ones raise a non-retryable error. SQL trouble never loses a delivery: the
result still goes back to the workflow, which writes the log once the database answers again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.attempt_log import LogRow, final_error
from activities.attempt_memory import AttemptMemory, Memory, reached_devices
from activities.held_back import held_back
from activities.metrics import DeliveryMetrics
from activities.providers import EmailMessage, Providers, PushMessage
from activities.providers.base import DeliveryResult
from activities.providers.chain import ProviderChain, Route, Routed, as_chain
from activities.slots import Slot
from notifications.backoff import retry_delay
from notifications.config import Settings
from notifications.errors import DeliveryError, ErrorCategory, ErrorCode
from notifications.sql import store
from notifications.sql.engine import UNAVAILABLE, Database
from notifications.sql.models import utcnow
from notifications.types import (
    EXPIRED_ERROR,
    NOTIFICATION_PAUSED_ERROR,
    QUEUE_PAUSED_ERROR,
    AttemptReport,
    Channel,
    DeliveryPolicy,
    NotificationInput,
    SendInput,
    SendResult,
    Status,
)
from notifications.unsubscribe import UnsubscribeTokens, one_click_headers
from workflows.notification import NotificationWorkflow

log = logging.getLogger("notifications.delivery")

_DB_ERRORS: tuple[type[Exception], ...] = (SQLAlchemyError, *UNAVAILABLE)
_FAILOVER_DELAY = timedelta(milliseconds=50)
_OUTCOME = {
    ErrorCategory.TRANSIENT: "transient_error",
    ErrorCategory.RATE_LIMITED: "rate_limited",
    ErrorCategory.PERMANENT: "permanent_error",
    ErrorCategory.CONFIGURATION: "configuration_error",
}


class AttemptPipeline:
    """The attempts of one worker, bound to its database, providers and metrics."""

    def __init__(self, settings: Settings, db: Database, providers: Providers, metrics: DeliveryMetrics) -> None:
        self.settings = settings
        self.db = db
        self.providers = providers
        self.metrics = metrics
        self.unsubscribe = UnsubscribeTokens.from_settings(settings)
        self.chains = {
            Channel.EMAIL: as_chain(providers.email, "email"),
            Channel.PUSH: as_chain(providers.push, "push"),
        }
        self.memory = AttemptMemory(db)

    async def run(self, inp: SendInput, slot: Slot) -> SendResult:
        """One attempt, from its SQL start to its classified outcome; releases `slot` once the provider answered."""
        info = activity.info()
        n = inp.notification
        policy = n.policy or DeliveryPolicy()
        run_id = info.workflow_run_id or ""
        attempt = inp.attemptOffset + info.attempt
        ctx: dict[str, Any] = {
            "notification_id": n.notificationId,
            "workflow_id": info.workflow_id,
            "channel": n.channel,
        }

        mirrored = True
        started_at = utcnow()
        if n.expiresAt and started_at >= datetime.fromisoformat(n.expiresAt):
            # The workflow's expiry timer may not have fired yet: a late send does harm.
            raise ApplicationError(
                "not sent before its expiresAt", {"attemptsMade": attempt - 1}, type=EXPIRED_ERROR, non_retryable=True
            )
        try:
            start = await store.begin_attempt(self.db, n, run_id, attempt, after_resume=inp.afterResume)
        except _DB_ERRORS as exc:
            log.warning(
                "SQL mirror unavailable at attempt start: %s", type(exc).__name__, extra={**ctx, "attempt": attempt}
            )
            # The delivery matters more than its log: send anyway, and the workflow writes the
            # log row later. Not when only a recheck timer released it from a queue pause: SQL
            # alone could say the pause is over.
            start, mirrored = (None if inp.queueRecheck else store.AttemptStart(attempt=attempt)), False
        if start is None:
            raise ApplicationError(
                f"queue {n.channel} is paused",
                {"attemptsMade": attempt - 1},
                type=QUEUE_PAUSED_ERROR,
                non_retryable=True,
            )
        if start.paused:
            raise ApplicationError(
                "notification is paused",
                {"attemptsMade": attempt - 1},
                type=NOTIFICATION_PAUSED_ERROR,
                non_retryable=True,
            )
        if start.verdict is not None:
            self.metrics.preferences(n.channel, n.type, start.verdict.action.value)
            raise held_back(start.verdict, attempt, ctx)
        attempt = start.attempt
        ctx["attempt"] = attempt
        if start.already_sent is not None:
            row = start.already_sent
            log.info("already sent, not sending again", extra=ctx)
            return SendResult(
                attempt=row.attempts,
                provider=row.provider or "",
                providerMessageId=row.provider_message_id,
                completedAt=(row.completed_at or utcnow()).isoformat(),
            )
        log_row = LogRow(attempt, started_at, mirrored)
        chain = self.chains[Channel(n.channel)]
        if attempt > policy.maxAttempts:
            error = DeliveryError(ErrorCode.MAX_ATTEMPTS_EXCEEDED, f"{attempt - 1} attempts already made")
            await self._finish_failure(n, run_id, log_row, chain.name, error, final=True, next_delay=None)
            raise final_error(error, log_row)

        memory = await self._recall(n, chain, run_id, attempt)
        route = memory.route or chain.first_route()
        tried: list[str] = []
        called = time.perf_counter()
        try:
            async with asyncio.timeout(policy.sendTimeoutMs / 1000 * 0.9):
                routed = await chain.call(lambda provider: self._call_provider(provider, n, memory, tried), route)
        except TimeoutError:
            error = DeliveryError(ErrorCode.TIMEOUT, "the provider did not answer in time", details={"ambiguous": True})
            routed = Routed(tried[-1] if tried else route.current, error=error)
        slot.release()
        self.metrics.provider_call(n.channel, routed.provider, time.perf_counter() - called)
        for skipped in routed.skipped:
            self._failed_over(n, skipped.source, skipped.target, skipped.reason, ctx)
        if routed.result is not None:
            return await self._succeeded(n, run_id, log_row, routed.result, chain, ctx)

        assert routed.error is not None
        error = routed.error
        next_route, failover = chain.next_route(route, routed)
        if failover is not None:
            self._failed_over(n, failover.source, failover.target, failover.reason, ctx)
        self.metrics.attempt(n.channel, _OUTCOME[error.category], error.code.value)
        final = not (error.retryable or failover is not None) or attempt >= policy.maxAttempts
        if final and error.details.get("partial"):
            # the last attempt, and some devices have it: sent, with each device's outcome
            partial = DeliveryResult(routed.provider, str(error.details.get("messageId") or ""), dict(error.details))
            return await self._succeeded(n, run_id, log_row, partial, chain, ctx)
        if final:
            next_delay = None
        elif failover is not None:
            next_delay = _FAILOVER_DELAY  # another provider: no reason to wait out this one's backoff
        else:
            next_delay = self._next_delay(error, attempt, policy)
        log.warning("send attempt failed: %s%s", error.code.value, " (final)" if final else "", extra=ctx)
        if len(chain.order) > 1:
            error.details["route"] = {**next_route.to_json(), "order": chain.order}
        self.memory.remember(n.notificationId, Memory(run_id, next_route, _reached(memory, error)))
        await self._finish_failure(n, run_id, log_row, routed.provider, error, final=final, next_delay=next_delay)
        if final:
            self.memory.forget(n.notificationId)
            self.metrics.gave_up(n.channel, n.type, error.code.value)
            raise final_error(error, log_row)
        assert next_delay is not None
        await self._report(n, log_row, error, next_delay, _route_view(chain, next_route))
        raise ApplicationError(
            error.message,
            {"attempt": attempt, "errorCode": error.code.value},
            type=error.code.value,
            next_retry_delay=next_delay,
        )

    async def _recall(self, n: NotificationInput, chain: ProviderChain, run_id: str, attempt: int) -> Memory:
        """A retry's memory of the attempts before: only a retry that acts on it reads it."""
        if attempt <= 1 or (len(chain.order) == 1 and (n.channel != Channel.PUSH or n.token)):
            return Memory(run_id)
        return await self.memory.recall(n.notificationId, run_id)

    async def _succeeded(
        self,
        n: NotificationInput,
        run_id: str,
        log_row: LogRow,
        result: DeliveryResult,
        chain: ProviderChain,
        ctx: dict[str, Any],
    ) -> SendResult:
        self.memory.forget(n.notificationId)
        self.metrics.attempt(n.channel, "sent", None)
        self.metrics.delivered(n.channel, n.type, result.provider, n.enqueuedAt)
        sent = await self._finish_success(n, run_id, log_row, result, ctx)
        sent.route = _route_view(chain, Route(result.provider))
        return sent

    def _failed_over(self, n: NotificationInput, source: str, target: str, reason: str, ctx: dict[str, Any]) -> None:
        self.metrics.failover(n.channel, source, target, reason)
        log.warning("failing over from %s to %s (%s)", source, target, reason, extra=ctx)

    async def _call_provider(
        self, provider: Any, n: NotificationInput, memory: Memory, tried: list[str]
    ) -> DeliveryResult:
        tried.append(provider.name)
        try:
            if n.channel == Channel.EMAIL:
                return await provider.send_email(self._email(n), idempotency_key=n.notificationId)  # type: ignore[no-any-return]
            return await provider.send_push(  # type: ignore[no-any-return]
                PushMessage(
                    notification_id=n.notificationId,
                    user_id=n.userId,
                    token=n.token,
                    title=n.title or "",
                    body=n.message or "",
                    data={k: str(v) for k, v in (n.data or {}).items()},
                    type=n.type,
                    reached=memory.reached,
                    tenant=n.tenant,
                    critical=n.critical,
                ),
                idempotency_key=n.notificationId,
            )
        except DeliveryError:
            raise
        except Exception as exc:  # an unclassified failure is the seed's SEND_FAILED, retried
            raise DeliveryError(ErrorCode.SEND_FAILED, f"{type(exc).__name__}: {exc}"[:500]) from None

    def _email(self, n: NotificationInput) -> EmailMessage:
        return EmailMessage(
            notification_id=n.notificationId,
            to=n.to or "",
            subject=n.subject or "",
            html=n.html,
            text=n.text,
            sender=self.settings.mail_from,
            type=n.type,
            user_id=n.userId,
            # RFC 8058 one-click unsubscribe on every email that is not critical
            headers={} if n.critical else one_click_headers(self.unsubscribe.url(n.tenant, n.userId, n.to, n.type)),
        )

    def _next_delay(self, error: DeliveryError, attempt: int, policy: DeliveryPolicy) -> timedelta:
        if error.retry_after is not None and error.retry_after >= 0:
            return timedelta(seconds=error.retry_after)
        return retry_delay(
            attempt, base_delay_ms=policy.baseDelayMs, max_delay_ms=policy.maxDelayMs, jitter_ratio=policy.jitter
        )

    async def _finish_success(
        self, n: NotificationInput, run_id: str, log_row: LogRow, result: DeliveryResult, ctx: dict[str, Any]
    ) -> SendResult:
        await self._close(
            n,
            run_id,
            log_row,
            outcome="sent",
            status=Status.SENT,
            provider=result.provider,
            provider_message_id=result.provider_message_id,
            details=result.details,
        )
        log.info("sent", extra=ctx)
        return SendResult(
            attempt=log_row.attempt,
            provider=result.provider,
            providerMessageId=result.provider_message_id,
            completedAt=utcnow().isoformat(),
            mirrored=log_row.closed,
            details=result.details,
            unlogged=log_row.unlogged(
                "sent", provider=result.provider, providerMessageId=result.provider_message_id, details=result.details
            ),
        )

    async def _finish_failure(
        self,
        n: NotificationInput,
        run_id: str,
        log_row: LogRow,
        provider: str,
        error: DeliveryError,
        *,
        final: bool,
        next_delay: timedelta | None,
    ) -> None:
        # the delivery log keeps the delay chosen for the next attempt (backoff + jitter,
        # or the provider's Retry-After)
        details = (
            error.details
            if next_delay is None
            else {**error.details, "retryDelayMs": round(next_delay.total_seconds() * 1000)}
        )
        log_row.failure = dict(
            outcome=_OUTCOME[error.category],
            provider=provider,
            errorCode=error.code.value,
            errorMessage=error.message,
            details=details,
        )
        await self._close(
            n,
            run_id,
            log_row,
            outcome=_OUTCOME[error.category],
            status=Status.FAILED if final else Status.RETRYING,
            provider=provider,
            error_code=error.code.value,
            error_message=error.message,
            next_retry_at=utcnow() + next_delay if next_delay is not None else None,
            details=details,
        )

    async def _close(self, n: NotificationInput, run_id: str, log_row: LogRow, **outcome: Any) -> None:
        """Close the attempt's log row and update the notification's; the workflow writes them if SQL is down."""
        if not log_row.opened:
            return
        try:
            await store.finish_attempt(self.db, n.notificationId, run_id, log_row.attempt, **outcome)
            log_row.closed = True
        except _DB_ERRORS as exc:
            log.warning(
                "SQL mirror unavailable at attempt end: %s",
                type(exc).__name__,
                extra={"notification_id": n.notificationId, "attempt": log_row.attempt},
            )

    async def _report(
        self,
        n: NotificationInput,
        log_row: LogRow,
        error: DeliveryError,
        delay: timedelta,
        route: dict[str, Any] | None,
    ) -> None:
        """Tell the workflow about the failed attempt so its query, search attributes and details stay current."""
        now = utcnow()
        attempt = log_row.attempt
        report = AttemptReport(
            attempt=attempt,
            errorCode=error.code.value,
            errorMessage=error.message,
            attemptedAt=now.isoformat(),
            nextRetryAt=(now + delay).isoformat(),
            unlogged=log_row.unlogged(**log_row.failure),
            route=route,
        )
        try:
            handle = activity.client().get_workflow_handle(activity.info().workflow_id or "")
            await handle.signal(NotificationWorkflow.attempt_failed, report)
        except Exception as exc:  # best effort: SQL already has it
            log.warning(
                "could not report the attempt to the workflow: %s",
                type(exc).__name__,
                extra={"notification_id": n.notificationId, "attempt": attempt},
            )


def _reached(memory: Memory, error: DeliveryError) -> dict[str, str]:
    """The devices reached so far: before this attempt, and by it."""
    return {**memory.reached, **reached_devices(error.details)}


def _route_view(chain: ProviderChain, route: Route) -> dict[str, Any] | None:
    """What the workflow shows of the route (`providerOrder`, `currentProvider`)."""
    return {"order": chain.order, "current": route.current} if len(chain.order) > 1 else None
