"""Starting a notification's workflow: the request Temporal's `start_workflow` would send, built from
parts kept per kind of notification and sent through the client's raw workflow service.

The SDK encodes every start from scratch, its search attributes included, and that was most of what
an enqueue cost the calling process beyond a bare start (docs/decisions/0032). The request is the
same message, field for field, so the server, the Web UI and the `temporal` CLI see the same
workflow. A client with interceptors, plugins or external payload storage, and a start made inside a
Nexus operation, keep the SDK's own start, since those change what the SDK sends.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

from temporalio import nexus
from temporalio.api.common.v1 import Priority as PriorityProto
from temporalio.api.enums.v1 import WorkflowIdConflictPolicy as ConflictProto
from temporalio.api.enums.v1 import WorkflowIdReusePolicy as ReuseProto
from temporalio.api.errordetails.v1 import WorkflowExecutionAlreadyStartedFailure
from temporalio.api.workflowservice.v1 import StartWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.common import Priority, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.converter import WorkflowSerializationContext
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from notifications.redact import mask_recipient
from notifications.temporal import encode_start_attributes, start_attributes
from notifications.types import (
    TASK_QUEUES,
    WORKFLOW_NAME,
    Channel,
    NotificationInput,
    temporal_priority_key,
    workflow_id_for,
)


def summary(inp: NotificationInput) -> str:
    """The Web UI's one line for the workflow: no address or token in clear."""
    recipient = mask_recipient(inp.channel, inp.to, inp.token, inp.userId)
    return f"{inp.channel} · {inp.type or 'no type'} · to {recipient}"


def details(inp: NotificationInput) -> str:
    key = temporal_priority_key(inp.priority)
    return (
        f"**Notification** `{inp.notificationId}`\n\n**Channel:** {inp.channel}\n\n"
        f"**Priority:** {inp.priority} (Temporal priority key {key})\n\n"
        f"**User:** {inp.userId or '-'}"
    )


def _priority_fields(level: int, tenant: str | None) -> dict[str, Any]:
    # Fairness by tenant: one tenant's burst cannot starve another's at the same priority.
    return {"priority_key": temporal_priority_key(level), "fairness_key": tenant}


class WorkflowStarts:
    """`start(inp)`: the run ID of the notification's new workflow, or None when its ID ran before."""

    def __init__(self, client: Client) -> None:
        self.client = client

    @functools.cached_property
    def direct(self) -> bool:
        return _sends_what_the_sdk_would(self.client)

    async def start(self, inp: NotificationInput, reuse: WorkflowIDReusePolicy) -> str | None:
        try:
            if self.direct and not nexus.in_operation():
                return await self._start_direct(inp, reuse)
            handle = await self.client.start_workflow(
                WORKFLOW_NAME,
                inp,
                id=workflow_id_for(inp.notificationId),
                task_queue=TASK_QUEUES[Channel(inp.channel)],
                id_reuse_policy=reuse,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                search_attributes=start_attributes(inp),
                priority=Priority(**_priority_fields(inp.priority, inp.tenant)),
                static_summary=summary(inp),
                static_details=details(inp),
            )
        except WorkflowAlreadyStartedError:
            return None
        return handle.result_run_id

    async def _start_direct(self, inp: NotificationInput, reuse: WorkflowIDReusePolicy) -> str | None:
        client = self.client
        workflow_id = workflow_id_for(inp.notificationId)
        req = StartWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_id=workflow_id,
            identity=client.identity,
            request_id=str(uuid.uuid4()),
            workflow_id_reuse_policy=ReuseProto.ValueType(reuse.value),
            workflow_id_conflict_policy=ConflictProto.ValueType(WorkflowIDConflictPolicy.FAIL.value),
        )
        req.workflow_type.name = WORKFLOW_NAME
        req.task_queue.name = TASK_QUEUES[Channel(inp.channel)]
        # As the SDK does: a converter or codec may depend on the workflow (itself when none does).
        converter = client.data_converter.with_context(
            WorkflowSerializationContext(namespace=client.namespace, workflow_id=workflow_id)
        )
        payload, short, long = await converter.encode([inp, summary(inp), details(inp)])
        req.input.payloads.append(payload)
        encode_start_attributes(inp, req.search_attributes)
        req.user_metadata.summary.CopyFrom(short)
        req.user_metadata.details.CopyFrom(long)
        req.priority.CopyFrom(_priority(inp.priority, inp.tenant))
        try:
            response = await client.workflow_service.start_workflow_execution(req, retry=True)
        except RPCError as exc:
            if _already_started(exc):
                return None
            raise
        return response.run_id


def _sends_what_the_sdk_would(client: Client) -> bool:
    """Nothing in this client changes the SDK's start request: no interceptor or plugin (they may add
    headers or wrap the call), no external payload storage (it may replace a payload by a reference)."""
    config = client.config()
    return not config["interceptors"] and not config["plugins"] and client.data_converter.external_storage is None


@functools.lru_cache(maxsize=1024)
def _priority(level: int, tenant: str | None) -> PriorityProto:
    """Shared: only ever copied from."""
    return PriorityProto(**_priority_fields(level, tenant))


def _already_started(exc: RPCError) -> bool:
    """The SDK's own test for WorkflowAlreadyStartedError: ALREADY_EXISTS carrying that failure."""
    if exc.status != RPCStatusCode.ALREADY_EXISTS or not exc.grpc_status.details:
        return False
    return exc.grpc_status.details[0].Is(WorkflowExecutionAlreadyStartedFailure.DESCRIPTOR)
