"""Provider selection, refusal to start when misconfigured, health, and the circuit's half-open probe."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from activities.providers import build_providers
from activities.providers.base import DeliveryResult, EmailMessage
from activities.providers.circuit import CircuitBreakerProvider
from activities.providers.fcm import FcmProvider
from activities.providers.outbox import OutboxProvider
from activities.providers.smtp import SmtpProvider
from fakes.resend import FakeResend
from notifications.config import Settings
from notifications.errors import DeliveryError, ErrorCode, ProviderConfigurationError
from notifications.provider_state import provider_health
from tests.support.system import System, free_port, run_cli


def configured(settings: Settings, **overrides: object) -> Settings:
    """A validated copy (model_copy would skip validation: a str would stay a str, not a SecretStr)."""
    return Settings(**{**settings.model_dump(), **overrides})


MESSAGE = EmailMessage(
    notification_id="n-1", to="a@example.com", subject="s", html=None, text="t", sender="noreply@uzima.health"
)


@pytest.mark.parametrize(
    ("overrides", "missing"),
    [
        ({"email_provider": "resend"}, "RESEND_API_KEY"),
        ({"email_provider": "smtp"}, "SMTP_HOST"),
        ({"email_provider": "smtp", "smtp_host": "mail", "smtp_username": "u"}, "SMTP_PASSWORD"),
        ({"push_provider": "fcm"}, "GOOGLE_APPLICATION_CREDENTIALS"),
        ({"push_provider": "fcm", "google_application_credentials": "/nonexistent/sa.json"}, "does not exist"),
        ({"push_provider": "fcm", "fcm_credentials_json": "{not json"}, "FCM_CREDENTIALS_JSON"),
    ],
)
def test_misconfigured_provider_refuses_to_build(system: System, overrides: dict[str, object], missing: str) -> None:
    settings = configured(system.settings, **overrides)
    with pytest.raises(ProviderConfigurationError, match=missing):
        build_providers(settings, system.db)


def test_selection_and_default(system: System) -> None:
    default = build_providers(system.settings, system.db)
    assert isinstance(default.email, CircuitBreakerProvider) and isinstance(default.email.inner, OutboxProvider)
    chosen = build_providers(
        configured(
            system.settings,
            **{
                "email_provider": "smtp",
                "smtp_host": "127.0.0.1",
                "push_provider": "fcm",
                "fcm_api_url": "http://127.0.0.1:9",
            },
        ),
        system.db,
    )
    assert isinstance(chosen.email, CircuitBreakerProvider) and isinstance(chosen.push, CircuitBreakerProvider)
    assert isinstance(chosen.email.inner, SmtpProvider) and isinstance(chosen.push.inner, FcmProvider)
    assert chosen.push.inner.endpoint == "http://127.0.0.1:9/v1/projects/local-dev/messages:send"


def test_service_account_json_gives_the_project(system: System, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    account = {
        "type": "service_account",
        "project_id": "uzima-prod",
        "private_key_id": "k1",
        "private_key": key,
        "client_email": "fcm@uzima-prod.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(account))
    for update in ({"google_application_credentials": path}, {"fcm_credentials_json": json.dumps(account)}):
        provider = FcmProvider(configured(system.settings, **{"push_provider": "fcm", **update}), system.db)
        assert provider.project_id == "uzima-prod"
        assert provider.endpoint == "https://fcm.googleapis.com/v1/projects/uzima-prod/messages:send"


def test_worker_refuses_to_start(system: System) -> None:
    done = run_cli(
        "worker",
        env={
            "EMAIL_PROVIDER": "resend",
            "RESEND_API_KEY": "",
            "DATABASE_URL": system.settings.database_url,
            "TEMPORAL_ADDRESS": system.settings.temporal_address,
        },
        timeout=30,
    )
    assert done.returncode == 1
    assert "RESEND_API_KEY" in done.stderr


async def test_rejected_api_key_is_reported_degraded(system: System) -> None:
    async with FakeResend() as fake:
        settings = configured(
            system.settings, **{"email_provider": "resend", "resend_api_key": "re_wrong", "resend_api_url": fake.url}
        )
        providers = build_providers(settings, system.db)
        with pytest.raises(DeliveryError) as info:
            await providers.email.send_email(MESSAGE, idempotency_key="n-1")
    assert info.value.code is ErrorCode.AUTH_ERROR
    health = await provider_health(system.db)
    assert summary(health["email"]) == {
        "provider": "resend",
        "status": "degraded",
        "circuit": "closed",
        "lastErrorCode": "AUTH_ERROR",
    }
    assert health["push"]["status"] == "ok" and health["push"]["circuit"] == "closed"


async def test_unreachable_servers_are_connection_errors(system: System) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    smtp = SmtpProvider(
        configured(system.settings, **{"smtp_host": "127.0.0.1", "smtp_port": free_port(), "smtp_security": "none"})
    )
    with pytest.raises(DeliveryError) as info:
        await smtp.send_email(MESSAGE, idempotency_key="n-1")
    assert info.value.code is ErrorCode.CONNECTION_ERROR
    fcm = FcmProvider(configured(system.settings, **{"fcm_api_url": dead}), system.db)
    from activities.providers.base import PushMessage

    with pytest.raises(DeliveryError) as info:
        await fcm.send_push(
            PushMessage(notification_id="n-2", user_id=None, token="tok-123456789", title="t", body="b"),
            idempotency_key="n-2",
        )
    assert info.value.code is ErrorCode.CONNECTION_ERROR


class SlowProvider:
    """A stand-in provider whose outcome the test controls: fail, or succeed slowly."""

    name = "slow"

    def __init__(self) -> None:
        self.calls = 0
        self.fail = True

    async def send_email(self, message: EmailMessage, *, idempotency_key: str) -> DeliveryResult:
        self.calls += 1
        if self.fail:
            raise DeliveryError(ErrorCode.PROVIDER_UNAVAILABLE, "down")
        await asyncio.sleep(0.3)
        return DeliveryResult(provider=self.name, provider_message_id=f"id-{self.calls}")


async def test_half_open_admits_one_probe_at_a_time(system: System) -> None:
    inner = SlowProvider()
    breaker = CircuitBreakerProvider(inner, channel="email", db=system.db, threshold=2, cooldown_seconds=0.3)
    for _ in range(2):
        with pytest.raises(DeliveryError):
            await breaker.send_email(MESSAGE, idempotency_key="k")
    with pytest.raises(DeliveryError) as info:
        await breaker.send_email(MESSAGE, idempotency_key="k")
    assert info.value.code is ErrorCode.CIRCUIT_OPEN and 0 < (info.value.retry_after or 0) <= 0.3
    assert inner.calls == 2 and breaker.current_state() == "open"

    await asyncio.sleep(0.35)
    assert breaker.current_state() == "half_open"
    assert (await provider_health(system.db))["email"]["circuit"] == "half_open"
    inner.fail = False
    results = await asyncio.gather(
        *(breaker.send_email(MESSAGE, idempotency_key="k") for _ in range(3)), return_exceptions=True
    )
    ok = [r for r in results if isinstance(r, DeliveryResult)]
    refused = [r for r in results if isinstance(r, DeliveryError)]
    assert len(ok) == 1 and len(refused) == 2 and inner.calls == 3
    assert all(r.code is ErrorCode.CIRCUIT_OPEN for r in refused)
    assert breaker.current_state() == "closed"
    assert summary((await provider_health(system.db))["email"]) == {
        "provider": "slow",
        "status": "ok",
        "circuit": "closed",
        "lastErrorCode": "PROVIDER_UNAVAILABLE",
    }
    # a failed probe reopens for a full cool-down
    inner.fail = True
    for _ in range(2):
        with pytest.raises(DeliveryError):
            await breaker.send_email(MESSAGE, idempotency_key="k")
    await asyncio.sleep(0.35)
    with pytest.raises(DeliveryError) as info:
        await breaker.send_email(MESSAGE, idempotency_key="k")
    assert info.value.code is ErrorCode.PROVIDER_UNAVAILABLE and breaker.current_state() == "open"


def summary(channel: dict[str, object]) -> dict[str, object]:
    """A channel's health without its per-provider list."""
    return {k: v for k, v in channel.items() if k not in ("order", "providers")}
