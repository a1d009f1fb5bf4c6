"""Connecting to Temporal the way the `temporal` CLI does, registering our search attributes, and their
values at a notification's start."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from temporalio.api.common.v1 import SearchAttributes
from temporalio.api.enums.v1 import IndexedValueType, TaskQueueKind, TaskQueueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.converter import encode_search_attributes
from temporalio.envconfig import ClientConfigProfile
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from notifications.codec import data_converter
from notifications.config import Settings
from notifications.errors import NotificationUnavailableError
from notifications.types import (
    CHANNEL_ATTRIBUTE,
    PRIORITY_ATTRIBUTE,
    SEARCH_ATTRIBUTES,
    SEND_AT_ATTRIBUTE,
    STATUS_ATTRIBUTE,
    TYPE_ATTRIBUTE,
    NotificationInput,
    Status,
)

log = logging.getLogger("notifications.temporal")

POLLER_KINDS = {
    "workflow": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    "activity": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
}


# The server could not be reached, or did not answer in time. The SDK has already retried
# these for about 10 s before they get here.
UNREACHABLE = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
    }
)
# Of those, the ones where the request may have reached the server before the answer was lost.
AMBIGUOUS = frozenset({RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED})


def unreachable(exc: RPCError, notification_id: str | None = None) -> NotificationUnavailableError:
    log.warning("Temporal unavailable: %s", exc.status.name if exc.status else "?")
    return NotificationUnavailableError(
        "Temporal is unavailable; try again", service="temporal", notification_id=notification_id
    )


@contextmanager
def reachable(notification_id: str | None = None) -> Iterator[None]:
    """Turn Temporal being unreachable into the typed NotificationUnavailableError."""
    try:
        yield
    except RPCError as exc:
        if exc.status in UNREACHABLE:
            raise unreachable(exc, notification_id) from exc
        raise


@dataclass(frozen=True)
class Poller:
    identity: str  # "<pid>@<hostname>" for our workers
    seconds_ago: float  # since its last poll started; idle workers re-poll once per long-poll (60 s)


async def task_queue_pollers(client: Client, task_queue: str, kind: str) -> list[Poller]:
    """Who polls a task queue (Temporal's DescribeTaskQueue): health checks and readiness waits use it."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            task_queue_type=POLLER_KINDS[kind],
        )
    )
    now = datetime.now(UTC)
    return [Poller(p.identity, (now - p.last_access_time.ToDatetime(UTC)).total_seconds()) for p in response.pollers]


async def connect(settings: Settings, runtime: Runtime | None = None, *, wait_seconds: float = 0) -> Client:
    """TLS, API key and `temporal.toml` profiles come from the standard TEMPORAL_* variables;
    address and namespace from our settings (which read the same variables).

    `wait_seconds`: keep trying that long while the server is up but not serving yet (a dev
    server that just started answers "Frontend is not healthy yet" for a moment under load).
    """
    profile = ClientConfigProfile.load()
    config = profile.to_client_connect_config()
    config["target_host"] = settings.temporal_address
    config["namespace"] = settings.temporal_namespace
    keys = settings.encryption_keys.get_secret_value() if settings.encryption_keys else None
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return await Client.connect(**config, runtime=runtime, data_converter=data_converter(keys))
        except RuntimeError:  # the SDK's "Failed client connect"
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(0.5)


async def ensure_search_attributes(client: Client) -> None:
    """Register NotificationStatus/Channel/Type (Keyword) and NotificationPriority (Int) if missing."""
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    missing = {
        key.name: IndexedValueType.ValueType(int(key.indexed_value_type))
        for key in SEARCH_ATTRIBUTES
        if key.name not in existing.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
        log.info("registered search attributes %s", sorted(missing))


def start_attributes(inp: NotificationInput) -> TypedSearchAttributes:
    """What the Web UI lists a notification's workflow by, from its start."""
    if not inp.sendAt:
        return _due_now_attributes(inp.channel, inp.type, inp.priority)
    pairs = _pairs(Status.SCHEDULED, inp.channel, inp.type, inp.priority)
    # the Web UI lists what is due when: NotificationSendAt
    pairs.append(SearchAttributePair(SEND_AT_ATTRIBUTE, datetime.fromisoformat(inp.sendAt)))
    return TypedSearchAttributes(pairs)


def encode_start_attributes(inp: NotificationInput, dest: SearchAttributes) -> None:
    """`start_attributes` into a start request's message; a due-now kind's are encoded once."""
    if inp.sendAt:
        encode_search_attributes(start_attributes(inp), dest)
    else:
        dest.CopyFrom(_encoded_due_now(inp.channel, inp.type, inp.priority))


@functools.lru_cache(maxsize=1024)
def _encoded_due_now(channel: str, type_: str | None, priority: int) -> SearchAttributes:
    """Shared: only ever copied from."""
    proto = SearchAttributes()
    encode_search_attributes(_due_now_attributes(channel, type_, priority), proto)
    return proto


@functools.lru_cache(maxsize=1024)
def _due_now_attributes(channel: str, type_: str | None, priority: int) -> TypedSearchAttributes:
    """Frozen and shared: a burst of one kind of notification builds its attributes once."""
    return TypedSearchAttributes(_pairs(Status.QUEUED, channel, type_, priority))


def _pairs(status: Status, channel: str, type_: str | None, priority: int) -> list[SearchAttributePair[Any]]:
    return [
        SearchAttributePair(STATUS_ATTRIBUTE, status.value),
        SearchAttributePair(CHANNEL_ATTRIBUTE, channel),
        SearchAttributePair(TYPE_ATTRIBUTE, type_ or "none"),
        SearchAttributePair(PRIORITY_ATTRIBUTE, priority),
    ]
