"""Email through the real Resend SDK against a fake Resend API, end to end through the workflow."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from activities.providers import Providers, with_circuit_breaker
from activities.providers.outbox import OutboxProvider
from activities.providers.resend import ResendProvider
from fakes.resend import API_KEY, FakeResend, Step, error
from notifications.config import Settings
from notifications.provider_state import provider_health
from tests.support.outcomes import gap_seconds, outcomes
from tests.support.system import System, free_port, make_settings, wait_until


@pytest.fixture
async def fake() -> AsyncIterator[FakeResend]:
    async with FakeResend() as server:
        yield server


@pytest.fixture
def settings(temporal_address: str, database_url: str, tmp_path: Path, fake: FakeResend) -> Settings:
    return make_settings(
        temporal_address,
        database_url,
        tmp_path,
        email_provider="resend",
        resend_api_key=API_KEY,
        resend_api_url=fake.url,
        mail_from="Uzima <noreply@uzima.health>",
        provider_timeout_seconds=1.5,  # under the suite's load a local answer can take most of a second
        max_retries=4,
        circuit_failure_threshold=1000,
    )


def nid(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}"


async def enqueue(system: System, to: str, label: str = "n") -> str:
    record = await system.client.enqueue_email(
        {"notificationId": nid(label), "to": to, "subject": "Hello", "html": "<p>Hi there</p>", "text": "Hi there"}
    )
    return record.notification_id


async def test_sent_with_idempotency_key_and_message_id(system: System, fake: FakeResend) -> None:
    async with system.worker():
        n = await enqueue(system, "amina@example.com", "ok")
        result = (await outcomes(system, [n]))[n]

    assert result.row.status == "sent" and result.row.attempts == 1
    assert result.row.provider == "resend" and result.row.provider_message_id == "re-0001"
    [request] = fake.requests
    assert request.headers["idempotency-key"] == n
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    body = request.json()
    headers = body.pop("headers")
    assert body == {
        "from": "Uzima <noreply@uzima.health>",
        "to": ["amina@example.com"],
        "subject": "Hello",
        "html": "<p>Hi there</p>",
        "text": "Hi there",
    }
    # RFC 8058 one-click unsubscribe, through Resend's `headers`
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(
        r"<http://127\.0\.0\.1:8000/unsubscribe/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+>", headers["List-Unsubscribe"]
    )
    assert "amina" not in headers["List-Unsubscribe"]
    assert [a.provider_message_id for a in result.attempts] == ["re-0001"]


async def test_retry_after_timeout_sends_one_email(system: System, fake: FakeResend) -> None:
    # Resend accepts the email but answers after our 0.5 s bound: the retry carries the same key.
    fake.script("slow@example.com", Step(delay=3.0))
    async with system.worker():
        n = await enqueue(system, "slow@example.com", "dup")
        result = (await outcomes(system, [n]))[n]

    assert result.row.status == "sent" and result.row.attempts == 2
    assert result.codes == ["TIMEOUT", None]
    assert [r.headers["idempotency-key"] for r in fake.requests_to("slow@example.com")] == [n, n]
    [email_id] = [i for i, e in fake.emails.items() if e["to"] == ["slow@example.com"]]
    assert len(fake.emails_to("slow@example.com")) == 1
    assert result.row.provider_message_id == email_id


CASES: dict[str, tuple[list[Step], str, int, list[str | None]]] = {
    # recipient: (scripted answers, final status, attempts, error code of each attempt)
    "e500": ([error(500, "application_error")] * 4, "failed", 4, ["PROVIDER_UNAVAILABLE"] * 4),
    "e503": ([error(503, "service_unavailable")], "sent", 2, ["PROVIDER_UNAVAILABLE", None]),
    "hang": ([Step(hang=3)] * 4, "failed", 4, ["TIMEOUT"] * 4),
    "ra429": ([error(429, "rate_limit_exceeded", retry_after="1")], "sent", 2, ["RATE_LIMITED", None]),
    "noRa429": ([error(429, "daily_quota_exceeded")], "sent", 2, ["RATE_LIMITED", None]),
    "v400": ([error(400, "validation_error", "The `subject` field is invalid.")], "failed", 1, ["VALIDATION_ERROR"]),
    "v422": ([error(422, "missing_required_field", "Missing `html` or `text`.")], "failed", 1, ["VALIDATION_ERROR"]),
    "to422": ([error(422, "validation_error", "Invalid `to` field.")], "failed", 1, ["INVALID_RECIPIENT"]),
    "a401": ([error(401, "missing_api_key")], "failed", 1, ["AUTH_ERROR"]),
    "a403": ([error(403, "invalid_api_key")], "failed", 1, ["AUTH_ERROR"]),
    "d403": ([error(403, "validation_error", "The domain is not verified.")], "failed", 1, ["CONFIGURATION_ERROR"]),
}
OUTCOME: dict[str | None, str] = {
    "PROVIDER_UNAVAILABLE": "transient_error",
    "TIMEOUT": "transient_error",
    "RATE_LIMITED": "rate_limited",
    "VALIDATION_ERROR": "permanent_error",
    "INVALID_RECIPIENT": "permanent_error",
    "AUTH_ERROR": "configuration_error",
    "CONFIGURATION_ERROR": "configuration_error",
    None: "sent",
}


async def test_each_error_class_ends_right(system: System, fake: FakeResend) -> None:
    ids = {}
    async with system.worker():
        for label, (steps, *_rest) in CASES.items():
            fake.script(f"{label}@example.com", *steps)
            ids[label] = await enqueue(system, f"{label}@example.com", label)
        results = await outcomes(system, list(ids.values()))

    for label, (_steps, status, attempts, codes) in CASES.items():
        result = results[ids[label]]
        assert (label, result.row.status, result.row.attempts, result.codes) == (label, status, attempts, codes)
        assert [a.outcome for a in result.attempts] == [OUTCOME[c] for c in codes], label
        if status == "failed":
            assert result.row.error_code == codes[-1], label
        assert len(fake.requests_to(f"{label}@example.com")) == attempts, label
        assert all(r.headers["idempotency-key"] == ids[label] for r in fake.requests_to(f"{label}@example.com"))

    # Retry-After honoured: 1 s between the attempts instead of the ~0.1 s backoff.
    first, second = results[ids["ra429"]].attempts
    assert gap_seconds(first, second) >= 0.95
    # no Retry-After: the jittered backoff chose the delay (the delay chosen, not the wall gap)
    assert results[ids["noRa429"]].attempts[0].details["retryDelayMs"] < 800
    assert (results[ids["e500"]].row.error_message or "").startswith("Resend 500")


async def test_refused_connection_is_retried_then_fails(system: System) -> None:
    dead = system.settings.model_copy(update={"resend_api_url": f"http://127.0.0.1:{free_port()}"})
    outbox = OutboxProvider(system.db)
    providers = Providers(email=ResendProvider(dead), push=outbox)
    async with system.worker(providers=providers):
        n = await enqueue(system, "nobody@example.com", "refused")
        result = (await outcomes(system, [n]))[n]
    assert result.row.status == "failed" and result.row.attempts == 4
    assert result.codes == ["CONNECTION_ERROR"] * 4


async def test_circuit_opens_fails_fast_and_closes(system: System, fake: FakeResend) -> None:
    tripped = system.settings.model_copy(update={"circuit_failure_threshold": 2, "circuit_cooldown_seconds": 1.5})
    email = with_circuit_breaker(ResendProvider(tripped), "email", tripped, system.db)
    providers = Providers(email=email, push=OutboxProvider(system.db))
    fake.outage = 503
    async with system.worker(providers=providers):
        n = await enqueue(system, "patient@example.com", "circuit")

        async def opened() -> bool:
            return (await provider_health(system.db))["email"]["circuit"] == "open"

        await wait_until(opened, timeout=10)
        health = summary((await provider_health(system.db))["email"])
        assert health == {
            "provider": "resend",
            "status": "degraded",
            "circuit": "open",
            "lastErrorCode": "PROVIDER_UNAVAILABLE",
        }

        async def failed_fast() -> bool:
            return any(a.error_code == "CIRCUIT_OPEN" for a in await system.attempts(n))

        await wait_until(failed_fast, timeout=10)
        fake.outage = None  # the provider recovers; the probe after the cool-down succeeds
        result = (await outcomes(system, [n]))[n]

    assert result.row.status == "sent"
    assert result.codes == ["PROVIDER_UNAVAILABLE", "PROVIDER_UNAVAILABLE", "CIRCUIT_OPEN", None]
    assert len(fake.requests) == 3  # the CIRCUIT_OPEN attempt never reached Resend
    # it waited for the cool-down (1.5 s from the opening), not the 0.1 s backoff
    assert gap_seconds(result.attempts[1], result.attempts[3]) >= 1.3
    assert summary((await provider_health(system.db))["email"]) == {
        "provider": "resend",
        "status": "ok",
        "circuit": "closed",
        "lastErrorCode": "PROVIDER_UNAVAILABLE",
    }


def summary(channel: dict[str, object]) -> dict[str, object]:
    """A channel's health without its per-provider list."""
    return {k: v for k, v in channel.items() if k not in ("order", "providers")}
