"""The retention Schedule: created or updated idempotently when a worker starts."""

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

from notifications.config import Settings
from notifications.types import (
    MAINTENANCE_TASK_QUEUE,
    RETENTION_SCHEDULE_ID,
    RETENTION_WORKFLOW_NAME,
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
