"""The webhook dispatcher's activity: send due deliveries, record each outcome, for a while at a time.

It runs as one long activity (heartbeating) of `WebhookDispatcherWorkflow`, so a dispatcher that
dies is noticed by Temporal and started again elsewhere; what it had in flight is still pending in
SQL and goes again (the same `webhook-id`: receivers deduplicate). Deliveries are sent
concurrently (`WEBHOOK_CONCURRENCY`); a slow or dead endpoint holds only its own, and never a
notification's send, which does not wait for any of this.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

import httpx
from temporalio import activity

from notifications.config import Settings
from notifications.errors import NotificationValidationError
from notifications.sql.engine import Database
from notifications.sql.models import utcnow
from notifications.sql.store import webhooks as store
from notifications.types import DISPATCH_WEBHOOKS_ACTIVITY, DispatchRequest
from notifications.webhooks_out import body, headers, resolve_url

log = logging.getLogger("notifications.webhooks")
_IDLE_MAX_S = 1.0


class WebhookActivities:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._http: dict[str, httpx.AsyncClient] = {}

    @activity.defn(name=DISPATCH_WEBHOOKS_ACTIVITY)
    async def dispatch_webhooks(self, request: DispatchRequest) -> int:
        """Deliveries attempted in `request.seconds` (less when the worker shuts down); waits for those
        in flight before it returns. Outcomes are written together, every pass of the loop."""
        deadline = time.monotonic() + request.seconds
        busy: set[int] = set()  # in flight, or answered and not written yet: not to be claimed again
        tasks: set[asyncio.Task[None]] = set()
        outcomes: list[dict[str, Any]] = []
        attempted, idle = 0, 0.05
        while time.monotonic() < deadline and not activity.is_worker_shutdown():
            activity.heartbeat()
            await self._write(outcomes, busy)
            free = self.settings.webhook_concurrency - len(busy)
            due = await store.due_deliveries(self.db, free, busy) if free > 0 else []
            for delivery in due:
                busy.add(delivery.id)
                task = asyncio.create_task(self._deliver_once(delivery, outcomes, busy))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            attempted += len(due)
            idle = 0.05 if due or busy else min(idle * 2, _IDLE_MAX_S)
            await asyncio.sleep(idle)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._write(outcomes, busy)
        return attempted

    async def _write(self, outcomes: list[dict[str, Any]], busy: set[int]) -> None:
        if not outcomes:
            return
        batch = outcomes[:]
        del outcomes[:]
        await store.record_attempts(self.db, batch)  # raises if SQL is down: the activity is retried
        busy.difference_update(o["b_id"] for o in batch)

    async def _deliver_once(self, due: store.Due, outcomes: list[dict[str, Any]], busy: set[int]) -> None:
        try:
            outcomes.append(await self._deliver(due))
        except Exception as exc:  # not sent, not recorded: it stays pending, and goes again
            busy.discard(due.id)
            log.warning("webhook delivery %s failed before its answer: %s", due.id, type(exc).__name__)

    async def _deliver(self, due: store.Due) -> dict[str, Any]:
        now = utcnow()
        payload = body(due.event_id, due.type, due.created_at, due.version, due.snapshot)
        code: int | None = None
        error: str | None = None
        try:
            # httpx bounds each phase (connect, each read) alone: an answer trickled in never ends
            # there, so the whole attempt, name resolution included, has one deadline.
            async with asyncio.timeout(self.settings.webhook_timeout_seconds):
                addresses = await resolve_url(due.url, allow_private=self.settings.webhooks_may_reach_private)
                response = await self._post(
                    due.url, addresses, payload, headers(due.event_id, now, payload, due.secrets)
                )
            code = response.status_code
        except NotificationValidationError as exc:
            error = exc.errors[0]["message"]
        except TimeoutError:
            error = "TimeoutError: no answer"
        except httpx.HTTPError as exc:
            error = (
                f"{type(exc).__name__}: no answer" if isinstance(exc, httpx.TimeoutException) else type(exc).__name__
            )
        attempts = due.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_attempt_at": now,
            "last_status_code": code,
            "last_error": error,
        }
        delays = self.settings.webhook_retry_delays
        if code is not None and 200 <= code < 300:
            values.update(status="succeeded", next_attempt_at=None)
        elif code == 410:
            values.update(status="failed", next_attempt_at=None, last_error="410 Gone: the endpoint is disabled")
            await store.disable_endpoint(self.db, due.endpoint_id, "gone")
            log.warning("webhook endpoint %s answered 410: disabled", due.endpoint_id)
        elif attempts >= len(delays):
            values.update(status="failed", next_attempt_at=None)
        else:
            values.update(status="pending", next_attempt_at=now + timedelta(seconds=delays[attempts]))
        return {"b_id": due.id, **values}

    async def _post(self, url: str, addresses: list[str], payload: bytes, signed: dict[str, str]) -> httpx.Response:
        """POSTed to one of `addresses`, those `resolve_url` passed, never to a later DNS answer (which
        could be private): the URL carries the address, while the Host header and the TLS server name
        (SNI and certificate check) stay the endpoint's."""
        target = httpx.URL(url)
        host = target.raw_host.decode("ascii")
        client = self._client(host)
        extensions = {"sni_hostname": host} if target.scheme == "https" else {}
        signed = {**signed, "host": target.netloc.decode("ascii")}
        *others, last = addresses
        # an address that drops packets must not spend the whole deadline before the next is tried
        first_tries = httpx.Timeout(self.settings.webhook_timeout_seconds, connect=self._connect_share(addresses))
        for address in others:
            try:
                return await client.post(
                    target.copy_with(host=address),
                    content=payload,
                    headers=signed,
                    extensions=extensions,
                    timeout=first_tries,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout):  # nothing was sent: the next address
                continue
        return await client.post(target.copy_with(host=last), content=payload, headers=signed, extensions=extensions)

    def _connect_share(self, addresses: list[str]) -> float:
        return max(1.0, self.settings.webhook_timeout_seconds / len(addresses))

    def _client(self, host: str) -> httpx.AsyncClient:
        """One per endpoint host: httpx pools connections by address, and one opened (and its certificate
        checked) for a host must never carry another host's request. Connections to a host are reused."""
        client = self._http.get(host)
        if client is None:
            # An explicit transport keeps proxy variables out: a proxy would resolve the name again itself.
            client = httpx.AsyncClient(
                transport=httpx.AsyncHTTPTransport(),
                timeout=self.settings.webhook_timeout_seconds,
                follow_redirects=False,  # a redirect could point anywhere, a private address included
            )
            self._http[host] = client
        return client
