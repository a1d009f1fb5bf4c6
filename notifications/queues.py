"""Queue-wide pause and resume: the methods of NotificationClient that act on a whole channel.

The SQL flag (`queue_state`) is what every send attempt checks, so it holds even for a
workflow no signal reaches; the signals only make running workflows stop waiting at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Set
from typing import Any, Literal

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from notifications.campaign_types import CAMPAIGN_WORKFLOW_NAME
from notifications.config import Settings
from notifications.errors import NotificationUnavailableError, NotificationValidationError
from notifications.sql import queries, store
from notifications.sql.engine import Database, is_unavailable, reachable
from notifications.temporal import reachable as temporal_reachable
from notifications.types import PAUSE_SIGNAL, RESUME_SIGNAL, WORKFLOW_NAME, Channel, PauseRequest

log = logging.getLogger("notifications.client")

QueueName = Literal["email", "push", "all"]


def queue_channels(queue: str) -> list[Channel]:
    if queue == "all":
        return list(Channel)
    try:
        return [Channel(queue)]
    except ValueError:
        raise NotificationValidationError([{"field": "queue", "message": "must be email, push or all"}]) from None


# How long an enqueue trusts an earlier "queue not paused" answer (see QueuesMixin._queue_paused).
QUEUE_STATE_CACHE_SECONDS = 1.0


class QueuesMixin:
    """Queue methods of NotificationClient (which provides these attributes)."""

    temporal: Client
    db: Database
    settings: Settings
    _queue_flags: dict[str, tuple[bool, float]]
    _queue_reads: dict[str, asyncio.Future[bool]]

    async def _queue_paused(self, channel: str) -> bool:
        """Whether a new notification starts held; "not paused" is trusted for QUEUE_STATE_CACHE_SECONDS.

        Only the answer "not paused" is reused, because a stale one is harmless: every
        send attempt checks the flag in SQL itself, so a notification enqueued just
        after a pause is still held, at the price of one attempt that does not send.
        A stale "paused" could hold a notification past a resume, so it is never reused.
        With the database down, the last flag this client read or wrote decides: the
        send cannot check SQL then, so a queue paused before the outage stays paused.
        """
        known = self._queue_flags.get(channel)
        if known and not known[0] and time.monotonic() - known[1] < QUEUE_STATE_CACHE_SECONDS:
            return False
        try:
            return await asyncio.shield(self._read_queue_flag(channel))
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            log.warning("queue state unavailable (%s): using the last one known", type(exc).__name__)
            return known[0] if known else False

    def _read_queue_flag(self, channel: str) -> asyncio.Future[bool]:
        """One read of the flag at a time per channel: the enqueues that find the cache stale
        together (a burst, each second) share it. A pause or resume by this client drops the
        read in flight (`_set_queues`): enqueues after it read afresh, and the dropped read's
        answer, older than the write, is not kept."""
        reading = self._queue_reads.get(channel)
        if reading is None:
            reading = self._queue_reads[channel] = asyncio.ensure_future(queries.queue_paused(self.db, channel))

            def read(done: asyncio.Future[bool]) -> None:
                failed = done.cancelled() or done.exception() is not None  # seen, even with no caller left
                if self._queue_reads.get(channel) is not done:
                    return  # dropped by a pause or resume meanwhile
                del self._queue_reads[channel]
                if not failed:
                    self._queue_flags[channel] = (done.result(), time.monotonic())

            reading.add_done_callback(read)
        return reading

    async def pause_queue(
        self, queue: QueueName | str = "all", *, reason: str | None = None, actor: str | None = None
    ) -> dict[str, dict[str, Any]]:
        """Durably pause a channel: no send attempt starts on it until resumed.

        The SQL flag is what every send attempt checks, so it holds even for
        workflows the signal below does not reach; the signal only makes running
        workflows stop waiting on retries at once.
        """
        return await self._set_queues(queue_channels(queue), True, reason=reason, actor=actor)

    async def resume_queue(
        self, queue: QueueName | str = "all", *, actor: str | None = None
    ) -> dict[str, dict[str, Any]]:
        return await self._set_queues(queue_channels(queue), False, reason=None, actor=actor)

    async def queue_states(self) -> dict[str, dict[str, Any]]:
        with reachable():
            states = await queries.queue_states(self.db)
        now = time.monotonic()
        self._queue_flags.update({name: (bool(s and s.paused), now) for name, s in states.items()})
        return {
            name: {
                "paused": bool(s and s.paused),
                "reason": s.reason if s else None,
                "updatedAt": s.updated_at.isoformat() if s else None,
                "updatedBy": s.updated_by if s else None,
            }
            for name, s in states.items()
        }

    async def _set_queues(
        self, channels: Iterable[Channel], paused: bool, *, reason: str | None, actor: str | None
    ) -> dict[str, dict[str, Any]]:
        channels = list(channels)
        signal = PAUSE_SIGNAL if paused else RESUME_SIGNAL
        self._queue_flags = {name: (flag, 0.0) for name, (flag, _) in self._queue_flags.items()}  # no reuse now
        signalled: set[tuple[str, str]] = set()
        for channel in channels:
            with reachable():
                await store.set_queue_paused(self.db, channel.value, paused, reason=reason, actor=actor)
            self._queue_reads.pop(channel.value, None)  # a read begun before this write is not kept
            self._queue_flags[channel.value] = (paused, 0.0)
            try:
                with temporal_reachable():
                    signalled |= await self._signal_running(channel, signal, PauseRequest(reason, "queue"))
            except NotificationUnavailableError:
                if not paused:
                    raise NotificationUnavailableError(
                        f"queue {channel.value} is resumed, but Temporal is unavailable to release the "
                        "notifications it holds; try again",
                        service="temporal",
                    ) from None
                # The flag holds the queue without the signal: every attempt checks it first.
                log.warning("queue %s paused; its running notifications could not be signalled", channel.value)
        if not paused and self.settings.visibility_lag_seconds:
            # Visibility lags a moment behind starts: a notification started just before the
            # resume may have been missed above. A second pass reaches it, so held notifications
            # need no frequent polling of the queue flag. It skips those already signalled: each
            # signal is history events (docs/decisions/0019).
            await asyncio.sleep(self.settings.visibility_lag_seconds)
            for channel in channels:
                with temporal_reachable():
                    await self._signal_running(channel, signal, PauseRequest(reason, "queue"), skip=signalled)
        return await self.queue_states()

    async def _signal_running(
        self, channel: Channel, signal: str, request: PauseRequest, *, skip: Set[tuple[str, str]] = frozenset()
    ) -> set[tuple[str, str]]:
        """Signal every running notification and campaign of the channel; the (workflow, run) IDs signalled."""
        query = (
            f'WorkflowType IN ("{WORKFLOW_NAME}", "{CAMPAIGN_WORKFLOW_NAME}") AND ExecutionStatus = "Running" '
            f'AND NotificationChannel = "{channel.value}"'
        )
        limiter = asyncio.Semaphore(32)
        signalled: set[tuple[str, str]] = set()

        async def send(workflow_id: str, run_id: str | None) -> None:
            async with limiter:
                try:
                    await self.temporal.get_workflow_handle(workflow_id, run_id=run_id).signal(signal, request)
                except RPCError as exc:  # finished between listing and signalling
                    if exc.status != RPCStatusCode.NOT_FOUND:
                        raise

        tasks = []
        async for execution in self.temporal.list_workflows(query):
            if (execution.id, execution.run_id) not in skip:
                tasks.append(asyncio.create_task(send(execution.id, execution.run_id)))
                signalled.add((execution.id, execution.run_id))
        await asyncio.gather(*tasks)
        return signalled
