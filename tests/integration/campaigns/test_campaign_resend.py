"""A campaign through the real Resend SDK against the fake batch API: 100 emails a call, one
Idempotency-Key per call; some recipients refused, one call failing once and repeated whole."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest

from activities.providers import OutboxProvider, Providers
from activities.providers.resend import ResendProvider
from fakes.resend import API_KEY, FakeResend, error
from tests.integration.campaigns.test_campaign_flow import campaign, completed, recipients
from tests.support.system import System


@pytest.fixture
async def fake() -> AsyncIterator[FakeResend]:
    async with FakeResend() as server:
        yield server


@pytest.fixture
async def resend(system: System, fake: FakeResend) -> AsyncIterator[ResendProvider]:
    from pydantic import SecretStr

    update = {"email_provider": "resend", "resend_api_key": SecretStr(API_KEY), "resend_api_url": fake.url}
    update["provider_timeout_seconds"] = 15  # a loaded machine must not turn a slow answer into a retry
    provider = ResendProvider(system.settings.model_copy(update={**update, "mail_from": "news@example.com"}))
    yield provider
    await provider.aclose()


async def test_a_campaign_through_resend_batches(system: System, fake: FakeResend, resend: ResendProvider) -> None:
    people = recipients(2000, "mail.example.org")
    refused = [p["to"] for p in people[5::400]]
    for address in refused:
        fake.script(address, *[error(422, "validation_error", "Invalid `to` field.")] * 3)
    fake.script_batch(error(503, "application_error", "down for a moment"))
    async with system.worker(Providers(email=resend, push=OutboxProvider(system.db)), campaign_batch_size=500):
        created = await system.client.create_campaign(campaign(recipients=people))
        cid = created["campaignId"]
        record = await completed(system, cid)
    assert record["total"] == 2000 and record["sent"] == 1995 and record["failed"] == 5 and record["queued"] == 0
    # 20 calls of 100, and the one that failed once repeated under its key (the fake refuses a key
    # repeated with other emails: each repeat carried the same recipients)
    keys = Counter(r.headers["idempotency-key"] for r in fake.requests)
    assert len(keys) == 20 and max(keys.values()) >= 2 and fake.batch_calls == sum(keys.values())
    delivered = Counter(e["to"][0] for e in fake.emails.values())
    assert set(delivered.values()) == {1} and len(delivered) == 1995
    assert not set(refused) & set(delivered)
    bad = await system.client.get(f"{cid}-6")
    assert bad.status == "failed" and bad.error_code == "INVALID_RECIPIENT" and bad.campaign_id == cid
    assert [a.outcome for a in await system.client.delivery_log(f"{cid}-6")] == ["permanent_error"]
    sent = await system.client.get(f"{cid}-1")
    assert sent.status == "sent" and sent.provider == "resend" and sent.message_id in fake.emails

    # a failed recipient is retried from the dead letters like any notification (Resend takes it now)
    fake.scripts[refused[0]].clear()
    async with system.worker(Providers(email=resend, push=OutboxProvider(system.db))):
        retried = await system.client.retry(f"{cid}-6")
        assert retried.status in ("queued", "retrying", "sent")
        await system.wait_status(f"{cid}-6", "sent", timeout=20)
    assert len(fake.emails_to(refused[0])) == 1
