"""The worker: one Temporal Worker per task queue, sharing one database and provider set.

`notification-email` runs with `EMAIL_CONCURRENCY` concurrent sends (default 5),
`notification-push` with `PUSH_CONCURRENCY` (default 10). On SIGTERM/SIGINT the
workers stop polling, sends in flight get `GRACEFUL_SHUTDOWN_SECONDS` to finish,
and anything unfinished is retried by Temporal on another worker: nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.campaign import CampaignActivities
from activities.delivery import DeliveryActivities
from activities.fallback import FallbackActivities
from activities.metrics import DeliveryMetrics, prometheus_runtime
from activities.providers import Providers, build_providers
from activities.retention import RetentionActivities
from activities.webhooks import WebhookActivities
from notifications.campaign_types import CAMPAIGN_TASK_QUEUE
from notifications.config import Settings
from notifications.sql.engine import Database
from notifications.temporal import connect, ensure_search_attributes
from notifications.types import MAINTENANCE_TASK_QUEUE, TASK_QUEUES, Channel
from processes.heartbeat import heartbeat
from processes.schedules import ensure_retention_schedule, ensure_webhook_dispatcher
from workflows.campaign import CampaignWorkflow
from workflows.notification import NotificationWorkflow
from workflows.retention import RetentionWorkflow
from workflows.webhooks import WebhookDispatcherWorkflow

log = logging.getLogger("notifications.worker")


def build_workers(
    client: Client,
    settings: Settings,
    db: Database,
    providers: Providers | None = None,
    metrics: DeliveryMetrics | None = None,
) -> list[Worker]:
    graceful_shutdown = timedelta(seconds=settings.graceful_shutdown_seconds)
    polled = settings.polled_queues()
    activities = DeliveryActivities(settings, db, providers or build_providers(settings, db), metrics)
    concurrency = {Channel.EMAIL: settings.email_concurrency, Channel.PUSH: settings.push_concurrency}
    runner = workflow_runner()
    workers: list[Worker] = []
    if "maintenance" in polled:
        workers.append(
            Worker(
                client,
                task_queue=MAINTENANCE_TASK_QUEUE,
                workflows=[RetentionWorkflow, WebhookDispatcherWorkflow],
                activities=[RetentionActivities(db).purge_expired, WebhookActivities(settings, db).dispatch_webhooks],
                max_concurrent_activities=2,  # the purge, and the webhook dispatcher's long activity
                graceful_shutdown_timeout=graceful_shutdown,
            )
        )
    if "campaign" in polled:
        campaigns = CampaignActivities(settings, db, activities.providers)
        workers.append(
            Worker(
                client,
                task_queue=CAMPAIGN_TASK_QUEUE,
                workflows=[CampaignWorkflow],
                activities=[campaigns.send_campaign_batch, campaigns.record_campaign],
                max_concurrent_activities=settings.campaign_concurrency,
                # A campaign outlives its worker: after a crash its next task leaves the dead worker's
                # sticky queue for the normal one after this long, not the default 10 s.
                sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
                workflow_runner=runner,
                graceful_shutdown_timeout=graceful_shutdown,
            )
        )
    return workers + [
        Worker(
            client,
            task_queue=TASK_QUEUES[channel],
            workflows=[NotificationWorkflow],
            activities=[
                activities.send_email if channel == Channel.EMAIL else activities.send_push,
                activities.record_status,
                *([FallbackActivities(settings, db).enqueue_fallback] if channel == Channel.PUSH else []),
            ],
            # A local send holds its workflow task's slot while it waits: twice as many sends as
            # provider slots let one send's SQL overlap another's call, and a few spare tasks keep
            # a send ready (docs/decisions/0008). More would only wait here, out of priority order.
            max_concurrent_local_activities=2 * concurrency[channel],
            max_concurrent_workflow_tasks=2 * concurrency[channel] + 4,
            # A new workflow's first task, usually its only one, comes from the normal queue, not
            # the sticky one (docs/decisions/0015).
            nonsticky_to_sticky_poll_ratio=0.8,
            max_concurrent_activities=concurrency[channel],  # record_status, a normal activity
            max_cached_workflows=settings.workflow_cache_size,
            workflow_runner=runner,
            graceful_shutdown_timeout=graceful_shutdown,
        )
        for channel in Channel
        if channel.value in polled
    ]


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox, with the notification workflow's own module passed through.

    By default the sandbox re-imports a workflow's module for every new run, a large
    share of a notification's worker CPU (docs/decisions/0010). The module does no I/O
    and reads no clock, which the strict-sandbox runs and the replayed histories in the
    tests guard, so it is imported once; every other module is still checked.
    """
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(
            "workflows.notification", "workflows.campaign"
        )
    )


@asynccontextmanager
async def running_workers(workers: list[Worker]) -> AsyncIterator[list[Worker]]:
    """Run the workers for the duration of the block; graceful shutdown on exit."""
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield workers
    finally:
        await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
        await asyncio.gather(*tasks, return_exceptions=True)


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or `stop` is set), then shut down gracefully."""
    db = Database.from_settings(settings)
    providers = build_providers(settings, db)  # refuses to start on a misconfigured provider
    runtime = None
    if settings.metrics_bind:
        try:
            runtime = prometheus_runtime(settings.metrics_bind)
        except Exception as exc:  # a busy port must not stop deliveries
            log.error("metrics disabled: cannot serve Prometheus on %s (%s)", settings.metrics_bind, exc)
    metrics = DeliveryMetrics(runtime.metric_meter) if runtime else None
    client = await connect(settings, runtime=runtime)
    try:
        await ensure_search_attributes(client)
    except Exception as exc:  # e.g. no operator permission on Temporal Cloud: registration is an admin's job
        log.warning("could not register search attributes: %s", exc)
    try:
        await ensure_retention_schedule(client, settings)
    except Exception as exc:  # retention is housekeeping: it must not keep deliveries from starting
        log.error("could not create or update the retention schedule: %s", exc)
    try:
        await ensure_webhook_dispatcher(client, settings)
    except Exception as exc:  # webhooks out must not keep deliveries from starting either
        log.error("could not start the webhook dispatcher: %s", exc)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    workers = build_workers(client, settings, db, providers, metrics)
    log.info(
        "worker polling %s (email concurrency %d, push concurrency %d, campaign batches %d)",
        ", ".join(w.task_queue for w in workers),
        settings.email_concurrency,
        settings.push_concurrency,
        settings.campaign_concurrency,
    )
    try:
        # The heartbeat names the queues of the workers still running; it exits first, so a
        # graceful stop deletes the row as polling ends, not after the sends in flight finish.
        def polled() -> list[str]:
            return [w.task_queue for w in workers if not w.is_shutdown]

        async with running_workers(workers), heartbeat(db, settings, polled):
            await stop.wait()
            log.info("shutting down: waiting up to %.0fs for sends in flight", settings.graceful_shutdown_seconds)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await db.dispose()
    log.info("worker stopped")
