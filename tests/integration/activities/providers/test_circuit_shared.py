"""A circuit one worker opens is honoured by every other worker of the deployment, through SQL."""

from __future__ import annotations

import asyncio

import pytest

from activities.providers.base import DeliveryResult, EmailMessage
from activities.providers.circuit import CircuitBreakerProvider
from notifications.errors import DeliveryError, ErrorCode
from notifications.provider_state import provider_health
from tests.support.system import System

MESSAGE = EmailMessage("n-1", "a@example.com", "s", "<p>h</p>", None, "noreply@uzima.health")
CACHE = 0.3


class Provider:
    name = "resend"

    def __init__(self, down: bool) -> None:
        self.down = down
        self.calls = 0

    async def send_email(self, message: EmailMessage, *, idempotency_key: str) -> DeliveryResult:
        self.calls += 1
        if self.down:
            raise DeliveryError(ErrorCode.PROVIDER_UNAVAILABLE, "503")
        return DeliveryResult(self.name, f"id-{self.calls}")


def breaker(system: System, inner: Provider, cooldown: float = 30.0) -> CircuitBreakerProvider:
    return CircuitBreakerProvider(
        inner, channel="email", db=system.db, threshold=2, cooldown_seconds=cooldown, shared_cache_seconds=CACHE
    )


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_circuit_opened_by_one_worker_is_seen_by_another_within_its_cache_time(system: System) -> None:
    seen_by_a, seen_by_b = Provider(down=True), Provider(down=True)
    a, b = breaker(system, seen_by_a), breaker(system, seen_by_b)
    for _ in range(2):
        with pytest.raises(DeliveryError):
            await a.send_email(MESSAGE, idempotency_key="k")
    assert a.current_state() == "open"

    await asyncio.sleep(CACHE + 0.1)
    with pytest.raises(DeliveryError) as info:
        await b.send_email(MESSAGE, idempotency_key="k")
    assert info.value.code is ErrorCode.CIRCUIT_OPEN and seen_by_b.calls == 0
    assert 25 < (info.value.retry_after or 0) <= 30  # what is left of the other worker's cool-down
    assert (await provider_health(system.db))["email"]["circuit"] == "open"


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_the_shared_circuit_closes_for_everyone_after_a_successful_probe(system: System) -> None:
    inner_a, inner_b = Provider(down=True), Provider(down=False)
    a, b = breaker(system, inner_a, cooldown=0.5), breaker(system, inner_b, cooldown=0.5)
    for _ in range(2):
        with pytest.raises(DeliveryError):
            await a.send_email(MESSAGE, idempotency_key="k")
    await asyncio.sleep(CACHE + 0.1)
    with pytest.raises(DeliveryError):
        await b.send_email(MESSAGE, idempotency_key="k")
    assert inner_b.calls == 0

    await asyncio.sleep(0.5)  # the cool-down is over: a's probe succeeds and closes the row
    inner_a.down = False
    assert isinstance(await a.send_email(MESSAGE, idempotency_key="k"), DeliveryResult)
    await asyncio.sleep(CACHE + 0.1)
    assert isinstance(await b.send_email(MESSAGE, idempotency_key="k"), DeliveryResult)
    assert (await provider_health(system.db))["email"]["circuit"] == "closed"


async def test_a_worker_without_the_database_keeps_its_own_circuit(system: System) -> None:
    inner = Provider(down=True)
    alone = CircuitBreakerProvider(inner, channel="email", db=None, threshold=2, cooldown_seconds=30)
    for _ in range(2):
        with pytest.raises(DeliveryError):
            await alone.send_email(MESSAGE, idempotency_key="k")
    with pytest.raises(DeliveryError) as info:
        await alone.send_email(MESSAGE, idempotency_key="k")
    assert info.value.code is ErrorCode.CIRCUIT_OPEN and inner.calls == 2
