"""Histories recorded from earlier code still replay on today's NotificationWorkflow and CampaignWorkflow.

Each file in histories/ is a whole history from a real run (a dev server, the workers of the
test suite), one per distinct shape: sent at once, retried, paused in a backoff, held by a
queue pause, refused while paused, cancelled, failed, logged after a database outage... Its
name says which code recorded it. A change to the workflow's commands that is not behind
`workflow.patched` fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from processes.worker import workflow_runner
from workflows.campaign import CampaignWorkflow
from workflows.notification import NotificationWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_there_are_recorded_histories() -> None:
    assert len(HISTORIES) >= 10


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
@pytest.mark.parametrize("runner", ["strict", "production"])
async def test_replays(path: Path, runner: str) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(
        workflows=[NotificationWorkflow, CampaignWorkflow],
        workflow_runner=SandboxedWorkflowRunner() if runner == "strict" else workflow_runner(),
    )
    await replayer.replay_workflow(history)
