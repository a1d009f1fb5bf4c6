"""CampaignWorkflow's histories: a campaign paused and resumed, continued as new, replays under the
strict sandbox and the production runner; `RECORD_HISTORIES=<prefix>` keeps them for the unit tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.providers import OutboxProvider, Providers
from processes.worker import workflow_runner
from tests.integration.campaigns.test_campaign_control import settled, started
from tests.integration.campaigns.test_campaign_flow import campaign, completed, recipients
from tests.support.system import System
from workflows.campaign import CampaignWorkflow


async def test_a_paused_campaign_continued_as_new_replays(system_with: Callable[..., Any]) -> None:
    async with system_with(campaign_batch_size=25, campaign_batches_per_run=4) as system:  # a run per 4 batches
        await _paused_and_continued(system)


async def _paused_and_continued(system: System) -> None:
    outbox = OutboxProvider(system.db)
    async with system.worker(Providers(email=outbox, push=outbox)):
        cid = await started(system, 300, 200)
        await system.client.pause_campaign(cid)
        await settled(system, cid)
        await system.client.resume_campaign(cid)
        record = await completed(system, cid)
        assert record["sent"] == 300
        runs = [e async for e in system.temporal.list_workflows(f'WorkflowId = "campaign-{cid}"')]
        histories = [await system.temporal.get_workflow_handle(r.id, run_id=r.run_id).fetch_history() for r in runs]
    assert len(histories) >= 3  # 12 batches, 4 a run
    for runner in (SandboxedWorkflowRunner(), workflow_runner()):
        replayer = Replayer(workflows=[CampaignWorkflow], workflow_runner=runner)
        for history in histories:
            await replayer.replay_workflow(history)
    prefix = os.environ.get("RECORD_HISTORIES")
    if prefix:
        folder = Path(__file__).resolve().parents[2] / "unit" / "workflows" / "histories"
        for n, history in enumerate(reversed(histories)):
            (folder / f"{prefix}-campaign-{n}.json").write_text(history.to_json())


async def test_a_scheduled_campaign_cancelled_replays(system: System) -> None:
    from datetime import UTC, datetime, timedelta

    outbox = OutboxProvider(system.db)
    cid = f"later-{uuid.uuid4().hex[:6]}"
    send_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    async with system.worker(Providers(email=outbox, push=outbox)):
        created = await system.client.create_campaign(
            campaign(campaignId=cid, recipients=recipients(5), sendAt=send_at)
        )
        assert created["status"] == "scheduled" and created["sendAt"] is not None
        progress = await system.client.campaign_progress(cid)
        assert progress["status"] == "scheduled"
        await system.client.cancel_campaign(cid)
        handle = system.temporal.get_workflow_handle(f"campaign-{cid}")
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        history = await handle.fetch_history()
    record = await system.client.campaign(cid)
    assert record["status"] == "cancelled" and record["cancelled"] == 5 and record["sent"] == 0
    await Replayer(workflows=[CampaignWorkflow], workflow_runner=SandboxedWorkflowRunner()).replay_workflow(history)
    if os.environ.get("RECORD_HISTORIES"):
        folder = Path(__file__).resolve().parents[2] / "unit" / "workflows" / "histories"
        (folder / f"{os.environ['RECORD_HISTORIES']}-campaign-scheduled-cancelled.json").write_text(history.to_json())
