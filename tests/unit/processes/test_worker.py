"""The production workflow runner passes workflows.notification through the sandbox; the default one does not.

What makes that safe, the replays of the workflow's main paths under both, is
tests/integration/workflows/test_determinism.py.
"""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from processes.worker import workflow_runner as production_runner
from tests.support.replay import passes_module_through


def test_strict_runner_reimports_and_production_runner_does_not() -> None:
    assert not passes_module_through(SandboxedWorkflowRunner())
    assert passes_module_through(production_runner())
