"""An enqueue inside a Nexus operation handler goes through the SDK's start, which links the
notification's workflow to the caller's: the Web UI shows where it came from."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import nexusrpc
import nexusrpc.handler
from temporalio import workflow
from temporalio.api.nexus.v1 import EndpointSpec, EndpointTarget
from temporalio.api.operatorservice.v1 import CreateNexusEndpointRequest
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from notifications.client import NotificationClient
from notifications.types import workflow_id_for


@nexusrpc.service
class Enqueues:
    enqueue_email: nexusrpc.Operation[str, str]


@nexusrpc.handler.service_handler(service=Enqueues)
class EnqueuesHandler:
    def __init__(self, client: NotificationClient) -> None:
        self.client = client

    @nexusrpc.handler.sync_operation
    async def enqueue_email(self, ctx: nexusrpc.handler.StartOperationContext, nid: str) -> str:
        record = await self.client.enqueue_email(
            {"notificationId": nid, "to": "ada@example.com", "subject": "Hi", "text": "Hi"}
        )
        return record.run_id or ""


@workflow.defn
class Caller:
    @workflow.run
    async def run(self, endpoint: str, nid: str) -> str:
        enqueues = workflow.create_nexus_client(service=Enqueues, endpoint=endpoint)
        return await enqueues.execute_operation(Enqueues.enqueue_email, nid)


async def test_an_enqueue_in_a_nexus_operation_is_linked_to_its_caller(system: Any) -> None:
    temporal = system.temporal
    assert system.client._starts.direct  # outside an operation this client builds its own request
    task_queue = endpoint = f"nexus-{uuid.uuid4().hex[:8]}"
    await temporal.operator_service.create_nexus_endpoint(
        CreateNexusEndpointRequest(
            spec=EndpointSpec(
                name=endpoint,
                target=EndpointTarget(
                    worker=EndpointTarget.Worker(namespace=temporal.namespace, task_queue=task_queue)
                ),
            )
        )
    )
    nid, caller_id = f"nx-{uuid.uuid4().hex[:8]}", f"caller-{uuid.uuid4().hex[:8]}"
    async with Worker(
        temporal,
        task_queue=task_queue,
        workflows=[Caller],
        nexus_service_handlers=[EnqueuesHandler(system.client)],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        run_id = await temporal.execute_workflow(
            Caller.run,
            args=[endpoint, nid],
            id=caller_id,
            task_queue=task_queue,
            execution_timeout=timedelta(seconds=30),
        )

    history = await temporal.get_workflow_handle(workflow_id_for(nid)).fetch_history()
    started = history.events[0]
    assert run_id and started.workflow_execution_started_event_attributes.workflow_type.name == "NotificationWorkflow"
    assert [link.workflow_event.workflow_id for link in started.links] == [caller_id]
