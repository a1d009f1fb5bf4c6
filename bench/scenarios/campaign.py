"""`campaign`: one email to many recipients through a CampaignWorkflow and the providers' batch calls.

Three stacks, each with its draft and every recipient stored before the clock starts; the clock
runs from `start_campaign` to the last recipient row's `completed_at`:

- SQLite, outbox: a few single emails one at a time (the unloaded reference), a campaign of N/10
  (the worker's peak RSS after it), then one of N (peak RSS after it, py-spy on the worker) with
  single emails enqueued at intervals while it runs: `campaign_per_s`, `campaign_rss_ratio`,
  `campaign_single_p50_ratio`, `campaign_profile_top`.
- SQLite, the Resend SDK against the local fake batch API: `campaign_resend_per_s`.
- PostgreSQL, outbox, on a fresh database: `campaign_per_s_postgres`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from bench.client import _client, _epoch, _payload
from bench.harness import Stack, stack, start_worker, start_worker_beside
from bench.measure import Meter, _ms_stats, _ratio
from bench.options import BenchOptions
from bench.profile import profile_top, start_profiler, stop_profiler
from bench.scenarios.resend import RESEND_TEST_KEY

QUEUES = ("notification-email", "notification-push", "notification-campaign")
CAMPAIGN_QUEUE = "notification-campaign"
TRANSACTIONAL_QUEUES = ("notification-email", "notification-push")
SINGLES = 20  # single emails enqueued while the large campaign runs
ADD_CHUNK = 10_000  # recipients per add_campaign_recipients call
_SENT = ("sent", "delivered", "bounced")  # what campaign() counts as sent
_FINISHED = (*_SENT, "failed", "suppressed", "expired", "cancelled")

Hook = Callable[[Callable[[], bool]], Coroutine[Any, Any, Any]]


async def run_campaign(opts: BenchOptions, base: Path) -> dict[str, Any]:
    """The three stacks one after another; a part that fails keeps the others' numbers."""
    n = opts.campaign_n
    small = max(1, n // 10)
    # The harness's whole-lifetime profile stays off here: this scenario records the large run alone.
    quiet = dataclasses.replace(opts, profile_dir=None)
    out: dict[str, Any] = {"recipients": n, "small_recipients": small}
    parts: list[tuple[str, Callable[[], Awaitable[dict[str, Any]]]]] = [
        ("sqlite", lambda: _measured(opts, quiet, base, n, small)),
        ("resend", lambda: _resend(quiet, base, n)),
        ("postgres", lambda: _measured(opts, quiet, base, n, small, postgres=True)),
    ]
    errors = []
    for name, part in parts:
        try:
            out[name] = await part()
        except Exception as exc:
            out[name] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
        if "error" in out[name]:
            errors.append(f"{name}: {out[name]['error']}")
    sq, rs, pg = out["sqlite"], out["resend"], out["postgres"]
    large, pg_large = sq.get("large") or {}, pg.get("large") or {}
    out.update(
        campaign_per_s=large.get("recipients_per_s"),
        campaign_resend_per_s=rs.get("recipients_per_s"),
        campaign_per_s_postgres=pg_large.get("recipients_per_s"),
        campaign_rss_ratio=sq.get("worker_peak_rss_ratio"),
        campaign_single_p50_ratio=sq.get("single_p50_ratio"),
        campaign_single_p50_ratio_postgres=pg.get("single_p50_ratio"),
        campaign_profile_top=(sq.get("profile") or {}).get("self"),
        all_sent=all(p.get("all_sent") for p in (large, sq.get("small") or {}, rs, pg_large, pg.get("small") or {})),
    )
    if errors:
        out["error"] = "; ".join(errors)[:2000]
    return out


async def _measured(
    opts: BenchOptions, quiet: BenchOptions, base: Path, n: int, small: int, *, postgres: bool = False
) -> dict[str, Any]:
    """A small campaign, then a large one with single emails sent during it, on SQLite or PostgreSQL."""
    async with stack(quiet, "campaign-postgres" if postgres else "campaign", base, postgres=postgres) as st:
        # As deployed for campaigns beside transactional traffic (README, Campaigns): campaign batches
        # in a worker process of their own, the measured one; single notifications in another.
        await start_worker(
            st, quiet, kind="ours", queues=[CAMPAIGN_QUEUE], OUTBOX_LATENCY_MS="0", WORKER_QUEUES="campaign"
        )
        await start_worker_beside(
            st, TRANSACTIONAL_QUEUES, OUTBOX_LATENCY_MS="0", WORKER_QUEUES="email,push,maintenance"
        )
        client = await _client(st)
        out: dict[str, Any] = {}
        try:
            prefix = f"single-{uuid.uuid4().hex[:6]}"
            await _one_at_a_time(client, prefix, opts.unloaded_count)
            out["small"] = await _campaign(st, client, small, opts.scenario_timeout)
            rss_small, peak_small = st.worker_rss_kb(), st.worker_peak_rss_kb()
            # Singles spread over the large run's expected length, scaled from the small run (whose
            # start-up weighs more: 0.7 of it, so all SINGLES usually fit).
            expected = (out["small"]["wall_seconds"] or 1.0) * n / small
            spacing = max(0.2, 0.7 * expected / SINGLES)
            during = f"during-{uuid.uuid4().hex[:6]}"
            db = "postgres" if postgres else "sqlite"
            profile_path = (opts.profile_dir or st.workdir) / f"campaign-large-{db}.collapsed.txt"
            profiler: list[Any] = []

            async def singles(running: Callable[[], bool]) -> list[float]:
                return await _singles_while(client, during, running, spacing)

            out["large"] = await _campaign(
                st,
                client,
                n,
                opts.scenario_timeout,
                during=singles,
                on_start=lambda: profiler.append(start_profiler(st.worker.pid, profile_path) if st.worker else None),
                on_stop=lambda: stop_profiler(profiler[0] if profiler else None),
            )
            rss_large, peak_large = st.worker_rss_kb(), st.worker_peak_rss_kb()
            unloaded = await _e2e(client, prefix, skip_first=True)
            loaded_rows = await _e2e(client, during)
            end = out["large"]["last_completed"]
            loaded = [e for created, e in loaded_rows if end is None or created < end]
        finally:
            await client.close()
    out["profile"] = profile_top(profile_path) if profiler and profiler[0] is not None else {"error": "no py-spy"}
    if opts.profile_dir is None and not opts.keep_temp:
        out["profile"]["file"] = None  # the scenario's directory is removed with the run
    else:
        out["profile"]["file"] = str(profile_path)
    unloaded_ms = _ms_stats([e for _, e in unloaded], (50, 99))
    loaded_ms = _ms_stats(loaded, (50, 99))

    def mb(kb: int | None) -> float | None:
        return round(kb / 1024, 1) if kb else None

    out.update(
        worker_rss_after_small_mb=mb(rss_small),
        worker_rss_after_large_mb=mb(rss_large),
        worker_peak_rss_small_mb=mb(peak_small),
        worker_peak_rss_large_mb=mb(peak_large),
        worker_peak_rss_ratio=_ratio(peak_large, peak_small),
        single_unloaded_count=len(unloaded),
        single_unloaded_ms=unloaded_ms,
        single_during_count=len(loaded),
        single_during_enqueued=len(loaded_rows),
        single_during_spacing_s=round(spacing, 2),
        single_during_ms=loaded_ms,
        single_p50_ratio=_ratio(loaded_ms["p50"], unloaded_ms["p50"]),
    )
    for run in ("small", "large"):
        out[run].pop("last_completed", None)
    return out


async def _resend(opts: BenchOptions, base: Path, n: int) -> dict[str, Any]:
    from fakes.resend import FakeResend

    async with FakeResend(api_key=RESEND_TEST_KEY) as fake:
        env = {"EMAIL_PROVIDER": "resend", "RESEND_API_KEY": RESEND_TEST_KEY, "RESEND_API_URL": fake.url}
        result = await _outbox_only(opts, base, n, name="campaign-resend", worker_env=env)
        result["provider"] = "resend SDK -> local fake Resend batch API (fakes/resend.py)"
        result["fake_resend_emails"] = len(fake.emails)
        result["fake_resend_batch_calls"] = fake.batch_calls
        result.pop("outbox_messages", None)
    return result


async def _outbox_only(
    opts: BenchOptions,
    base: Path,
    n: int,
    *,
    name: str = "campaign-postgres",
    worker_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One campaign of n on its own stack: PostgreSQL with the outbox, or SQLite with `worker_env`'s provider."""
    postgres = worker_env is None
    async with stack(opts, name, base, postgres=postgres) as st:
        await start_worker(
            st,
            opts,
            kind="ours",
            email_concurrency=opts.email_concurrency,
            push_concurrency=opts.push_concurrency,
            queues=QUEUES,
            OUTBOX_LATENCY_MS="0",
            **(worker_env or {}),
        )
        client = await _client(st)
        try:
            result = await _campaign(st, client, n, opts.scenario_timeout)
        finally:
            await client.close()
    result.pop("last_completed", None)
    result["database"] = "postgresql" if postgres else "sqlite"
    return result


async def _campaign(
    st: Stack,
    client: Any,
    n: int,
    limit_s: float,
    *,
    during: Hook | None = None,
    on_start: Callable[[], None] | None = None,
    on_stop: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """A draft of n recipients stored, then the clock: start_campaign until every row is sent."""
    created = await client.create_campaign(
        {
            "name": f"bench {n}",
            "channel": "email",
            "subject": "Hello {{ name }}",
            "html": "<p>Hi {{ name }}, {{ season }} is here</p>",
            "text": "Hi {{ name }}, {{ season }} is here",
            "data": {"season": "winter"},
            "draft": True,
        }
    )
    cid = created["campaignId"]
    t_add = time.time()
    added = 0
    for first in range(0, n, ADD_CHUNK):
        people = [
            {"to": f"user{i}@example.com", "userId": f"u{i}", "name": f"User {i}"}
            for i in range(first, min(first + ADD_CHUNK, n))
        ]
        added += (await client.add_campaign_recipients(cid, people))["added"]
    add_s = time.time() - t_add
    meter = Meter(st)
    state = {"running": True}
    side: asyncio.Task[Any] | None = None
    if on_start is not None:
        on_start()
    try:
        meter.start()
        t0 = time.time()
        await client.start_campaign(cid)
        side = asyncio.create_task(during(lambda: state["running"])) if during is not None else None
        sent, status = await _wait_campaign(st, client, cid, n, limit_s)
    except BaseException:
        if side is not None:
            side.cancel()
        raise
    finally:
        state["running"] = False
        meter.stop()
        if on_stop is not None:
            on_stop()
    if side is not None:
        await side
    peak = st.worker_peak_rss_kb()
    rows = await _rows(client, cid)
    record = await client.campaign(cid)
    end = rows["last_completed"] or time.time()
    wall = end - t0
    report = meter.report(n)
    all_sent = sent == n == rows["sent"]
    return {
        "campaign_id": cid,
        "recipients": n,
        "added": added,
        "add_seconds": round(add_s, 2),
        "add_per_s": round(added / add_s, 1) if add_s > 0 else None,
        "sent": sent,
        "all_sent": all_sent,
        "status": status,
        "wall_seconds": round(wall, 2),
        "recipients_per_s": round(n / wall, 1) if wall > 0 and all_sent else None,  # a rate of them all
        "workflow_seconds": _span(record.get("startedAt"), record.get("completedAt")),
        "record": {k: record.get(k) for k in ("status", "total", "sent", "queued", "failed", "ratePerSecond")},
        **{k: v for k, v in report.items() if not k.endswith("_per_workflow")},
        **{k.replace("_per_workflow", "_per_recipient"): v for k, v in report.items() if k.endswith("_per_workflow")},
        "worker_peak_rss_mb": round(peak / 1024, 1) if peak else None,
        "delivery_attempts": rows["delivery_attempts"],
        "outbox_messages": rows["outbox_messages"],
        "last_completed": rows["last_completed"],
    }


async def _wait_campaign(st: Stack, client: Any, cid: str, n: int, limit_s: float) -> tuple[int, str]:
    """Until every recipient is sent, or the campaign ended with some not sent (or the time is up)."""
    from sqlalchemy import func, select

    from notifications.sql.models import Campaign, Notification

    deadline = time.monotonic() + limit_s
    sent, status = 0, ""
    while time.monotonic() < deadline:
        st.check_worker()
        async with client.db.sessions() as session:
            status = str(await session.scalar(select(Campaign.status).where(Campaign.id == cid)))
            found = await session.execute(
                select(Notification.status, func.count())
                .where(Notification.campaign_id == cid, Notification.status.in_(_FINISHED))
                .group_by(Notification.status)
            )
            counts = {str(s): int(c) for s, c in found.all()}
        sent = sum(counts.get(s, 0) for s in _SENT)
        if sent >= n or (status in ("completed", "cancelled") and sum(counts.values()) >= n):
            break
        await asyncio.sleep(0.5)
    return sent, status


async def _rows(client: Any, cid: str) -> dict[str, Any]:
    """The campaign's rows after the run: sent, the last completion, the exactly-once counts."""
    from sqlalchemy import func, select

    from notifications.sql.models import DeliveryAttempt, Notification, OutboxMessage

    mine = Notification.campaign_id == cid
    async with client.db.sessions() as session:
        sent = await session.scalar(select(func.count()).where(mine, Notification.status.in_(_SENT)))
        last = await session.scalar(select(func.max(Notification.completed_at)).where(mine))
        attempts = (
            await session.execute(
                select(DeliveryAttempt.outcome, func.count())
                .join(Notification, Notification.id == DeliveryAttempt.notification_id)
                .where(mine)
                .group_by(DeliveryAttempt.outcome)
            )
        ).all()
        outbox = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .join(Notification, Notification.id == OutboxMessage.notification_id)
            .where(mine)
        )
    return {
        "sent": int(sent or 0),
        "last_completed": _epoch(last) if last else None,
        "delivery_attempts": {str(o): int(c) for o, c in attempts},
        "outbox_messages": int(outbox or 0),
    }


async def _one_at_a_time(client: Any, prefix: str, count: int) -> None:
    """`count` single emails, each sent before the next (plus one first that warms the worker)."""
    for i in range(count + 1):
        await client.enqueue_email(_payload(i, "email", prefix), 5)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if (await client.get(f"{prefix}-{i:06d}")).status == "sent":
                break
            await asyncio.sleep(0.002)
        await asyncio.sleep(0.2)


async def _singles_while(client: Any, prefix: str, running: Callable[[], bool], spacing: float) -> list[float]:
    """Up to SINGLES single emails, one every `spacing` s while the campaign runs (the first at once)."""
    enqueued: list[float] = []
    while running() and len(enqueued) < SINGLES:
        await client.enqueue_email(_payload(len(enqueued), "email", prefix), 5)
        enqueued.append(time.time())
        waited = 0.0
        while running() and waited < spacing:
            await asyncio.sleep(min(0.1, spacing - waited))
            waited += 0.1
    if enqueued:  # each sent before this answers, so their rows are final when read
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if len(await _e2e(client, prefix)) >= len(enqueued):
                break
            await asyncio.sleep(0.1)
    return enqueued


async def _e2e(client: Any, prefix: str, *, skip_first: bool = False) -> list[tuple[float, float]]:
    """(created, created -> completed seconds) of each sent single of `prefix`, in ID order."""
    from sqlalchemy import select

    from notifications.sql.models import Notification

    async with client.db.sessions() as session:
        rows = (
            await session.execute(
                select(Notification.id, Notification.created_at, Notification.completed_at)
                .where(Notification.id.like(f"{prefix}-%"), Notification.status == "sent")
                .order_by(Notification.id)
            )
        ).all()
    found = [(_epoch(r.created_at), _epoch(r.completed_at) - _epoch(r.created_at)) for r in rows if r.completed_at]
    return found[1:] if skip_first else found


def _span(start: str | None, end: str | None) -> float | None:
    from datetime import datetime

    if not start or not end:
        return None
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 2)
