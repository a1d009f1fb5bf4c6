"""From what the provider saw, what SQL and Temporal hold and what each caller was told, to the figures.

The provider's side is the truth about delivery: a Resend email is a new email ID (an
idempotent replay of a key sends nothing), an SMTP message is a message the sink accepted,
a push is an accepted FCM message. Each maps to
one enqueue by its unique recipient.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chaos.load import Enqueue
from fakes.fcm import FakeFCM, collapse_tag
from fakes.http import Exchange
from fakes.resend import FakeResend
from fakes.smtp import SmtpSink

EXAMPLES = 5  # how many sequence numbers of each kind of failure the JSON keeps


@dataclass
class Delivery:
    at: float  # when the provider received the call that delivered it (epoch seconds)
    notification_id: str | None  # the Idempotency-Key of an email, data.notificationId of a push
    collapse_tag: str | None = None  # a push's Android tag / APNs collapse ID: a repeat replaces the first


def deliveries(resend: FakeResend, fcm: FakeFCM, smtp: SmtpSink | None = None) -> dict[str, list[Delivery]]:
    """Recipient -> every successful provider call that sent something to it (SMTP: every message)."""
    out: dict[str, list[Delivery]] = defaultdict(list)
    if smtp is not None:
        for mail, (_, rcpts), at in zip(smtp.messages, smtp.envelopes, smtp.received, strict=False):
            nid = str(mail.get("Message-ID", "")).strip("<>").rsplit("@", 1)[0] or None
            for to in rcpts:
                out[to].append(Delivery(at, nid))
    first: dict[str, Exchange] = {}
    for ex in resend.exchanges:
        email_id = (ex.response.body or {}).get("id") if ex.response.status == 200 else None
        if email_id and (email_id not in first or ex.at < first[email_id].at):
            first[email_id] = ex  # a replay may be answered before the first call it repeats
    for ex in first.values():
        to = ((ex.request.json() or {}).get("to") or [""])[0]
        out[to].append(Delivery(ex.at, ex.request.headers.get("idempotency-key")))
    for ex in fcm.exchanges:
        if ex.response.status == 200:
            message = (ex.request.json() or {}).get("message") or {}
            nid = (message.get("data") or {}).get("notificationId")
            out[message.get("token", "")].append(Delivery(ex.at, nid, collapse_tag(message)))
    for found in out.values():
        found.sort(key=lambda d: d.at)
    return out


def retry_margins(resend: FakeResend, recipients: set[str]) -> list[float]:
    """For each 429 with Retry-After to these recipients: the gap to the next request minus Retry-After."""
    calls: dict[str, list[Exchange]] = defaultdict(list)
    for ex in resend.exchanges:
        to = ((ex.request.json() or {}).get("to") or [""])[0]
        if to in recipients:
            calls[to].append(ex)
    margins: list[float] = []
    for seen in calls.values():
        seen.sort(key=lambda e: e.at)
        for a, b in itertools.pairwise(seen):
            hint = a.response.headers.get("Retry-After")
            if a.response.status == 429 and hint is not None:
                margins.append(b.at - a.at - float(hint))
    return margins


@dataclass
class Stored:
    """What SQL and Temporal hold: rows by recipient, logged sends, and workflows nobody was told of."""

    rows: dict[str, list[str]] = field(default_factory=dict)  # recipient -> notification IDs
    logged_sent: set[str] = field(default_factory=set)  # IDs with a delivery_attempts row `sent`
    workflows: dict[str, str | None] = field(default_factory=dict)  # stray workflow's ID -> recipient


async def sql_rows(db: Any) -> tuple[dict[str, list[str]], set[str]]:
    from sqlalchemy import select

    from notifications.sql.models import DeliveryAttempt, Notification

    async with db.sessions() as session:
        rows = (await session.execute(select(Notification.id, Notification.recipient))).all()
        sent = await session.scalars(select(DeliveryAttempt.notification_id).where(DeliveryAttempt.outcome == "sent"))
        logged = set(sent)
    by_recipient: dict[str, list[str]] = defaultdict(list)
    for nid, recipient in rows:
        by_recipient[recipient or ""].append(nid)
    return dict(by_recipient), logged


async def stray_workflows(temporal: Any, known: set[str]) -> dict[str, str | None]:
    """Notification workflows whose ID no caller got back, with the recipient from their input."""
    from notifications.types import WORKFLOW_NAME

    out: dict[str, str | None] = {}
    async for wf in temporal.list_workflows(f'WorkflowType = "{WORKFLOW_NAME}"'):
        nid = wf.id.removeprefix("notification-")
        if nid in known or nid in out:
            continue
        history = await temporal.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        data = json.loads(started.input.payloads[0].data) if started.input.payloads else {}
        out[nid] = data.get("to") or data.get("token")
    return out


async def stored(db: Any, temporal: Any, known: set[str]) -> Stored:
    """`known`: the notification IDs callers got back (this run's and any earlier run's on the stack)."""
    rows, logged = await sql_rows(db)
    return Stored(rows, logged, await stray_workflows(temporal, known))


async def settle(
    resend: FakeResend,
    fcm: FakeFCM,
    temporal: Any,
    entries: list[Enqueue],
    limit_s: float,
    smtp: SmtpSink | None = None,
) -> bool:
    """Until every accepted enqueue was delivered and no notification workflow still runs (a send
    interrupted by a fault may yet be repeated), or `limit_s` passed; True when all were delivered."""
    from notifications.types import WORKFLOW_NAME

    running = f'WorkflowType = "{WORKFLOW_NAME}" AND ExecutionStatus = "Running"'
    deadline = time.monotonic() + limit_s
    while True:
        found = deliveries(resend, fcm, smtp)
        delivered = all(found.get(e.recipient) for e in entries if e.accepted)
        if delivered and (await temporal.count_workflows(running)).count == 0:
            return True
        if time.monotonic() > deadline:
            return delivered
        await asyncio.sleep(0.25)


async def wait_logged(db: Any, ids: set[str], limit_s: float) -> None:
    """Until each delivered notification has its `sent` row in the delivery log, or `limit_s` passed."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            _, logged = await sql_rows(db)
        except Exception:  # the database may still be coming back
            logged = set()
        if ids <= logged:
            return
        await asyncio.sleep(0.5)


def figures(
    entries: list[Enqueue],
    found: Mapping[str, list[Delivery]],
    held: Stored,
    *,
    fault_end: Mapping[str, float],
    margins: list[float] | None = None,
) -> dict[str, Any]:
    """The issue's figures for one run; `fault_end` per channel (epoch seconds)."""
    accepted = [e for e in entries if e.accepted]
    refused = [e for e in entries if not e.accepted]
    stray = {r for r in held.workflows.values() if r}
    mine = {e.recipient for e in entries}

    def was_stored(e: Enqueue) -> bool:
        by_id = e.notification_id is not None and e.notification_id in held.workflows
        return bool(held.rows.get(e.recipient)) or by_id or e.recipient in stray

    sent = [e for e in accepted if found.get(e.recipient)]
    lost = [e for e in accepted if not found.get(e.recipient)]
    repeated = [e for e in entries if len(found.get(e.recipient, [])) > 1]
    # Duplicated is what the recipient gets twice: an email accepted twice, or a push repeat that
    # the device does not fold into the first by its collapse tag (FCM has no idempotency key).
    duplicated = [e for e in repeated if len({d.collapse_tag or id(d) for d in found[e.recipient]}) > 1]
    told_failed = [e for e in refused if found.get(e.recipient)]
    stored_refused = [e for e in refused if was_stored(e)]
    missing_log = [e for e in sent + told_failed if found[e.recipient][0].notification_id not in held.logged_sent]
    recovery: float | None = None
    if sent and not lost:
        recovery = max(0.0, max(found[e.recipient][0].at - fault_end[e.channel] for e in sent))
    statuses = Counter(e.http_status for e in entries if e.http_status is not None)
    documented = sum(1 for e in entries if e.http_status == 503 and e.retry_after)
    fivexx = sum(n for s, n in statuses.items() if s >= 500)
    out: dict[str, Any] = {
        "enqueued": len(entries),
        "accepted": len(accepted),
        "refused": len(refused),
        "refused_errors": dict(Counter(e.error or "?" for e in refused)),
        "stored_for_refused": len(stored_refused),
        "sent": len(sent),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "duplicated_by_channel": dict(Counter(e.channel for e in duplicated)),
        "repeated_provider_calls": len(repeated),
        "repeated_by_channel": dict(Counter(e.channel for e in repeated)),
        "told_failed_but_sent": len(told_failed),
        "missing_log_rows": len(missing_log),
        "retry_after_margin_s": round(min(margins), 3) if margins else None,
        "rate_limited_answers": len(margins or []),
        "recovery_s": None if recovery is None else round(recovery, 2),
        "http_status": {str(k): v for k, v in sorted(statuses.items())},
        "http_5xx": fivexx,
        "http_5xx_undocumented": fivexx - documented,
        "unattributed_workflows": sum(1 for r in held.workflows.values() if r not in mine),
        "refusals": [
            {
                "seq": e.seq,
                "channel": e.channel,
                "via": e.via,
                "error": e.error,
                "causes": e.causes,
                "at": round(e.started, 3),
            }
            for e in refused[: EXAMPLES * 2]
        ],
        "examples": {
            name: [e.seq for e in items[:EXAMPLES]]
            for name, items in (
                ("lost", lost),
                ("duplicated", duplicated),
                ("told_failed_but_sent", told_failed),
                ("stored_for_refused", stored_refused),
                ("missing_log_rows", missing_log),
            )
            if items
        },
    }
    return out
