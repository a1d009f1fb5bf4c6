"""WebhookDispatcherWorkflow: one per namespace, started by the worker, running its dispatch activity
over and over; it continues as new now and then so its history stays short."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from notifications.types import DISPATCH_WEBHOOKS_ACTIVITY, WEBHOOK_DISPATCHER_NAME, DispatchRequest

_RUNS_PER_HISTORY = 100


@workflow.defn(name=WEBHOOK_DISPATCHER_NAME)
class WebhookDispatcherWorkflow:
    @workflow.run
    async def run(self, request: DispatchRequest) -> None:
        for _ in range(_RUNS_PER_HISTORY):
            await workflow.execute_activity(
                DISPATCH_WEBHOOKS_ACTIVITY,
                request,
                result_type=int,
                start_to_close_timeout=timedelta(seconds=request.seconds + request.timeoutSeconds + 60),
                heartbeat_timeout=timedelta(seconds=10),  # a dispatcher that died is replaced this soon
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)),
            )
        workflow.continue_as_new(request)
