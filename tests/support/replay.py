"""Replay of a finished NotificationWorkflow history under the strict sandbox and the production runner.

Production workers (`processes.worker.workflow_runner()`) pass `workflows.notification` through
the sandbox; a test that runs the workflow under the default, re-importing sandbox and then calls
`assert_replays` checks that the history replays under both (tests/integration/workflows/test_determinism.py).
"""

from __future__ import annotations

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from processes.worker import workflow_runner as production_runner
from tests.support.system import System
from workflows.notification import NotificationWorkflow

MODULE = NotificationWorkflow.__module__  # "workflows.notification"


def passes_module_through(runner: WorkflowRunner) -> bool:
    assert isinstance(runner, SandboxedWorkflowRunner)
    return MODULE in runner.restrictions.passthrough_modules


async def finish(system: System, workers: list[Worker], nid: str) -> WorkflowHistory:
    """Wait for the workflow to complete (workers still running) and return its history."""
    notification_workers = [w for w in workers if NotificationWorkflow in w.config()["workflows"]]
    assert notification_workers, "no worker runs NotificationWorkflow"
    for worker in notification_workers:  # the run under test really used the re-importing sandbox
        assert not passes_module_through(worker.config()["workflow_runner"])
    handle = system.client.handle(nid)
    await handle.result()
    return await handle.fetch_history()


async def replay(system: System, history: WorkflowHistory, runner: WorkflowRunner) -> None:
    replayer = Replayer(
        workflows=[NotificationWorkflow], workflow_runner=runner, data_converter=system.temporal.data_converter
    )
    await replayer.replay_workflow(history)  # raises on non-determinism


async def assert_replays(system: System, history: WorkflowHistory) -> None:
    await replay(system, history, SandboxedWorkflowRunner())
    await replay(system, history, production_runner())
