"""The SQL text of PostgreSQL's per-send statements (`notifications.sql.pg` runs them through asyncpg)."""

from __future__ import annotations

import functools
import re

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql

from notifications.sql.statements import SENT_STATUSES, TERMINAL
from notifications.types import Status

_LENGTH = re.compile(r"\(.*\)")
_TERMINAL_SQL = ", ".join(f"'{s}'" for s in TERMINAL)
_SENT_SQL = ", ".join(f"'{s}'" for s in SENT_STATUSES)

# The attempt start of `store._begin_attempt` as one statement. The CTEs run once each, on one
# snapshot; the row lock taken by `probe` holds until the statement (its own transaction) ends.
# No row comes back when the notification has no row yet: the caller then takes the slow path.
# `repeated`: this very statement (same run, same `now`) committed before and its answer was
# lost (`_run` ran it again): it answers the attempt it opened then, and writes nothing.
# `prefs`: the preference documents of the notification's tenant, user and address ($8, $9).
# When one of them could stop it ($10: `preferences.gate_keys`) the statement writes nothing and
# answers `check_prefs` with the documents and their versions (`stamp`); the caller evaluates
# them and runs it again with that stamp ($11), which opens the attempt if they are unchanged.
# `supp`: the recipient ($12, `suppressions.address_of`) on the tenant's suppression list; a
# critical notification ($13) passes an unsubscribe, never a bounce, complaint or manual entry.
BEGIN_ATTEMPT = f"""
WITH probe AS (
    SELECT n.status, n.attempts, n.run_id, n.provider, n.provider_message_id, n.completed_at, n.paused,
           COALESCE((SELECT q.paused FROM queue_state q WHERE q.queue = $2), false) AS queue_paused
    FROM notifications n
    WHERE n.id = $1
    FOR UPDATE OF n
), prefs AS (
    SELECT COALESCE(bool_or(p.gates::jsonb ?| $10::text[]), false) AS gated,
           string_agg(p.subject || ':' || p.version, ',' ORDER BY p.subject COLLATE "C") AS stamp,
           json_object_agg(p.subject, p.document) AS documents
    FROM preferences p
    WHERE p.tenant = $8 AND p.subject = ANY($9::text[])
), supp AS (
    SELECT s.reason FROM suppressions s
    WHERE s.tenant = $8 AND s.channel = $2 AND s.address = $12 AND NOT ($13 AND s.reason = 'unsubscribe')
    LIMIT 1
), decision AS (
    SELECT p.*, f.stamp, f.documents, (SELECT reason FROM supp) AS suppressed_by,
           CASE WHEN p.queue_paused THEN 'queue_paused'
                WHEN p.paused AND NOT $5 AND p.status NOT IN ({_TERMINAL_SQL}) THEN 'paused'
                WHEN p.status IN ({_SENT_SQL}) THEN 'sent'
                WHEN EXISTS (SELECT 1 FROM supp) THEN 'suppressed'
                WHEN f.gated AND f.stamp IS DISTINCT FROM $11::text THEN 'check_prefs'
                ELSE 'open' END AS action,
           CASE WHEN p.run_id = $3 THEN p.attempts ELSE 0 END AS prior,
           EXISTS (SELECT 1 FROM delivery_attempts r
                   WHERE r.notification_id = $1 AND r.run_id = $3 AND r.attempt = p.attempts
                     AND r.started_at = $6 AND r.outcome = 'in_progress') AS repeated
    FROM probe p CROSS JOIN prefs f
), numbered AS (
    SELECT d.*, CASE WHEN d.repeated THEN d.prior ELSE GREATEST($4, d.prior + 1) END AS attempt,
           d.repeated AS writes_nothing
    FROM decision d
), interrupted AS (
    UPDATE delivery_attempts a
    SET outcome = 'interrupted', finished_at = $6, error_code = 'WORKER_LOST', error_message = $7
    FROM numbered d
    WHERE d.action = 'open' AND NOT d.writes_nothing AND d.prior > 0
      AND a.notification_id = $1 AND a.run_id = $3 AND a.outcome = 'in_progress'
), opened AS (
    INSERT INTO delivery_attempts (notification_id, run_id, attempt, started_at, outcome, details)
    SELECT $1, $3, d.attempt, $6, 'in_progress', '{{}}' FROM numbered d
    WHERE d.action = 'open' AND NOT d.writes_nothing
    ON CONFLICT (notification_id, run_id, attempt) DO NOTHING
), live AS (
    UPDATE notifications n
    SET status = '{Status.RETRYING.value}', attempts = d.attempt, last_attempt_at = $6, next_retry_at = NULL,
        paused = false, run_id = $3, updated_at = $6
    FROM numbered d
    WHERE n.id = $1 AND d.action = 'open' AND NOT d.writes_nothing AND n.status NOT IN ({_TERMINAL_SQL})
)
SELECT action, attempt, attempts, provider, provider_message_id, completed_at, suppressed_by,
       CASE WHEN action = 'check_prefs' THEN stamp END AS stamp,
       CASE WHEN action = 'check_prefs' THEN documents END AS documents
FROM numbered
"""


@functools.cache
def insert_row_sql(table: Table, columns: tuple[str, ...], conflict: tuple[str, ...]) -> str:
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({placeholders}) "
        f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
    )


@functools.cache
def insert_rows_sql(table: Table, columns: tuple[str, ...], conflict: tuple[str, ...]) -> str:
    """INSERT ... SELECT FROM unnest(one array per column) ... ON CONFLICT DO NOTHING RETURNING the key."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    # Each array cast to its column's base type: VARCHAR(128) would truncate a value silently
    # where the one-row statement refuses it.
    base_types = [_LENGTH.sub("", table.columns[c].type.compile(dialect=dialect)) for c in columns]
    arrays = ", ".join(f"${i}::{t}[]" for i, t in enumerate(base_types, start=1))
    return (
        f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) "
        f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING RETURNING {', '.join(conflict)}"
    )


@functools.cache
def finish_sql(attempt_columns: tuple[str, ...], row_columns: tuple[str, ...]) -> str:
    """The attempt row closed and the notification row updated, in one statement. When it records a
    provider message ID, it also answers whether webhook events about that message came first."""
    n = len(attempt_columns)
    attempt_set = ", ".join(f"{c} = ${i}" for i, c in enumerate(attempt_columns, start=4))
    row_set = ", ".join(f"{c} = ${i}" for i, c in enumerate(row_columns, start=4 + n))
    live = f"UPDATE notifications SET {row_set} WHERE id = $1 AND status NOT IN ({_TERMINAL_SQL})"
    closed = (
        f"WITH closed AS (UPDATE delivery_attempts SET {attempt_set} "
        "WHERE notification_id = $1 AND run_id = $2 AND attempt = $3)"
    )
    if "provider_message_id" not in row_columns:
        return f"{closed} {live}"
    message = 4 + n + row_columns.index("provider_message_id")
    return (
        f"{closed}, live AS ({live}) SELECT EXISTS (SELECT 1 FROM delivery_events e "
        f"WHERE e.provider_message_id = ${message} AND e.notification_id IS NULL)"
    )
