"""The enqueue's own start request (notifications/starts.py) starts the same workflow the SDK's
`start_workflow` does: the server records the same started event, which is what the Web UI, the
`temporal` CLI and the worker read."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, Interceptor
from temporalio.converter import PayloadCodec

from notifications.client import NotificationClient
from notifications.codec import ENCODING, new_key_spec
from notifications.types import NotificationInput, workflow_id_for
from tests.support.system import make_settings, make_system


def _email(nid: str) -> dict[str, Any]:
    return {"notificationId": nid, "to": "ada@example.com", "subject": "Hi", "html": "<p>Hi</p>", "type": "welcome"}


SEND_AT = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0).isoformat()
KINDS = {
    "email": lambda nid: (_email(nid), 3),
    "push-of-a-tenant": lambda nid: (
        {"notificationId": nid, "token": "tok-123", "title": "T", "message": "M", "tenant": "acme", "userId": "u1"},
        9,
    ),
    "scheduled": lambda nid: (
        {**_email(nid), "sendAt": SEND_AT, "type": None},
        None,
    ),
}


def _sdk_client(temporal: Client) -> Client:
    """The same connection with an interceptor: the SDK builds this client's starts."""
    return Client(**{**temporal.config(), "interceptors": [Interceptor()]})


async def _started(temporal: Client, nid: str) -> HistoryEvent:
    history = await temporal.get_workflow_handle(workflow_id_for(nid)).fetch_history()
    return history.events[0]


async def _as_seen(event: HistoryEvent, nid: str, codec: PayloadCodec | None) -> dict[str, Any]:
    """The started event as a dict: its run's own IDs and times taken out, its payloads decrypted and
    decoded (the input's enqueue time taken out) and its notification ID named."""
    found = MessageToDict(event)
    found.pop("eventTime"), found.pop("taskId")
    attributes = found["workflowExecutionStartedEventAttributes"]
    for key in ("originalExecutionRunId", "firstExecutionRunId", "workflowId", "rootWorkflowExecution"):
        attributes.pop(key, None)
    started = event.workflow_execution_started_event_attributes
    attributes["input"] = [await _decoded(p, codec) for p in started.input.payloads]
    metadata = event.user_metadata
    found["userMetadata"] = {
        "summary": await _decoded(metadata.summary, codec),
        "details": await _decoded(metadata.details, codec),
    }
    return _renamed(found, nid)


async def _decoded(payload: Payload, codec: PayloadCodec | None) -> dict[str, Any]:
    stored = dict(payload.metadata)
    if codec is not None:
        assert stored["encoding"] == ENCODING  # what the server holds is ciphertext
        stored.pop("encoding")
        [payload] = await codec.decode([payload])
    value = json.loads(payload.data)
    if isinstance(value, dict):
        value["enqueuedAt"] = "<time>"
    return {"stored": stored, "metadata": dict(payload.metadata), "data": value}


def _renamed(value: Any, nid: str) -> Any:
    if isinstance(value, dict):
        return {k: _renamed(v, nid) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, nid) for v in value]
    return value.replace(nid, "<id>") if isinstance(value, str) else value


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_the_server_records_what_the_sdk_start_would(system: Any, kind: str) -> None:
    await _both_ways(system, kind)


async def test_encrypted_the_server_records_what_the_sdk_start_would(
    temporal_address: str, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(temporal_address, database_url, tmp_path, encryption_keys=new_key_spec("k1"))
    async with make_system(settings) as system:
        await _both_ways(system, "push-of-a-tenant")


async def _both_ways(system: Any, kind: str) -> None:
    """One notification through our request, one through the SDK's start; their started events."""
    direct = system.client
    sdk = NotificationClient(_sdk_client(system.temporal), system.db, system.settings)
    assert direct._starts.direct and not sdk._starts.direct

    ours, theirs = f"st-a-{uuid.uuid4().hex[:8]}", f"st-b-{uuid.uuid4().hex[:8]}"
    for client, nid in ((direct, ours), (sdk, theirs)):
        payload, priority = KINDS[kind](nid)
        if "to" in payload:
            await client.enqueue_email(payload, priority)
        else:
            await client.enqueue_push(payload, priority)

    mine, sdks = await _started(system.temporal, ours), await _started(system.temporal, theirs)
    assert mine.workflow_execution_started_event_attributes.search_attributes.indexed_fields
    assert mine.user_metadata.summary.data and mine.user_metadata.details.data
    codec = system.temporal.data_converter.payload_codec
    assert await _as_seen(mine, ours, codec) == await _as_seen(sdks, theirs, codec)


async def test_an_id_enqueued_twice_starts_one_workflow(system: Any) -> None:
    nid = f"st-twice-{uuid.uuid4().hex[:8]}"
    first = await system.client.enqueue_email(_email(nid))
    again = await system.client.enqueue_email(_email(nid))
    assert (again.notification_id, again.run_id, again.status) == (nid, first.run_id, "queued")

    runs = [w async for w in system.temporal.list_workflows(f"WorkflowId = '{workflow_id_for(nid)}'")]
    assert len(runs) == 1
    assert await system.client._start(NotificationInput(notificationId=nid, channel="email")) is None
