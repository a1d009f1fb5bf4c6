"""Operators use the real `temporal` CLI on a running notification: query `status`, signal pause/resume,
update `reschedule`."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from activities.providers import Providers
from notifications.schemas import as_utc
from processes.devserver import temporal_binary
from tests.support.scripted import ScriptedProvider, unavailable
from tests.support.system import System, wait_until


@pytest.fixture
async def slow_retry_system(system_with: Callable[..., Any]) -> AsyncIterator[System]:
    async with system_with(base_delay_ms=1500) as s:
        yield s


async def temporal(address: str, *args: str) -> str:
    proc = await asyncio.to_thread(
        subprocess.run, [temporal_binary(), *args, "--address", address], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


async def test_query_and_signal_with_the_temporal_cli(slow_retry_system: System) -> None:
    system = slow_retry_system
    address = system.settings.temporal_address
    provider = ScriptedProvider()
    nid, scheduled = f"cli-{uuid.uuid4().hex[:8]}", f"cli-{uuid.uuid4().hex[:8]}"
    workflow_id = f"notification-{nid}"
    provider.fail(nid, unavailable())

    async def query() -> dict[str, object]:
        out = await temporal(
            address, "workflow", "query", "--workflow-id", workflow_id, "--type", "status", "-o", "json"
        )
        result: dict[str, object] = json.loads(out)["queryResult"][0]
        return result

    async with system.worker(Providers(email=provider, push=provider)):
        await system.client.enqueue_email(
            {"notificationId": nid, "to": "a@example.com", "subject": "s", "html": "<p>x</p>"}, 6
        )
        await system.client.enqueue_email(
            {"notificationId": scheduled, "to": "b@example.com", "subject": "s", "html": "<p>x</p>", "sendAt": at(3600)}
        )
        # An hour ahead, moved to 8 s from now by the update as the README shows it (still ahead once
        # the CLI has started, however slow the machine; due by the time the retry below is resumed).
        send_at = at(8)
        out = await temporal(
            address,
            "workflow",
            "update",
            "execute",
            "--workflow-id",
            f"notification-{scheduled}",
            "--name",
            "reschedule",
            "--input",
            json.dumps({"sendAt": send_at}),
            "-o",
            "json",
        )
        answer = json.loads(out)["result"]  # the update answers with the status query's record
        assert answer["status"] == "scheduled" and answer["sendAt"] == send_at
        row = await system.row(scheduled)  # in SQL before the update answered
        assert row is not None and row.status == "scheduled" and row.send_at is not None
        assert as_utc(row.send_at) == datetime.fromisoformat(send_at)
        await wait_until(lambda: _called(provider, nid))
        # In its retry backoff: pause from the CLI, with a reason.
        await temporal(
            address,
            "workflow",
            "signal",
            "--workflow-id",
            workflow_id,
            "--name",
            "pause",
            "--input",
            '{"reason": "maintenance"}',
        )

        async def paused() -> bool:
            return (await query())["paused"] is True

        await wait_until(paused, timeout=10)
        status = await query()
        assert status["status"] == "retrying" and status["attempts"] == 1
        assert status["errorCode"] == "PROVIDER_UNAVAILABLE" and status["pauseReason"] == "maintenance"
        await asyncio.sleep(2.5)  # the retry was due ~1.5-2 s after the failure
        assert len(provider.calls_for(nid)) == 1

        # Resume with no input at all, as an operator would type it.
        await temporal(address, "workflow", "signal", "--workflow-id", workflow_id, "--name", "resume")
        await system.wait_status(nid, "sent")
        final = await query()
        await system.wait_status(scheduled, "sent")  # due at the new time, not in an hour
    assert final["status"] == "sent" and final["attempts"] == 2 and final["paused"] is False
    assert provider.delivered[nid] == 1

    listed = await temporal(
        address,
        "workflow",
        "list",
        "--query",
        f'WorkflowId = "{workflow_id}" AND NotificationStatus = "sent"',
        "-o",
        "json",
    )
    assert workflow_id in listed


def at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def _called(provider: ScriptedProvider, nid: str) -> bool:
    return bool(provider.calls_for(nid))
