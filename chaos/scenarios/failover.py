"""Email failover between Resend and the SMTP sink (`EMAIL_PROVIDERS=resend,smtp`).

- provider-failover: Resend answers 503 for a while (60 s; quick 8 s) with SMTP healthy. Every
  email must be sent while it lasts, by SMTP after at most FAILOVER_AFTER_ATTEMPTS calls to
  Resend (none once Resend's circuit is open), and none twice.
- provider-auth: Resend answers 401 (a revoked key). Each email fails over at once: at most one
  Resend call, none once the rejected key opened Resend's circuit.
- ambiguous-timeout: Resend takes each email, then answers after the worker's provider timeout.
  With FAILOVER_AFTER_ATTEMPTS=1 a plain failure would move on at once; an ambiguous one must not:
  the retry goes to Resend under the same Idempotency-Key, which answers with the first email.
  SMTP sends nothing; every email arrives once.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from chaos.harness import Harness, harness
from chaos.load import Caller, Enqueue, Ledger, at_rate
from chaos.options import ChaosOptions
from chaos.scenarios.common import measure, timeline
from fakes.resend import Step


def _failover_after() -> int:
    """The worker's default FAILOVER_AFTER_ATTEMPTS (the scenarios that rely on it do not set it)."""
    from notifications.config import Settings

    return int(Settings.model_fields["failover_after_attempts"].default)


async def provider_failover(opts: ChaosOptions, base: Path) -> dict[str, Any]:
    async with harness("provider-failover", base) as h:
        await h.start_worker(**h.failover_env())
        h.resend.outage = 503
        started = time.time()
        # emails keep coming for as long as the outage lasts
        count = max(1, int(opts.fault_rate * opts.failover_outage_s))
        out, entries, client = await _burst(h, opts, "pf", fault_end=started + opts.failover_outage_s, count=count)
        h.resend.outage = None
        ended = time.time()
        out.update(await _routes(client, entries))
        out.update(
            label=f"Resend 503 for {opts.failover_outage_s:g} s",
            timeline=timeline(outage_started=started, outage_ended=ended),
            sent_during_outage=out["recovery_s"] == 0.0,
        )
        return {"runs": [out]}


async def provider_auth(opts: ChaosOptions, base: Path) -> dict[str, Any]:
    async with harness("provider-auth", base) as h:
        await h.start_worker(**h.failover_env())
        h.resend.refuse_key = True
        started = time.time()
        out, entries, client = await _burst(h, opts, "pa", fault_end=started)
        out.update(await _routes(client, entries))
        out.update(label="Resend 401 throughout", timeline=timeline(refusing_since=started))
        return {"runs": [out]}


async def ambiguous_timeout(opts: ChaosOptions, base: Path) -> dict[str, Any]:
    async with harness("ambiguous-timeout", base) as h:
        # The breaker stays closed: an email whose first call found Resend's circuit open would go to
        # SMTP, rightly (Resend never had it), and this scenario is about the calls Resend did take.
        await h.start_worker(
            **h.failover_env(),
            FAILOVER_AFTER_ATTEMPTS="1",
            PROVIDER_TIMEOUT_SECONDS="1",
            CIRCUIT_FAILURE_THRESHOLD="1000",
        )
        ledger = Ledger("at")
        entries = [ledger.plan("email") for _ in range(opts.failover_burst)]
        for e in entries:  # Resend sends it, and answers after the worker gave up on the call
            h.resend.script(e.recipient, Step(delay=2.0))
        started = time.time()
        out, entries, client = await _burst(h, opts, "at", fault_end=started, planned=entries)
        out.update(await _routes(client, entries))
        out.update(label="Resend answers after the timeout", timeline=timeline(slow_since=started))
        return {"runs": [out]}


async def _burst(
    h: Harness, opts: ChaosOptions, tag: str, *, fault_end: float, planned: list[Enqueue] | None = None, count: int = 0
) -> tuple[dict[str, Any], list[Enqueue], Any]:
    """Enqueue the planned emails (or `count` new ones) at the fault rate, then measure them."""
    client = await h.client()
    caller = Caller(client, timeout=opts.enqueue_timeout_s)
    ledger = Ledger(tag)
    try:
        if planned is not None:
            await at_rate(caller, iter(planned), rate=opts.fault_rate, count=len(planned))
        else:
            await at_rate(caller, ledger.mix(("email",)), rate=opts.fault_rate, count=count or opts.failover_burst)
        entries = planned if planned is not None else ledger.entries
        out = await measure(h, client, entries, opts, fault_end={"email": fault_end})
    finally:
        await caller.aclose()
    return out, entries, client


async def _routes(client: Any, entries: list[Enqueue]) -> dict[str, Any]:
    """Which provider sent each email, and how many of its attempts went to Resend (a circuit found
    open there counts, though it made no call)."""
    from sqlalchemy import select

    from notifications.sql.models import DeliveryAttempt, Notification

    ids = [e.id for e in entries if e.accepted and e.id]
    async with client.db.sessions() as session:
        rows = (
            await session.execute(select(Notification.id, Notification.provider).where(Notification.id.in_(ids)))
        ).all()
        log = (
            await session.execute(
                select(DeliveryAttempt.notification_id, DeliveryAttempt.provider, DeliveryAttempt.error_code)
                .where(DeliveryAttempt.notification_id.in_(ids))
                .order_by(DeliveryAttempt.notification_id, DeliveryAttempt.attempt)
            )
        ).all()
    calls: dict[str, list[str]] = defaultdict(list)
    for nid, provider, _ in log:
        calls[nid].append(provider or "?")
    resend_calls = [calls[nid].count("resend") for nid in ids]
    codes = Counter(code for _, provider, code in log if provider == "resend" and code)
    return {
        "sent_by": dict(Counter(provider or "none" for _, provider in rows)),
        "resend_attempts_per_email": dict(Counter(str(n) for n in resend_calls)),
        "max_resend_attempts": max(resend_calls, default=0),
        "resend_error_codes": dict(codes),
        "failover_after_attempts": _failover_after(),
    }
