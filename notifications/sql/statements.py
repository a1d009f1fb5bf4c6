"""The statements the per-send transactions run, built once.

A statement built per call costs SQLAlchemy a fresh cache-key walk of its values
(docs/decisions/0009). The SET clause comes from the parameters given at execution;
WHERE values are `b_*`.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Select, bindparam, select, update

from notifications.sql.models import (
    DeliveryAttempt,
    DeliveryEvent,
    Notification,
    Preference,
    QueueState,
    Suppression,
)
from notifications.types import TERMINAL_STATUSES, Status

TERMINAL = [s.value for s in TERMINAL_STATUSES]
# A notification the provider accepted, whatever its webhooks said after: never sent again.
SENT_STATUSES = (Status.SENT.value, Status.DELIVERED.value, Status.BOUNCED.value)

ATTEMPT_ROW = update(DeliveryAttempt).where(
    DeliveryAttempt.notification_id == bindparam("b_id"),
    DeliveryAttempt.run_id == bindparam("b_run"),
    DeliveryAttempt.attempt == bindparam("b_attempt"),
)
LIVE_ROW = update(Notification).where(Notification.id == bindparam("b_id"), Notification.status.not_in(TERMINAL))
INTERRUPT_OPEN_ATTEMPTS = update(DeliveryAttempt).where(
    DeliveryAttempt.notification_id == bindparam("b_id"),
    DeliveryAttempt.run_id == bindparam("b_run"),
    DeliveryAttempt.outcome == "in_progress",
)
ATTEMPT_KEY = ["notification_id", "run_id", "attempt"]
QUEUE_PAUSED = select(QueueState.paused).where(QueueState.queue == bindparam("b_queue"))
PENDING_EVENTS = select(DeliveryEvent.id).where(
    DeliveryEvent.provider_message_id == bindparam("b_message"), DeliveryEvent.notification_id.is_(None)
)
SUPPRESSED_BY = select(Suppression.reason).where(
    Suppression.tenant == bindparam("b_tenant"),
    Suppression.channel == bindparam("b_channel"),
    Suppression.address == bindparam("b_address"),
)
PREFERENCE_DOCUMENTS = select(Preference.subject, Preference.document).where(
    Preference.tenant == bindparam("b_tenant"), Preference.subject.in_(bindparam("b_subjects", expanding=True))
)


@functools.cache
def attempt_probe(*, lock: bool) -> Select[Any]:
    """The row's state and its queue's pause flag, in one round trip."""
    queue_paused = select(QueueState.paused).where(QueueState.queue == bindparam("b_queue")).scalar_subquery()
    probe = select(
        Notification.status,
        Notification.attempts,
        Notification.run_id,
        Notification.provider,
        Notification.provider_message_id,
        Notification.completed_at,
        Notification.paused,
        queue_paused.label("queue_paused"),
    ).where(Notification.id == bindparam("b_id"))
    return probe.with_for_update(of=Notification) if lock else probe
