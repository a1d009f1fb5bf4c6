"""A campaign's recipients follow the rules of single notifications: preferences, the suppression
list, quiet hours (deferred alone, not holding the batch) and retries of a transient failure."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from activities.providers import Providers
from notifications.suppressions import NewSuppression, add
from tests.integration.campaigns.test_campaign_flow import campaign, completed
from tests.support.scripted import ScriptedProvider, unavailable
from tests.support.system import System


def _quiet_now() -> dict[str, str]:
    now = datetime.now(UTC)
    return {"start": (now - timedelta(hours=1)).strftime("%H:%M"), "end": (now + timedelta(hours=1)).strftime("%H:%M")}


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_opted_out_suppressed_quiet_and_transient_recipients(system: System) -> None:
    tag = uuid.uuid4().hex[:6]
    users = [f"{tag}-u{i}" for i in range(40)]
    people = [{"to": f"{u}@example.com", "userId": u, "name": u} for u in users]
    await system.client.set_preferences(users[1], {"channels": {"email": False}})  # opted out of email
    await system.client.set_preferences(users[2], {"quietHours": _quiet_now()})  # asleep now: later
    await add(system.db, None, NewSuppression(channel="email", address=people[3]["to"], reason="hard_bounce"), "t")
    provider = ScriptedProvider()
    cid = f"rules-{tag}"
    provider.fail(f"{cid}-5", unavailable())  # one recipient's send fails once, transiently
    async with system.worker(Providers(email=provider, push=provider), campaign_batch_size=20):
        await system.client.create_campaign(campaign(campaignId=cid, recipients=people))
        record = await completed(system, cid)
        assert record["total"] == 40 and record["suppressed"] == 2
        opted, bounced = await system.client.get(f"{cid}-2"), await system.client.get(f"{cid}-4")
        assert opted.status == "suppressed" and opted.error_code == "USER_OPTED_OUT"
        assert bounced.status == "suppressed" and bounced.error_code == "RECIPIENT_SUPPRESSED"
        # the quiet one waits in its own workflow; the others of its batch went on
        quiet = await system.client.get(f"{cid}-3")
        assert quiet.workflow_id == f"notification-{cid}-3"
        live = await system.client.status(f"{cid}-3")
        assert live["status"] == "scheduled" and live["deferredReason"] == "QUIET_HOURS"
        assert provider.calls_for(f"{cid}-3") == []
        # the transient failure is retried on its own, with the backoff, and sent
        row = await system.wait_status(f"{cid}-5", "sent", timeout=30)
    assert row.workflow_id == f"notification-{cid}-5"
    log = await system.client.delivery_log(f"{cid}-5")
    assert [a.outcome for a in log] == ["transient_error", "sent"]
    assert provider.delivered[f"{cid}-5"] == 1
    sent = [u for u in range(40) if provider.delivered.get(f"{cid}-{u + 1}")]
    assert len(sent) == 37 and not {1, 2, 3} & set(sent)


class _Broken:
    """A provider whose batch call raises something no classification knows."""

    name = "broken"
    max_batch = 50
    calls = 0

    async def send_email_batch(self, messages: list[Any], *, idempotency_key: str) -> list[Any]:
        _Broken.calls += 1
        raise RuntimeError("a library bug")


async def test_an_unclassified_provider_error_is_retried_then_fails_its_recipients(
    system_with: Callable[..., Any],
) -> None:
    async with system_with(max_retries=2) as system, system.worker(Providers(email=_Broken(), push=_Broken())):
        created = await system.client.create_campaign(campaign(recipients=[{"to": "x@example.com", "name": "X"}]))
        record = await completed(system, created["campaignId"])
        row = await system.client.get(f"{created['campaignId']}-1")
    assert record["failed"] == 1 and record["sent"] == 0
    assert row.status == "failed" and row.error_code == "SEND_FAILED" and _Broken.calls == 2
