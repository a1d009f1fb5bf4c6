"""Provider failover end to end: Resend (the real SDK against its fake) first, the SMTP sink second."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from fakes.resend import API_KEY, FakeResend, Step, error
from fakes.smtp import SmtpSink
from notifications.config import Settings
from notifications.types import STATUS_QUERY
from tests.support.outcomes import gap_seconds, outcomes
from tests.support.system import System, free_port, make_settings


@pytest.fixture
async def fake() -> AsyncIterator[FakeResend]:
    async with FakeResend() as server:
        yield server


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink().start(free_port())
    yield server
    server.stop()


@pytest.fixture
def settings(temporal_address: str, database_url: str, tmp_path: Path, fake: FakeResend, sink: SmtpSink) -> Settings:
    return make_settings(
        temporal_address,
        database_url,
        tmp_path,
        email_providers="resend,smtp",
        resend_api_key=API_KEY,
        resend_api_url=fake.url,
        smtp_host="127.0.0.1",
        smtp_port=sink.port,
        smtp_security="none",
        mail_from="noreply@uzima.health",
        provider_timeout_seconds=0.5,
        max_retries=5,
        circuit_failure_threshold=1000,
    )


async def enqueue(system: System, to: str, label: str) -> str:
    record = await system.client.enqueue_email(
        {"notificationId": f"{label}-{uuid.uuid4().hex[:10]}", "to": to, "subject": "Hello", "text": "Hi there"}
    )
    return record.notification_id


async def status(system: System, nid: str) -> dict[str, Any]:
    handle = system.temporal.get_workflow_handle(f"notification-{nid}")
    result: dict[str, Any] = await handle.query(STATUS_QUERY)
    return result


def delivered_by_smtp(sink: SmtpSink, to: str) -> int:
    return sum(1 for _, rcpts in sink.envelopes if to in rcpts)


async def test_an_outage_fails_over_after_two_attempts_and_sends_once(
    system: System, fake: FakeResend, sink: SmtpSink
) -> None:
    fake.outage = 503
    async with system.worker():
        n = await enqueue(system, "amina@example.com", "outage")
        result = (await outcomes(system, [n]))[n]
        shown = await status(system, n)

    assert result.row.status == "sent" and result.row.provider == "smtp"
    assert [(a.provider, a.error_code) for a in result.attempts] == [
        ("resend", "PROVIDER_UNAVAILABLE"),
        ("resend", "PROVIDER_UNAVAILABLE"),
        ("smtp", None),
    ]
    assert result.attempts[1].details["route"] == {
        "current": "smtp",
        "streak": 0,
        "pinned": False,
        "order": ["resend", "smtp"],
    }
    assert gap_seconds(result.attempts[1], result.attempts[2]) < 1.0  # the next provider at once
    assert delivered_by_smtp(sink, "amina@example.com") == 1 and not fake.emails
    assert shown["providerOrder"] == ["resend", "smtp"] and shown["currentProvider"] == "smtp"
    assert shown["provider"] == "smtp"


async def test_failover_after_attempts_sets_the_threshold(system: System, fake: FakeResend, sink: SmtpSink) -> None:
    fake.outage = 500
    async with system.worker(failover_after_attempts=3):
        n = await enqueue(system, "baraka@example.com", "three")
        result = (await outcomes(system, [n]))[n]
    assert [a.provider for a in result.attempts] == ["resend", "resend", "resend", "smtp"]
    assert result.row.status == "sent" and delivered_by_smtp(sink, "baraka@example.com") == 1


async def test_a_rejected_key_fails_over_at_once_and_later_sends_skip_the_provider(
    system: System, fake: FakeResend, sink: SmtpSink
) -> None:
    fake.api_key = "re_another_key"  # ours is refused: 403 invalid_api_key
    async with system.worker():
        first = await enqueue(system, "chausiku@example.com", "auth")
        done = (await outcomes(system, [first]))[first]
        second = await enqueue(system, "daudi@example.com", "auth2")
        later = (await outcomes(system, [second]))[second]

    assert [(a.provider, a.error_code) for a in done.attempts] == [("resend", "AUTH_ERROR"), ("smtp", None)]
    assert gap_seconds(done.attempts[0], done.attempts[1]) < 1.0
    # the rejected key opened resend's circuit: the next notification goes straight to smtp
    assert [(a.provider, a.error_code) for a in later.attempts] == [("smtp", None)]
    assert len(fake.requests) == 1
    assert delivered_by_smtp(sink, "chausiku@example.com") == 1 and delivered_by_smtp(sink, "daudi@example.com") == 1


async def test_an_ambiguous_timeout_retries_the_same_provider_with_the_same_key(
    system: System, fake: FakeResend, sink: SmtpSink
) -> None:
    to = "eshe@example.com"
    fake.script(to, Step(delay=1.5))  # Resend sends it, its answer comes after our 0.5 s timeout
    async with system.worker(failover_after_attempts=1):
        n = await enqueue(system, to, "ambiguous")
        result = (await outcomes(system, [n]))[n]

    assert [(a.provider, a.error_code) for a in result.attempts] == [("resend", "TIMEOUT"), ("resend", None)]
    assert result.attempts[0].details["route"]["pinned"] is True
    keys = [r.headers["idempotency-key"] for r in fake.requests_to(to)]
    assert keys == [n, n]
    assert len(fake.emails_to(to)) == 1 and delivered_by_smtp(sink, to) == 0  # delivered once


async def test_failover_on_timeout_moves_on_after_an_ambiguous_outcome(
    system: System, fake: FakeResend, sink: SmtpSink
) -> None:
    to = "faraji@example.com"
    fake.script(to, Step(delay=1.5))
    async with system.worker(failover_after_attempts=1, failover_on_timeout=True):
        n = await enqueue(system, to, "ontimeout")
        result = (await outcomes(system, [n]))[n]
    assert [(a.provider, a.error_code) for a in result.attempts] == [("resend", "TIMEOUT"), ("smtp", None)]
    # the operator's choice: Resend had sent it too
    assert len(fake.emails_to(to)) == 1 and delivered_by_smtp(sink, to) == 1


async def test_a_recipient_error_never_fails_over(system: System, fake: FakeResend, sink: SmtpSink) -> None:
    to = "not-an-inbox@example.com"
    fake.script(to, error(422, "validation_error", "Invalid `to` field."))
    async with system.worker(failover_after_attempts=1):
        n = await enqueue(system, to, "recipient")
        result = (await outcomes(system, [n]))[n]
    assert result.row.status == "failed" and result.row.error_code == "INVALID_RECIPIENT"
    assert [a.provider for a in result.attempts] == ["resend"] and not sink.envelopes


async def test_an_open_circuit_sends_new_notifications_to_the_next_provider(
    system: System, fake: FakeResend, sink: SmtpSink
) -> None:
    fake.outage = 503
    async with system.worker(circuit_failure_threshold=2, failover_after_attempts=5):
        first = await enqueue(system, "gathoni@example.com", "opens")
        opened = (await outcomes(system, [first]))[first]
        second = await enqueue(system, "hamisi@example.com", "skips")
        skipped = (await outcomes(system, [second]))[second]
    # two failures open resend's circuit; the third attempt finds it open and takes smtp
    assert [a.provider for a in opened.attempts] == ["resend", "resend", "smtp"]
    assert [(a.provider, a.error_code) for a in skipped.attempts] == [("smtp", None)]
    assert len(fake.requests) == 2
