"""A channel's providers in failover order (`EMAIL_PROVIDERS=resend,smtp`), each behind its own breaker.

An attempt goes to the provider its notification's `Route` names (the first one for a first
attempt) and walks on past any whose circuit is open. After the attempt, `next_route` says where
the next one goes:
- a configuration or authentication error: the next provider, at once;
- a transient failure: the same provider until FAILOVER_AFTER_ATTEMPTS of them in a row, then the
  next (after the last provider comes the first again);
- an ambiguous email outcome (a timeout or a connection lost after the request went out: the
  provider may have sent it): pinned to that provider, retried under the same idempotency key,
  unless FAILOVER_ON_TIMEOUT;
- a rate limit: the same provider, after its Retry-After;
- the recipient's own error (invalid address, unregistered device): no failover, it is final.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from activities.providers.base import BatchOutcome, DeliveryResult, EmailMessage, PushMessage
from notifications.errors import DeliveryError, ErrorCategory, ErrorCode


@dataclass(frozen=True)
class Route:
    """Where a notification's next attempt goes, and why it stays there."""

    current: str
    streak: int = 0  # transient failures in a row on `current`
    pinned: bool = False  # an ambiguous outcome on `current`: never another provider

    def to_json(self) -> dict[str, Any]:
        return {"current": self.current, "streak": self.streak, "pinned": self.pinned}

    @classmethod
    def from_json(cls, value: Any) -> Route | None:
        if not isinstance(value, dict) or not isinstance(value.get("current"), str):
            return None
        return cls(str(value["current"]), int(value.get("streak") or 0), bool(value.get("pinned")))


@dataclass(frozen=True)
class Failover:
    source: str
    target: str
    reason: str  # configuration | transient | circuit_open


@dataclass
class Routed:
    """One attempt's call: the provider that took it and its answer."""

    provider: str
    result: DeliveryResult | None = None
    error: DeliveryError | None = None
    skipped: list[Failover] = field(default_factory=list)  # providers passed over, their circuits open


def is_ambiguous(error: DeliveryError) -> bool:
    """The request may have reached the provider: a timeout, or a connection lost once it was sent."""
    marked = error.details.get("ambiguous")
    if marked is not None:
        return bool(marked)
    return error.code is ErrorCode.TIMEOUT


class ProviderChain:
    """Several providers of one channel, tried in order; same `name`/`send_*` interface as one provider."""

    def __init__(
        self,
        channel: str,
        providers: Sequence[Any],
        *,
        failover_after: int = 2,
        failover_on_timeout: bool = False,
    ) -> None:
        if not providers:
            raise ValueError("a provider chain needs at least one provider")
        self.channel = channel
        self.providers = list(providers)
        self.order = [str(p.name) for p in self.providers]
        self.name = self.order[0]
        self.failover_after = failover_after
        self.failover_on_timeout = failover_on_timeout
        self.max_batch: int | None = getattr(self.providers[0], "max_batch", None)

    def first_route(self) -> Route:
        return Route(self.order[0])

    def _index(self, name: str) -> int:
        return self.order.index(name) if name in self.order else 0

    async def call(self, send: Callable[[Any], Awaitable[DeliveryResult]], route: Route) -> Routed:
        """Send through the route's provider, or the next ones whose circuit is not open."""
        start = self._index(route.current)
        candidates = [start] if route.pinned else [(start + k) % len(self.order) for k in range(len(self.order))]
        skipped: list[Failover] = []
        open_errors: list[tuple[str, DeliveryError]] = []
        for position, index in enumerate(candidates):
            provider = self.providers[index]
            try:
                result = await send(provider)
            except DeliveryError as exc:
                if exc.code is ErrorCode.CIRCUIT_OPEN and position + 1 < len(candidates):
                    open_errors.append((provider.name, exc))
                    skipped.append(Failover(provider.name, self.order[candidates[position + 1]], "circuit_open"))
                    continue
                if exc.code is ErrorCode.CIRCUIT_OPEN and open_errors:
                    # every circuit is open: come back when the first of them half-opens
                    open_errors.append((provider.name, exc))
                    name, soonest = min(open_errors, key=lambda item: item[1].retry_after or 0.0)
                    return Routed(name, error=soonest, skipped=skipped)
                return Routed(provider.name, error=exc, skipped=skipped)
            return Routed(provider.name, result=result, skipped=skipped)
        raise AssertionError("unreachable: the last candidate always answers")

    def next_route(self, route: Route, routed: Routed) -> tuple[Route, Failover | None]:
        """Where the attempt after this one goes, and the failover that decision is, if any."""
        used, error = routed.provider, routed.error
        same = used == route.current
        streak, pinned = (route.streak, route.pinned) if same else (0, False)
        if error is None or len(self.order) == 1:
            return Route(used, streak + (1 if error is not None else 0), pinned), None
        category = error.category
        if category is ErrorCategory.CONFIGURATION:
            index = self._index(used)
            if not pinned and index + 1 < len(self.order):
                target = self.order[index + 1]
                return Route(target), Failover(used, target, "configuration")
            return Route(used, streak, pinned), None
        if category is ErrorCategory.TRANSIENT:
            if self.channel == "email" and is_ambiguous(error) and not self.failover_on_timeout:
                return Route(used, streak + 1, pinned=True), None
            streak += 1
            if not pinned and streak >= self.failover_after:
                target = self.order[(self._index(used) + 1) % len(self.order)]
                return Route(target), Failover(used, target, "transient")
            return Route(used, streak, pinned), None
        return Route(used, streak, pinned), None  # rate limited, or the recipient's own error

    # -- the one-provider interface (callers without a route, campaign batches) ---------------
    async def send_email(self, message: EmailMessage, *, idempotency_key: str) -> DeliveryResult:
        return await self._first(lambda p: p.send_email(message, idempotency_key=idempotency_key))

    async def send_push(self, message: PushMessage, *, idempotency_key: str) -> DeliveryResult:
        return await self._first(lambda p: p.send_push(message, idempotency_key=idempotency_key))

    # A batch stays on the first provider: its retries carry no route, so a batch whose call timed out
    # (the provider may have sent it) could otherwise go out again through the next provider.
    async def send_email_batch(self, messages: Sequence[EmailMessage], *, idempotency_key: str) -> list[BatchOutcome]:
        from activities.providers.batch import send_email_batch

        return await send_email_batch(self.providers[0], messages, idempotency_key=idempotency_key)

    async def send_push_batch(self, messages: Sequence[PushMessage], *, idempotency_key: str) -> list[BatchOutcome]:
        from activities.providers.batch import send_push_batch

        return await send_push_batch(self.providers[0], messages, idempotency_key=idempotency_key)

    async def _first(self, send: Callable[[Any], Awaitable[DeliveryResult]]) -> DeliveryResult:
        """The first provider whose circuit is not open takes it (no route: every call starts at the first)."""
        routed = await self.call(send, self.first_route())
        if routed.error is not None:
            raise routed.error
        assert routed.result is not None
        return routed.result

    def health(self) -> dict[str, Any]:
        states = [p.health() if hasattr(p, "health") else {"provider": p.name} for p in self.providers]
        return {"provider": self.name, "order": self.order, "providers": states}


def as_chain(provider: Any, channel: str) -> ProviderChain:
    """A chain as is; one provider as a chain of one (tests and callers that build their own)."""
    return provider if isinstance(provider, ProviderChain) else ProviderChain(channel, [provider])
