"""One attempt's delivery-log row as the attempt knows it, and the final error it raises."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from temporalio.exceptions import ApplicationError

from notifications.errors import DeliveryError
from notifications.sql.models import utcnow
from notifications.types import LoggedAttempt


class LogRow:
    """One attempt's delivery-log row: whether the send wrote it, and what the workflow must write if not."""

    def __init__(self, attempt: int, started_at: datetime, opened: bool) -> None:
        self.attempt = attempt
        self.started_at = started_at
        self.opened = opened  # the row exists, in progress
        self.closed = False  # and carries the outcome
        self.failure: dict[str, Any] = {}

    def unlogged(self, outcome: str, **values: Any) -> LoggedAttempt | None:
        if self.closed:
            return None
        return LoggedAttempt(
            attempt=self.attempt,
            outcome=outcome,
            startedAt=self.started_at.isoformat(),
            finishedAt=utcnow().isoformat(),
            **values,
        )


def final_error(error: DeliveryError, log_row: LogRow) -> ApplicationError:
    details: dict[str, Any] = {
        "attempt": log_row.attempt,
        "errorCode": error.code.value,
        "category": error.category.value,
    }
    unlogged = log_row.unlogged(**log_row.failure) if log_row.failure else None
    if unlogged is not None:
        details["unlogged"] = asdict(unlogged)
    return ApplicationError(error.message, details, type=error.code.value, non_retryable=True)
