"""Every write to the SQL mirror, in one place.

The rules that keep the mirror honest under retries, crashes and replays:
- a notification row is created from the workflow input if it is missing (a
  workflow started by hand from the `temporal` CLI still gets its row);
- a terminal status (sent, failed, cancelled, expired, suppressed) is never overwritten by a
  non-terminal one, so a late or repeated write cannot move a row backwards;
- one delivery-log row per (notification, run, attempt), upserted.
"""

from notifications.sql.store.admin import purge_finished, record_provider_state, write_audit
from notifications.sql.store.attempts import EarlierAttempt, earlier_attempts
from notifications.sql.store.control import claim_for_retry, end_retry_claim, set_paused, set_queue_paused
from notifications.sql.store.dashboard_tokens import spend_token, token_spent
from notifications.sql.store.devices import delete_device, mark_devices, upsert_device
from notifications.sql.store.events import apply_stranded
from notifications.sql.store.heartbeats import beat, forget, live_queues
from notifications.sql.store.preferences import add_opt_out, get_preferences, put_preferences
from notifications.sql.store.ratelimits import count_rate_limit_hit
from notifications.sql.store.sends import (
    AttemptStart,
    SentBefore,
    begin_attempt,
    finish_attempt,
    insert_notification,
    insert_row,
    link_fallback,
    record_outbox,
    record_status,
    release_held,
)
from notifications.sql.store.suppressions import add_suppression, list_suppressions, remove_suppression

__all__ = [
    "AttemptStart",
    "EarlierAttempt",
    "SentBefore",
    "add_opt_out",
    "add_suppression",
    "apply_stranded",
    "beat",
    "begin_attempt",
    "claim_for_retry",
    "count_rate_limit_hit",
    "delete_device",
    "earlier_attempts",
    "end_retry_claim",
    "finish_attempt",
    "forget",
    "get_preferences",
    "insert_notification",
    "insert_row",
    "link_fallback",
    "list_suppressions",
    "live_queues",
    "mark_devices",
    "purge_finished",
    "put_preferences",
    "record_outbox",
    "record_provider_state",
    "record_status",
    "release_held",
    "remove_suppression",
    "set_paused",
    "set_queue_paused",
    "spend_token",
    "token_spent",
    "upsert_device",
    "write_audit",
]
