"""A campaign batch's writes: claiming a range of recipients, then recording each one's outcome.

The claim decides, per recipient, what a single notification's attempt start decides (expiry,
suppression list, preferences, quiet hours), in a few statements for the whole range, and
stamps each recipient it opens with the key of its provider call (`batch_key`): a repeated batch
finds them claimed and sends the same recipients under the same key, so a provider honouring
idempotency keys delivers each once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from notifications.campaign_types import CampaignBatch, CampaignCounts
from notifications.preferences import Action, Subjects, decide
from notifications.recipients import address_of
from notifications.schemas import as_utc
from notifications.sql.models import DeliveryAttempt, Notification, Preference, Suppression
from notifications.sql.statements import QUEUE_PAUSED
from notifications.sql.store.events import apply_pending_among
from notifications.types import (
    RECIPIENT_SUPPRESSED_ERROR,
    USER_OPTED_OUT_ERROR,
    Status,
    workflow_id_for,
)

# Claimed by a batch (status `retrying`, `batch_key` set) or handed to its own workflow
# (`queued` / `retrying` / `scheduled`, no `batch_key`): what a repeated batch picks up again.
_OPEN = (Status.PENDING.value, Status.QUEUED.value, Status.RETRYING.value, Status.SCHEDULED.value)
_COLUMNS = (
    Notification.id,
    Notification.status,
    Notification.batch_key,
    Notification.campaign_seq,
    Notification.tenant,
    Notification.channel,
    Notification.type,
    Notification.priority,
    Notification.user_id,
    Notification.recipient,
    Notification.subject,
    Notification.content,
    Notification.attempts,
    Notification.expires_at,
    Notification.critical,
)


@dataclass
class Claimed:
    queue_paused: bool = False
    chunks: dict[str, list[Any]] = field(default_factory=dict)  # batch_key -> rows, in campaign order
    handoff: list[Any] = field(default_factory=list)  # rows now (or already) in a workflow of their own
    counts: CampaignCounts = field(default_factory=CampaignCounts)


def claim_batch(conn: Connection, batch: CampaignBatch, chunk: int, now: datetime) -> Claimed:
    if conn.scalar(QUEUE_PAUSED, {"b_queue": batch.channel}):
        return Claimed(queue_paused=True)
    query = (
        select(*_COLUMNS)
        .where(
            Notification.campaign_id == batch.campaignId,
            Notification.campaign_seq.between(batch.seqFrom, batch.seqTo),
            Notification.status.in_(_OPEN),
        )
        .order_by(Notification.campaign_seq)
    )
    if conn.dialect.name != "sqlite":  # two tries of one batch at once: the second waits and reopens
        query = query.with_for_update()
    rows = conn.execute(query).all()
    claimed = Claimed()
    fresh: list[Any] = []
    for row in rows:
        if row.status == Status.PENDING.value:
            fresh.append(row)
        elif row.batch_key is not None:
            claimed.chunks.setdefault(row.batch_key, []).append(row)
        else:
            claimed.handoff.append(row)
    if not fresh:
        _reopen(conn, batch.campaignId, claimed.chunks, now)
        return claimed
    verdicts = _verdicts(conn, batch.channel, fresh, now)
    finals: list[dict[str, Any]] = []
    opened: list[Any] = []
    handed: list[Any] = []
    for row in fresh:
        verdict = verdicts[row.id]
        if verdict is None:
            opened.append(row)
        elif verdict[0] == Status.QUEUED.value:
            handed.append(row)
        else:
            status, code, message = verdict
            finals.append({"b_id": row.id, "status": status, "error_code": code, "error_message": message})
            if status == Status.EXPIRED.value:
                claimed.counts.expired += 1
            else:
                claimed.counts.suppressed += 1
    if finals:
        conn.execute(_FINAL, [{**f, "completed_at": now, "updated_at": now} for f in finals])
    if handed:
        conn.execute(
            _HAND_OFF,
            [{"b_id": r.id, "workflow_id": workflow_id_for(r.id), "updated_at": now} for r in handed],
        )
        claimed.handoff.extend(handed)
    claimed.counts.handedOff += len(handed)
    opening = {"status": Status.RETRYING.value, "last_attempt_at": now, "updated_at": now}
    for start in range(0, len(opened), chunk):
        part = opened[start : start + chunk]
        first, last = part[0].campaign_seq, part[-1].campaign_seq
        key = f"campaign-{batch.campaignId}-{first}-{last}"
        claimed.chunks[key] = part
        # The call's recipients are the range's rows still pending: the others were just decided.
        where = {"b_campaign": batch.campaignId, "b_first": first, "b_last": last}
        conn.execute(_OPEN_PENDING, {**where, **opening, "batch_key": key})
    _reopen(conn, batch.campaignId, {k: rows for k, rows in claimed.chunks.items() if rows[0].batch_key}, now)
    return claimed


def _reopen(conn: Connection, campaign_id: str, chunks: dict[str, list[Any]], now: datetime) -> None:
    """Recipients an earlier try of this batch claimed: another provider attempt each, same call."""
    for key, rows in chunks.items():
        where = {"b_campaign": campaign_id, "b_first": rows[0].campaign_seq, "b_last": rows[-1].campaign_seq}
        conn.execute(_OPEN_AGAIN, {**where, "b_key": key, "last_attempt_at": now, "updated_at": now})


_FINAL = update(Notification).where(Notification.id == bindparam("b_id"), Notification.status == Status.PENDING.value)
_HAND_OFF = (
    update(Notification)
    .where(Notification.id == bindparam("b_id"), Notification.status == Status.PENDING.value)
    .values(status=Status.QUEUED.value)
)
_IN_RANGE = (
    Notification.campaign_id == bindparam("b_campaign"),
    Notification.campaign_seq.between(bindparam("b_first"), bindparam("b_last")),
)
_OPEN_PENDING = (
    update(Notification)
    .where(*_IN_RANGE, Notification.status == Status.PENDING.value)
    .values(attempts=Notification.attempts + 1)
)
_OPEN_AGAIN = (
    update(Notification)
    .where(*_IN_RANGE, Notification.status == Status.RETRYING.value, Notification.batch_key == bindparam("b_key"))
    .values(attempts=Notification.attempts + 1)
)


def _verdicts(conn: Connection, channel: str, rows: list[Any], now: datetime) -> dict[str, tuple[str, ...] | None]:
    """None: send it; (status, errorCode, message): ended here; ("queued",): quiet hours, later."""
    tenant = Subjects.of(rows[0].tenant, None, channel, None).tenant
    addresses = {address_of(channel, r.recipient, r.recipient) for r in rows} - {None}
    suppressed: dict[str, str] = {}
    if addresses:
        found = conn.execute(
            select(Suppression.address, Suppression.reason).where(
                Suppression.tenant == tenant, Suppression.channel == channel, Suppression.address.in_(addresses)
            )
        )
        suppressed = {address: reason for address, reason in found}
    subjects = {r.id: Subjects.of(r.tenant, r.user_id, channel, r.recipient) for r in rows}
    keys = {key for s in subjects.values() for key in s.keys()}
    stored = conn.execute(
        select(Preference.subject, Preference.document).where(Preference.tenant == tenant, Preference.subject.in_(keys))
    )
    documents: dict[str, dict[str, Any]] = {subject: document for subject, document in stored}
    out: dict[str, tuple[str, ...] | None] = {}
    for row in rows:
        expires = as_utc(row.expires_at) if row.expires_at else None
        if expires is not None and expires <= now:
            out[row.id] = (Status.EXPIRED.value, "EXPIRED", "expiresAt passed before its batch ran")
            continue
        reason = suppressed.get(address_of(channel, row.recipient, row.recipient) or "")
        if reason is not None and not (row.critical and reason == "unsubscribe"):
            out[row.id] = (Status.SUPPRESSED.value, RECIPIENT_SUPPRESSED_ERROR, f"on the suppression list ({reason})")
            continue
        verdict = decide(
            documents, subjects[row.id], channel=channel, type_=row.type, critical=bool(row.critical), now=now
        )
        if verdict.action == Action.OPTED_OUT:
            out[row.id] = (Status.SUPPRESSED.value, USER_OPTED_OUT_ERROR, f"opted out ({verdict.rule})")
        elif verdict.action == Action.QUIET:
            out[row.id] = (Status.QUEUED.value,)
        else:
            out[row.id] = None
    return out


@dataclass
class Outcome:
    """One claimed recipient after its provider call."""

    row: Any
    key: str  # the batch call's key, under which the claim holds the row
    status: str  # sent | failed | queued (handed to its own workflow for a later retry)
    provider: str | None = None
    message_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    retry_in: timedelta | None = None
    details: dict[str, Any] = field(default_factory=dict)


def finish_batch(conn: Connection, outcomes: list[Outcome], run_id: str, started: datetime, now: datetime) -> None:
    """Every outcome and its delivery-log row, and the webhook events that came before a recorded
    message ID applied, in one transaction."""
    by_status: dict[str, list[dict[str, Any]]] = defaultdict(list)
    log_rows = []
    for o in outcomes:
        values: dict[str, Any] = {
            "b_id": o.row.id,
            "b_key": o.key,
            "status": o.status,
            "provider": o.provider,
            "provider_message_id": o.message_id,
            "error_code": o.error_code,
            "error_message": o.error_message,
            "updated_at": now,
        }
        if o.status == Status.QUEUED.value:  # a retry in its own workflow, after its backoff
            values.update(
                status=Status.RETRYING.value,
                batch_key=None,
                workflow_id=workflow_id_for(o.row.id),
                next_retry_at=now + (o.retry_in or timedelta(0)),
            )
            by_status["handoff"].append(values)
        else:
            values["completed_at"] = now
            by_status[o.status].append(values)
        log_rows.append(
            {
                "notification_id": o.row.id,
                "run_id": run_id,
                "attempt": o.row.attempts + 1,
                "started_at": started,
                "finished_at": now,
                "outcome": _LOG_OUTCOME.get(o.status, "transient_error"),
                "error_code": o.error_code,
                "error_message": o.error_message,
                "provider": o.provider,
                "provider_message_id": o.message_id,
                "details": o.details,
            }
        )
    for group in by_status.values():
        conn.execute(_CLOSE, group)
    if log_rows:
        module = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(module.insert(DeliveryAttempt).on_conflict_do_nothing(), log_rows)
    apply_pending_among(conn, [o.message_id for o in outcomes if o.message_id])


_LOG_OUTCOME = {Status.SENT.value: "sent", Status.FAILED.value: "permanent_error"}
# Only while this batch's claim holds the row: a late or repeated finish changes nothing.
_CLOSE = update(Notification).where(
    Notification.id == bindparam("b_id"),
    Notification.batch_key == bindparam("b_key"),
    Notification.status == Status.RETRYING.value,
)


_COUNTED = {
    Status.SENT.value: "sent",
    Status.DELIVERED.value: "sent",
    Status.BOUNCED.value: "sent",
    Status.FAILED.value: "failed",
    Status.SUPPRESSED.value: "suppressed",
    Status.EXPIRED.value: "expired",
    Status.CANCELLED.value: None,
}


def range_counts(conn: Connection, batch: CampaignBatch) -> CampaignCounts:
    """What became of a range's recipients, from SQL: a repeated batch reports the whole range."""
    counts = CampaignCounts()
    found = conn.execute(
        select(Notification.status, func.count())
        .where(
            Notification.campaign_id == batch.campaignId,
            Notification.campaign_seq.between(batch.seqFrom, batch.seqTo),
        )
        .group_by(Notification.status)
    )
    for status, n in found:
        name = _COUNTED.get(status, "handedOff")
        if name is not None:
            setattr(counts, name, getattr(counts, name) + n)
    return counts
