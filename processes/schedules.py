"""The retention Schedule and the webhook dispatcher: created idempotently when a worker starts."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import WorkflowIDConflictPolicy

from notifications.config import Settings
from notifications.types import (
    MAINTENANCE_TASK_QUEUE,
    RETENTION_SCHEDULE_ID,
    RETENTION_WORKFLOW_NAME,
    WEBHOOK_DISPATCHER_ID,
    WEBHOOK_DISPATCHER_NAME,
    DispatchRequest,
    PurgeRequest,
)


def retention_schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RETENTION_WORKFLOW_NAME,
            PurgeRequest(sentDays=settings.retention_sent_days, failedDays=settings.retention_failed_days),
            id="notifications-retention-run",
            task_queue=MAINTENANCE_TASK_QUEUE,
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=timedelta(minutes=settings.retention_interval_minutes))]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_retention_schedule(client: Client, settings: Settings) -> None:
    schedule = retention_schedule(settings)
    try:
        await client.create_schedule(RETENTION_SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(RETENTION_SCHEDULE_ID).update(replace)


async def ensure_webhook_dispatcher(client: Client, settings: Settings) -> None:
    """Start WebhookDispatcherWorkflow unless it runs already (one per namespace)."""
    await client.start_workflow(
        WEBHOOK_DISPATCHER_NAME,
        DispatchRequest(timeoutSeconds=settings.webhook_timeout_seconds),
        id=WEBHOOK_DISPATCHER_ID,
        task_queue=MAINTENANCE_TASK_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
