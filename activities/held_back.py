"""A send its user's preferences or the suppression list held back: the failure the workflow reads.

Both are non-retryable and BENIGN (an outcome, not an error: the SDK logs no warning for them), and
neither counts as an attempt (`attemptsMade` is the attempts before it).
"""

from __future__ import annotations

import logging
from typing import Any

from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from notifications.preferences import Action, Verdict
from notifications.types import QUIET_HOURS_ERROR, RECIPIENT_SUPPRESSED_ERROR, USER_OPTED_OUT_ERROR

log = logging.getLogger("notifications.delivery")


def held_back(verdict: Verdict, attempt: int, ctx: dict[str, Any]) -> ApplicationError:
    """QUIET_HOURS (details `until`), RECIPIENT_SUPPRESSED or USER_OPTED_OUT, with the rule that decided."""
    details: dict[str, Any] = {"attemptsMade": attempt - 1, "rule": verdict.rule}
    if verdict.action is Action.QUIET:
        assert verdict.until is not None
        until = verdict.until.isoformat()
        log.info("inside its user's quiet hours: deferred", extra=ctx)
        message, details["until"], kind = f"inside its user's quiet hours until {until}", until, QUIET_HOURS_ERROR
    elif verdict.action is Action.SUPPRESSED:
        log.info("recipient suppressed (%s): not sent", verdict.rule, extra=ctx)
        message, kind = f"the recipient is on the suppression list ({verdict.rule})", RECIPIENT_SUPPRESSED_ERROR
    else:
        log.info("user opted out (%s): not sent", verdict.rule, extra=ctx)
        message, kind = f"the user opted out ({verdict.rule})", USER_OPTED_OUT_ERROR
    return ApplicationError(message, details, type=kind, non_retryable=True, category=ApplicationErrorCategory.BENIGN)
