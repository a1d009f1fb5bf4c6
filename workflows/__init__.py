"""Temporal workflows. Deterministic code only: I/O lives in activities/."""

from workflows.notification import NotificationWorkflow

__all__ = ["NotificationWorkflow"]
