"""Temporal workflows. Deterministic code only: I/O lives in activities/."""

from workflows.notification import NotificationWorkflow
from workflows.retention import RetentionWorkflow

__all__ = ["NotificationWorkflow", "RetentionWorkflow"]
