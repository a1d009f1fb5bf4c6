"""RetentionWorkflow: the seed's removeOnComplete / removeOnFail, run by a Temporal Schedule."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from notifications.types import PURGE_ACTIVITY, RETENTION_WORKFLOW_NAME, PurgeRequest, PurgeResult


@workflow.defn(name=RETENTION_WORKFLOW_NAME)
class RetentionWorkflow:
    @workflow.run
    async def run(self, request: PurgeRequest) -> PurgeResult:
        return await workflow.execute_activity(
            PURGE_ACTIVITY,
            request,
            result_type=PurgeResult,
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=RetryPolicy(maximum_attempts=5, initial_interval=timedelta(seconds=5)),
        )
