"""Priority 1-10 (10 most urgent) becomes Temporal's priority key: under backlog, urgent first."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from activities.providers import Providers
from notifications.types import PRIORITY_ATTRIBUTE
from tests.support.scripted import ScriptedProvider
from tests.support.system import System, system_on_own_server


@pytest.fixture
async def alone(database_url: str, tmp_path: Path) -> AsyncIterator[System]:
    """A server of its own: the order a backlog leaves its task queue in is the queue's alone, with
    nothing another test left on the shared server's notification-email queue (its tasks, its
    pollers, its fairness counts) in between; in full runs on the shared server a priority-7
    send went second about once in three."""
    async with system_on_own_server(database_url, tmp_path) as system:
        yield system


async def test_backlog_is_sent_most_urgent_first(alone: System) -> None:
    system = alone
    provider = ScriptedProvider()
    rng = random.Random(7)
    priorities = {f"prio-{uuid.uuid4().hex[:8]}": rng.randint(1, 10) for _ in range(30)}
    # Backlog: everything is enqueued before any worker polls.
    for nid, priority in priorities.items():
        await system.client.enqueue_email(
            {"notificationId": nid, "to": "a@example.com", "subject": "s", "html": "<p>x</p>"}, priority
        )
    async with system.worker(Providers(email=provider, push=provider), email_concurrency=1):
        for nid in priorities:
            await system.wait_status(nid, "sent", timeout=60)
    order = [priorities[c.key] for c in provider.calls]
    assert len(order) == len(priorities)
    # Task queues dispatch in priority order; workflow tasks run five at a time and hand their
    # activity over eagerly, so a few neighbours may swap. Random order would invert about half
    # of all pairs of different priority; we allow 5 %.
    pairs = [(a, b) for i, a in enumerate(order) for b in order[i + 1 :] if a != b]
    inverted = [(a, b) for a, b in pairs if a < b]
    assert len(inverted) <= 0.05 * len(pairs), (len(inverted), len(pairs), order)
    assert order.index(min(order)) >= len(order) // 2, order  # the least urgent waits


async def test_priority_is_visible_and_mapped(system: System) -> None:
    nid = f"prio-{uuid.uuid4().hex[:8]}"
    await system.client.enqueue_push({"notificationId": nid, "userId": "u", "title": "t", "message": "m"}, 8)
    description = await system.client.handle(nid).describe()
    assert description.raw_description.workflow_execution_info.priority.priority_key == 3
    assert description.typed_search_attributes.get(PRIORITY_ATTRIBUTE) == 8
    assert await description.static_summary() == "push · no type · to user u"
