"""Temporal workflows. Deterministic code only: I/O lives in activities/.

    workflows/notification.py   NotificationWorkflow: one per notification
    workflows/retention.py      RetentionWorkflow: the purge run by a Schedule

This package imports nothing on purpose: the workflow sandbox re-imports a
workflow's module (and its package) for every workflow it runs, so each
notification pays for whatever is imported here.
"""
