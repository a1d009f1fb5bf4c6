"""Batch sends through each provider's native batch call, with the real SDKs against the fakes.

No Temporal server here: `activities.providers.batch` is called as a campaign calls it, and what
the fake provider recorded (or the outbox table holds) is what a recipient would have got.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from activities.providers import with_circuit_breaker
from activities.providers.base import EmailMessage, PushMessage
from activities.providers.batch import DEFAULT_BATCH, batch_limit, send_email_batch, send_push_batch
from activities.providers.fcm import FcmProvider
from activities.providers.outbox import OutboxProvider
from activities.providers.resend import ResendProvider
from activities.providers.smtp import SmtpProvider
from fakes.fcm import FakeFCM
from fakes.fcm import error as fcm_error
from fakes.resend import API_KEY, FakeResend, Step, error
from fakes.smtp import DROP, SmtpSink
from notifications.config import Settings
from notifications.devices import list_devices, mark_invalid, register_device
from notifications.errors import DeliveryError, ErrorCode
from notifications.sql.engine import Database
from notifications.sql.models import OutboxMessage
from tests.support.scripted import ScriptedProvider, invalid_recipient, unavailable
from tests.support.system import free_port

SENDER = "Uzima <noreply@uzima.health>"


def uid(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}"


def emails(count: int, label: str = "b") -> list[EmailMessage]:
    run = uuid.uuid4().hex[:6]
    return [
        EmailMessage(
            notification_id=f"{label}-{run}-{i:03d}",
            to=f"{label}{i:03d}-{run}@example.com",
            subject="Your results are ready",
            html="<p>Hello</p>",
            text="Hello",
            sender=SENDER,
        )
        for i in range(count)
    ]


def pushes(tokens: list[str]) -> list[PushMessage]:
    return [PushMessage(uid("p"), None, t, "Hello", "Your results", {"screen": "results"}) for t in tokens]


@pytest.fixture
async def fake() -> AsyncIterator[FakeResend]:
    async with FakeResend() as server:
        yield server


@pytest.fixture
async def resend_provider(fake: FakeResend, tmp_path: Path) -> AsyncIterator[ResendProvider]:
    settings = Settings(
        data_dir=tmp_path,
        email_provider="resend",
        resend_api_key=API_KEY,
        resend_api_url=fake.url,
        mail_from=SENDER,
        provider_timeout_seconds=1,
    )
    provider = ResendProvider(settings)
    yield provider
    await provider.aclose()


# -- Resend: /emails/batch, permissive -----------------------------------------------------------
async def test_resend_batch_of_100_sends_each_email_once(fake: FakeResend, resend_provider: ResendProvider) -> None:
    batch = emails(100)
    key = uid("batch")
    assert batch_limit(resend_provider) == 100

    outcomes = await send_email_batch(resend_provider, batch, idempotency_key=key)

    assert [o.notification_id for o in outcomes] == [m.notification_id for m in batch]
    assert all(o.error is None and o.result is not None for o in outcomes)
    ids = [o.result.provider_message_id for o in outcomes if o.result]
    assert len(set(ids)) == 100 and all(o.result and o.result.provider == "resend" for o in outcomes)
    assert fake.batch_calls == 1 and len(fake.requests) == 1
    [request] = fake.requests
    assert request.path == "/emails/batch"
    assert request.headers["idempotency-key"] == key
    assert request.headers["x-batch-validation"] == "permissive"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    # each ID is the email to that recipient, as sent
    for message, email_id in zip(batch, ids, strict=True):
        assert fake.emails[str(email_id)] == {
            "from": SENDER,
            "to": [message.to],
            "subject": "Your results are ready",
            "html": "<p>Hello</p>",
            "text": "Hello",
        }


async def test_resend_permissive_batch_refuses_only_the_bad_emails(
    fake: FakeResend, resend_provider: ResendProvider
) -> None:
    batch = emails(100)
    bad_to, bad_subject = batch[17], batch[60]
    fake.script(bad_to.to, error(422, "validation_error", f"Invalid `to` field: {bad_to.to}"))
    fake.script(bad_subject.to, error(422, "validation_error", "The `subject` field must be a string."))

    outcomes = await send_email_batch(resend_provider, batch, idempotency_key=uid("batch"))

    by_id = {o.notification_id: o for o in outcomes}
    refused = by_id[bad_to.notification_id].error
    assert refused is not None and refused.code is ErrorCode.INVALID_RECIPIENT and not refused.retryable
    assert bad_to.to not in refused.message  # the address is masked in what gets stored and logged
    other = by_id[bad_subject.notification_id].error
    assert other is not None and other.code is ErrorCode.VALIDATION_ERROR and not other.retryable
    sent = [o for o in outcomes if o.result is not None]
    assert len(sent) == 98 and len({o.result.provider_message_id for o in sent if o.result}) == 98
    assert fake.emails_to(bad_to.to) == [] and fake.emails_to(bad_subject.to) == []
    assert all(len(fake.emails_to(m.to)) == 1 for m in batch if m not in (bad_to, bad_subject))
    # the IDs line up with the recipients although Resend lists only the accepted ones
    for message in batch:
        result = by_id[message.notification_id].result
        if result is not None:
            assert fake.emails[str(result.provider_message_id)]["to"] == [message.to]


async def test_resend_repeated_batch_sends_nothing_twice(fake: FakeResend, resend_provider: ResendProvider) -> None:
    batch = emails(100)
    fake.script(batch[3].to, error(422, "validation_error", "Invalid `to` field."))
    key = uid("batch")

    first = await send_email_batch(resend_provider, batch, idempotency_key=key)
    again = await send_email_batch(resend_provider, batch, idempotency_key=key)

    assert [(o.result, o.error and o.error.code) for o in again] == [
        (o.result, o.error and o.error.code) for o in first
    ]
    assert fake.batch_calls == 2
    assert len(fake.emails) == 99
    assert Counter(e["to"][0] for e in fake.emails.values()) == Counter(m.to for m in batch if m is not batch[3])

    # the same key with other emails is refused whole: a caller bug, never a second send
    with pytest.raises(DeliveryError) as refused:
        await send_email_batch(resend_provider, batch[:50], idempotency_key=key)
    assert refused.value.code is ErrorCode.IDEMPOTENCY_CONFLICT and len(fake.emails) == 99


async def test_resend_whole_batch_failure_is_raised_and_retried_as_one(
    fake: FakeResend, resend_provider: ResendProvider
) -> None:
    batch = emails(20)
    key = uid("batch")
    fake.script_batch(error(503, "application_error", "down for a moment"))

    with pytest.raises(DeliveryError) as failed:
        await send_email_batch(resend_provider, batch, idempotency_key=key)
    assert failed.value.code is ErrorCode.PROVIDER_UNAVAILABLE and failed.value.retryable
    assert fake.emails == {}

    outcomes = await send_email_batch(resend_provider, batch, idempotency_key=key)
    assert all(o.result is not None for o in outcomes) and len(fake.emails) == 20

    # a rate limit and a refused key are whole-call failures too
    fake.script_batch(error(429, "rate_limit_exceeded", "Too many requests", retry_after="2"))
    with pytest.raises(DeliveryError) as limited:
        await send_email_batch(resend_provider, emails(3), idempotency_key=uid("batch"))
    assert limited.value.code is ErrorCode.RATE_LIMITED and limited.value.retry_after == 2
    fake.api_key = "re_other"
    with pytest.raises(DeliveryError) as refused:
        await send_email_batch(resend_provider, emails(3), idempotency_key=uid("batch"))
    assert refused.value.code is ErrorCode.AUTH_ERROR and not refused.value.retryable
    assert len(fake.emails) == 20


async def test_resend_batch_timeout_is_a_whole_call_failure(fake: FakeResend, resend_provider: ResendProvider) -> None:
    fake.script_batch(Step(hang=3))
    with pytest.raises(DeliveryError) as failed:
        await send_email_batch(resend_provider, emails(5), idempotency_key=uid("batch"))
    assert failed.value.code is ErrorCode.TIMEOUT and failed.value.retryable


async def test_more_than_the_limit_is_refused_before_any_call(
    fake: FakeResend, resend_provider: ResendProvider
) -> None:
    with pytest.raises(ValueError, match="at most 100"):
        await send_email_batch(resend_provider, emails(101), idempotency_key=uid("batch"))
    twice = emails(2)
    with pytest.raises(ValueError, match="twice"):
        await send_email_batch(resend_provider, [twice[0], twice[1], twice[0]], idempotency_key=uid("batch"))
    assert fake.requests == []
    assert await send_email_batch(resend_provider, [], idempotency_key=uid("batch")) == []
    # Resend itself refuses a batch over 100 (what the limit protects from)
    with pytest.raises(DeliveryError) as refused:
        await resend_provider.send_email_batch(emails(101), idempotency_key=uid("batch"))
    assert refused.value.code is ErrorCode.VALIDATION_ERROR and fake.emails == {}


# -- Outbox: one insert ---------------------------------------------------------------------------
@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_outbox_batch_is_one_idempotent_insert(db: Database) -> None:
    outbox = OutboxProvider(db, latency_ms=300)
    assert batch_limit(outbox) == 500
    batch = emails(500, "ob")
    await outbox.send_email(batch[0], idempotency_key=batch[0].notification_id)  # sent alone before

    started = time.monotonic()
    outcomes = await send_email_batch(outbox, batch, idempotency_key=uid("batch"))
    elapsed = time.monotonic() - started
    again = await send_email_batch(outbox, batch, idempotency_key=uid("batch"))

    assert 0.3 <= elapsed < 2  # the latency once per call, not once per message
    expected = [f"outbox-{m.notification_id}" for m in batch]
    assert [o.result.provider_message_id for o in outcomes if o.result] == expected
    assert [o.result.provider_message_id for o in again if o.result] == expected
    async with db.sessions() as session:
        rows = list(await session.scalars(select(OutboxMessage).where(OutboxMessage.notification_id.like("ob-%"))))
    assert len(rows) == 500
    assert Counter(r.notification_id for r in rows) == Counter(m.notification_id for m in batch)
    row = next(r for r in rows if r.notification_id == batch[7].notification_id)
    assert (row.channel, row.recipient, row.subject) == ("email", batch[7].to, "Your results are ready")
    assert row.provider_message_id == expected[7] and row.body["text"] == "Hello"

    push_batch = pushes(["tok-1", "tok-2"])
    first = await send_push_batch(outbox, push_batch, idempotency_key=uid("batch"))
    assert await send_push_batch(outbox, push_batch, idempotency_key=uid("batch")) == first
    async with db.sessions() as session:
        recorded = list(await session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "push")))
    assert sorted(r.recipient or "" for r in recorded) == ["tok-1", "tok-2"]


# -- SMTP: one connection -------------------------------------------------------------------------
@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink().start(free_port())
    yield server
    server.stop()


def smtp_provider(tmp_path: Path, port: int) -> SmtpProvider:
    return SmtpProvider(
        Settings(
            data_dir=tmp_path,
            email_provider="smtp",
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="none",
            mail_from="noreply@uzima.health",
            provider_timeout_seconds=2,
        )
    )


async def test_smtp_batch_uses_one_connection_and_fails_only_the_refused(sink: SmtpSink, tmp_path: Path) -> None:
    provider = smtp_provider(tmp_path, sink.port)
    batch = emails(8, "smtp")
    sink.script(batch[2].to, f"550 5.1.1 <{batch[2].to}>: Recipient address rejected")
    sink.script(batch[5].to, "451 4.3.0 Try again later")
    assert batch_limit(provider) == 50

    outcomes = await send_email_batch(provider, batch, idempotency_key=uid("batch"))

    assert sink.connections == 1 and len(set(sink.peers)) == 1
    assert [o.error.code if o.error else None for o in outcomes] == [
        None,
        None,
        ErrorCode.INVALID_RECIPIENT,
        None,
        None,
        ErrorCode.PROVIDER_UNAVAILABLE,
        None,
        None,
    ]
    assert batch[2].to not in str(outcomes[2].error)
    delivered = [e[1][0] for e in sink.envelopes]
    assert delivered == [m.to for i, m in enumerate(batch) if i not in (2, 5)]
    assert [o.result.provider_message_id for o in outcomes if o.result] == [
        f"<{m.notification_id}@uzima.health>" for i, m in enumerate(batch) if i not in (2, 5)
    ]
    assert [str(m["Message-ID"]) for m in sink.messages] == [
        f"<{m.notification_id}@uzima.health>" for i, m in enumerate(batch) if i not in (2, 5)
    ]


async def test_smtp_connection_lost_midway_fails_the_rest(sink: SmtpSink, tmp_path: Path) -> None:
    provider = smtp_provider(tmp_path, sink.port)
    batch = emails(6, "drop")
    sink.script(batch[3].to, DROP)

    outcomes = await send_email_batch(provider, batch, idempotency_key=uid("batch"))

    assert [o.result is not None for o in outcomes] == [True, True, True, False, False, False]
    assert all(o.error and o.error.code is ErrorCode.CONNECTION_ERROR and o.error.retryable for o in outcomes[3:])
    assert [e[1][0] for e in sink.envelopes] == [m.to for m in batch[:3]]

    # lost before anything went out: the whole call failed
    sink.script(batch[0].to, DROP)
    with pytest.raises(DeliveryError) as failed:
        await send_email_batch(provider, batch[:2], idempotency_key=uid("batch"))
    assert failed.value.code is ErrorCode.CONNECTION_ERROR
    assert len(sink.envelopes) == 3


async def test_smtp_relay_unreachable_is_a_whole_call_failure(tmp_path: Path) -> None:
    provider = smtp_provider(tmp_path, free_port())
    with pytest.raises(DeliveryError) as failed:
        await send_email_batch(provider, emails(3), idempotency_key=uid("batch"))
    assert failed.value.code is ErrorCode.CONNECTION_ERROR and failed.value.retryable


# -- FCM: send_each ---------------------------------------------------------------------------------
@pytest.fixture
async def fcm() -> AsyncIterator[FakeFCM]:
    async with FakeFCM() as server:
        yield server


async def test_fcm_batch_in_one_send_each_with_a_dead_token(fcm: FakeFCM, db: Database, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        push_provider="fcm",
        fcm_api_url=fcm.url,
        fcm_project_id="uzima-test",
        provider_timeout_seconds=1,
    )
    provider = FcmProvider(settings, db)
    tokens = [uid("tok") for _ in range(30)]
    dead, gone_before = tokens[4], tokens[9]
    fcm.unregistered.add(dead)
    await register_device(db, "owner-1", dead)
    await register_device(db, "owner-2", gone_before)
    await mark_invalid(db, [gone_before], "UNREGISTERED")  # pruned by an earlier send
    user = uid("user")
    await register_device(db, user, "user-device-1")
    by_user = PushMessage(uid("u"), user, None, "Hello", "For the user")
    batch = [*pushes(tokens), by_user]
    assert batch_limit(provider) == 500

    outcomes = await send_push_batch(provider, batch, idempotency_key=uid("batch"))

    codes = {o.notification_id: (o.error.code if o.error else None) for o in outcomes}
    assert [o.notification_id for o in outcomes] == [m.notification_id for m in batch]
    assert codes[batch[4].notification_id] is ErrorCode.UNREGISTERED
    assert codes[batch[9].notification_id] is ErrorCode.UNREGISTERED
    assert sum(1 for c in codes.values() if c is None) == 29
    assert len(fcm.requests_for(dead)) == 1 and fcm.requests_for(gone_before) == []  # known dead: no call
    assert all(len(fcm.requests_for(t)) == 1 for t in tokens if t not in (dead, gone_before))
    assert len(fcm.requests_for("user-device-1")) == 1
    sent = fcm.requests_for(tokens[0])[0].json()["message"]
    assert sent["data"] == {"screen": "results", "notificationId": batch[0].notification_id}
    assert sent["android"]["notification"]["tag"] == batch[0].notification_id
    first = outcomes[0].result
    assert first is not None and first.provider == "fcm" and first.provider_message_id
    assert tokens[0] not in str(first.details)  # masked
    [device] = await list_devices(db, "owner-1")
    assert device.valid is False and device.invalid_reason == "UNREGISTERED"

    # FCM down for every push of a batch: nothing was sent, the batch fails as one
    down = [uid("tok") for _ in range(3)]
    for t in down:
        fcm.script(t, fcm_error(503, "UNAVAILABLE", "The service is currently unavailable.", retry_after="1"))
    with pytest.raises(DeliveryError) as failed:
        await send_push_batch(provider, pushes(down), idempotency_key=uid("batch"))
    assert failed.value.code is ErrorCode.PROVIDER_UNAVAILABLE and failed.value.retry_after == 1


# -- the circuit breaker and the fallback -----------------------------------------------------------
async def test_breaker_counts_whole_batch_failures_not_refused_emails(
    fake: FakeResend, resend_provider: ResendProvider, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, circuit_failure_threshold=2, circuit_cooldown_seconds=30)
    breaker = with_circuit_breaker(resend_provider, "email", settings, None)
    assert batch_limit(breaker) == 100

    # refused emails inside a batch that went through: the provider is up
    batch = emails(10)
    for message in batch[:5]:
        fake.script(message.to, error(422, "validation_error", "Invalid `to` field."))
    outcomes = await send_email_batch(breaker, batch, idempotency_key=uid("batch"))
    assert sum(1 for o in outcomes if o.error) == 5
    assert breaker.current_state() == "closed" and breaker.consecutive_failures == 0

    fake.outage = 503
    for _ in range(2):
        with pytest.raises(DeliveryError) as failed:
            await send_email_batch(breaker, emails(10), idempotency_key=uid("batch"))
        assert failed.value.code is ErrorCode.PROVIDER_UNAVAILABLE
    assert breaker.current_state() == "open" and fake.batch_calls == 3

    with pytest.raises(DeliveryError) as fast:
        await send_email_batch(breaker, emails(10), idempotency_key=uid("batch"))
    assert fast.value.code is ErrorCode.CIRCUIT_OPEN and fast.value.retry_after
    assert fake.batch_calls == 3  # never reached Resend


async def test_a_provider_without_batch_call_gets_concurrent_single_sends(tmp_path: Path) -> None:
    scripted = ScriptedProvider()
    assert batch_limit(scripted) == DEFAULT_BATCH
    batch = emails(5, "single")
    scripted.fail(batch[1].notification_id, invalid_recipient())
    scripted.fail(batch[3].notification_id, unavailable())

    outcomes = await send_email_batch(scripted, batch, idempotency_key=uid("batch"))

    assert [o.error.code if o.error else None for o in outcomes] == [
        None,
        ErrorCode.INVALID_RECIPIENT,
        None,
        ErrorCode.PROVIDER_UNAVAILABLE,
        None,
    ]
    assert sorted(c.key for c in scripted.calls) == sorted(m.notification_id for m in batch)  # keyed by notification
    assert outcomes[0].result and outcomes[0].result.provider_message_id == f"scripted-{batch[0].notification_id}"

    # nothing went out and nothing was refused for itself: the whole call failed
    scripted.always_fail = unavailable()
    with pytest.raises(DeliveryError) as failed:
        await send_push_batch(scripted, pushes(["t1", "t2"]), idempotency_key=uid("batch"))
    assert failed.value.code is ErrorCode.PROVIDER_UNAVAILABLE

    # behind a breaker that is open, too
    settings = Settings(data_dir=tmp_path, circuit_failure_threshold=1, circuit_cooldown_seconds=30)
    breaker = with_circuit_breaker(scripted, "email", settings, None)
    with pytest.raises(DeliveryError):
        await send_email_batch(breaker, emails(2), idempotency_key=uid("batch"))
    calls = len(scripted.calls)
    with pytest.raises(DeliveryError) as fast:
        await send_email_batch(breaker, emails(2), idempotency_key=uid("batch"))
    assert fast.value.code is ErrorCode.CIRCUIT_OPEN and len(scripted.calls) == calls
