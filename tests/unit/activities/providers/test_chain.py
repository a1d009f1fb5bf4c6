"""The failover rules of a provider chain, decided from one attempt's answer (no server, no database)."""

from __future__ import annotations

from typing import Any

import pytest

from activities.providers.base import DeliveryResult, EmailMessage
from activities.providers.chain import ProviderChain, Route, Routed, is_ambiguous
from notifications.errors import DeliveryError, ErrorCode

MESSAGE = EmailMessage("n-1", "a@example.com", "s", "<p>h</p>", None, "noreply@uzima.health")


class Named:
    def __init__(self, name: str, answer: DeliveryError | None = None) -> None:
        self.name = name
        self.answer = answer
        self.calls = 0

    async def send_email(self, message: EmailMessage, *, idempotency_key: str) -> DeliveryResult:
        self.calls += 1
        if self.answer is not None:
            raise self.answer
        return DeliveryResult(self.name, f"{self.name}-id")


def chain(*names: str, failover_after: int = 2, on_timeout: bool = False, channel: str = "email") -> ProviderChain:
    return ProviderChain(
        channel, [Named(n) for n in names], failover_after=failover_after, failover_on_timeout=on_timeout
    )


def failed(provider: str, code: ErrorCode, **details: Any) -> Routed:
    return Routed(provider, error=DeliveryError(code, "scripted", details=details))


def test_transient_failures_move_on_after_the_threshold_and_wrap_around() -> None:
    c = chain("resend", "smtp")
    route, failover = c.next_route(Route("resend"), failed("resend", ErrorCode.PROVIDER_UNAVAILABLE))
    assert route == Route("resend", streak=1) and failover is None
    route, failover = c.next_route(route, failed("resend", ErrorCode.PROVIDER_UNAVAILABLE))
    assert route == Route("smtp") and failover is not None
    assert (failover.source, failover.target, failover.reason) == ("resend", "smtp", "transient")
    route, _ = c.next_route(route, failed("smtp", ErrorCode.CONNECTION_ERROR, ambiguous=False))
    route, failover = c.next_route(route, failed("smtp", ErrorCode.CONNECTION_ERROR, ambiguous=False))
    assert route == Route("resend") and failover is not None and failover.target == "resend"


@pytest.mark.parametrize("after", [1, 3])
def test_failover_after_attempts_is_the_threshold(after: int) -> None:
    c = chain("resend", "smtp", failover_after=after)
    route = Route("resend")
    for _ in range(after - 1):
        route, failover = c.next_route(route, failed("resend", ErrorCode.PROVIDER_UNAVAILABLE))
        assert failover is None and route.current == "resend"
    route, failover = c.next_route(route, failed("resend", ErrorCode.PROVIDER_UNAVAILABLE))
    assert failover is not None and route.current == "smtp"


def test_a_configuration_error_fails_over_at_once_but_not_past_the_last_provider() -> None:
    c = chain("resend", "smtp")
    route, failover = c.next_route(Route("resend"), failed("resend", ErrorCode.AUTH_ERROR))
    assert route == Route("smtp") and failover is not None and failover.reason == "configuration"
    route, failover = c.next_route(route, failed("smtp", ErrorCode.CONFIGURATION_ERROR))
    assert route.current == "smtp" and failover is None  # the error stays final


@pytest.mark.parametrize("code", [ErrorCode.INVALID_RECIPIENT, ErrorCode.RATE_LIMITED, ErrorCode.UNREGISTERED])
def test_a_recipient_error_or_a_rate_limit_never_fails_over(code: ErrorCode) -> None:
    c = chain("resend", "smtp", failover_after=1)
    route, failover = c.next_route(Route("resend"), failed("resend", code))
    assert route.current == "resend" and failover is None


def test_an_ambiguous_email_outcome_pins_the_provider() -> None:
    c = chain("resend", "smtp", failover_after=1)
    route, failover = c.next_route(Route("resend"), failed("resend", ErrorCode.TIMEOUT))
    assert route == Route("resend", streak=1, pinned=True) and failover is None
    # pinned: a later plain outage or a rejected key does not move it either
    route, failover = c.next_route(route, failed("resend", ErrorCode.PROVIDER_UNAVAILABLE))
    assert route.current == "resend" and route.pinned and failover is None
    route, failover = c.next_route(route, failed("resend", ErrorCode.AUTH_ERROR))
    assert route.current == "resend" and failover is None


def test_failover_on_timeout_and_push_treat_a_timeout_as_any_transient_failure() -> None:
    email = chain("resend", "smtp", failover_after=1, on_timeout=True)
    route, failover = email.next_route(Route("resend"), failed("resend", ErrorCode.TIMEOUT))
    assert route == Route("smtp") and failover is not None
    push = chain("fcm", "outbox", failover_after=1, channel="push")
    route, failover = push.next_route(Route("fcm"), failed("fcm", ErrorCode.TIMEOUT))
    assert route == Route("outbox") and failover is not None


def test_ambiguity_is_what_the_provider_marked() -> None:
    assert is_ambiguous(DeliveryError(ErrorCode.TIMEOUT, "read timeout"))
    assert not is_ambiguous(DeliveryError(ErrorCode.TIMEOUT, "connect timeout", details={"ambiguous": False}))
    assert is_ambiguous(DeliveryError(ErrorCode.CONNECTION_ERROR, "reset", details={"ambiguous": True}))
    assert not is_ambiguous(DeliveryError(ErrorCode.CONNECTION_ERROR, "refused"))


async def test_an_open_circuit_is_passed_over_within_the_attempt() -> None:
    c = chain("resend", "smtp")
    resend, smtp = c.providers
    resend.answer = DeliveryError(ErrorCode.CIRCUIT_OPEN, "open", retry_after=3.0)
    routed = await c.call(lambda p: p.send_email(MESSAGE, idempotency_key="n-1"), Route("resend"))
    assert routed.provider == "smtp" and routed.result is not None and routed.error is None
    assert [(f.source, f.target, f.reason) for f in routed.skipped] == [("resend", "smtp", "circuit_open")]
    # every circuit open: the one that half-opens first answers
    smtp.answer = DeliveryError(ErrorCode.CIRCUIT_OPEN, "open", retry_after=1.0)
    routed = await c.call(lambda p: p.send_email(MESSAGE, idempotency_key="n-1"), Route("resend"))
    assert routed.error is not None and routed.error.retry_after == 1.0 and routed.provider == "smtp"


async def test_a_pinned_route_waits_for_its_own_provider() -> None:
    c = chain("resend", "smtp")
    resend, smtp = c.providers
    resend.answer = DeliveryError(ErrorCode.CIRCUIT_OPEN, "open", retry_after=3.0)
    routed = await c.call(lambda p: p.send_email(MESSAGE, idempotency_key="n-1"), Route("resend", pinned=True))
    assert routed.provider == "resend" and routed.error is not None and smtp.calls == 0


async def test_a_batch_stays_on_the_first_provider() -> None:
    c = chain("resend", "smtp")
    resend, smtp = c.providers
    resend.answer = DeliveryError(ErrorCode.CIRCUIT_OPEN, "open", retry_after=3.0)
    with pytest.raises(DeliveryError) as info:
        await c.send_email_batch([MESSAGE], idempotency_key="campaign-c-1-1")
    assert info.value.code is ErrorCode.CIRCUIT_OPEN and smtp.calls == 0  # retried whole, later, on resend
