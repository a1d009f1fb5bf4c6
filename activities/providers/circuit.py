"""A circuit breaker around one provider: stop hammering a provider that is down.

After `threshold` consecutive transient failures (5xx, timeouts, connection errors)
the circuit opens: for `cooldown` seconds every attempt fails fast with
CIRCUIT_OPEN, without calling the provider, and carries the remaining cool-down as
`retry_after`, so Temporal schedules the retry for when the provider may be back.
Then the circuit is half open: exactly one attempt (the probe) goes through; its
success closes the circuit, a transient failure opens it for another cool-down,
and every other attempt meanwhile fails fast.

Only transient failures count. A rate limit, a rejected recipient or a rejected
API key mean the provider answered: they reset the count (the last two) or leave
it alone (rate limits, which the provider's Retry-After already paces).

The state is shared by every worker of a deployment through `provider_state` (one row per
channel and provider): a breaker writes each change there, and reads the row back at most
once per `shared_cache_seconds`, so a circuit another worker opened fails fast here too
without a database round trip on every send. A failing read or write never fails a delivery.
In a failover chain (`open_on_configuration`), a rejected key or configuration opens the
circuit too: the next provider takes the notifications until an operator fixes it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from activities.providers.base import BatchOutcome, DeliveryResult, EmailMessage, PushMessage
from notifications import provider_state
from notifications.errors import DeliveryError, ErrorCategory, ErrorCode
from notifications.sql.engine import Database
from notifications.sql.models import CIRCUIT_CLOSED, CIRCUIT_HALF_OPEN, CIRCUIT_OPEN, utcnow

log = logging.getLogger("notifications.circuit")

# While a probe is in flight, the others come back after this long (at most the cool-down).
_PROBE_WAIT_SECONDS = 1.0

T = TypeVar("T")


class CircuitBreakerProvider:
    """Wraps an email or push provider; same interface, same `name`."""

    def __init__(
        self,
        inner: Any,
        *,
        channel: str,
        db: Database | None,
        threshold: int,
        cooldown_seconds: float,
        shared_cache_seconds: float = 2.0,
        open_on_configuration: bool = False,
    ) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.max_batch: int | None = getattr(inner, "max_batch", None)
        self.channel = channel
        self._db = db
        self.threshold = threshold
        self.cooldown = cooldown_seconds
        self.state = CIRCUIT_CLOSED
        self.consecutive_failures = 0
        self._opened_at = 0.0  # time.monotonic() of the last opening
        self._probe_in_flight = False
        self._healthy_recorded = False  # a success was written since the last error
        self.shared_cache_seconds = shared_cache_seconds
        self.open_on_configuration = open_on_configuration
        self._shared_until = 0.0  # time.monotonic() until which another worker holds it open
        self._shared_read_at = -math.inf
        self._reading = False

    # -- the provider interface -------------------------------------------------------------
    async def send_email(self, message: EmailMessage, *, idempotency_key: str) -> DeliveryResult:
        return await self._call(lambda: self.inner.send_email(message, idempotency_key=idempotency_key))

    async def send_push(self, message: PushMessage, *, idempotency_key: str) -> DeliveryResult:
        return await self._call(lambda: self.inner.send_push(message, idempotency_key=idempotency_key))

    # A batch call counts as one call: its whole-call failure is one failure, its success (whatever
    # its messages' own errors) one success. Only for an inner provider with a native batch call.
    async def send_email_batch(self, messages: Sequence[EmailMessage], *, idempotency_key: str) -> list[BatchOutcome]:
        return await self._call(lambda: self.inner.send_email_batch(messages, idempotency_key=idempotency_key))

    async def send_push_batch(self, messages: Sequence[PushMessage], *, idempotency_key: str) -> list[BatchOutcome]:
        return await self._call(lambda: self.inner.send_push_batch(messages, idempotency_key=idempotency_key))

    def health(self) -> dict[str, Any]:
        return {
            "provider": self.name,
            "circuit": self.current_state(),
            "consecutiveFailures": self.consecutive_failures,
        }

    # -- the state machine ------------------------------------------------------------------
    def remaining_cooldown(self) -> float:
        return max(0.0, self._opened_at + self.cooldown - time.monotonic())

    def current_state(self) -> str:
        if self.state == CIRCUIT_OPEN and self.remaining_cooldown() <= 0:
            return CIRCUIT_HALF_OPEN
        return self.state

    async def _call(self, send: Callable[[], Awaitable[T]]) -> T:
        await self._read_shared()
        probe = self._admit()
        try:
            result = await send()
        except DeliveryError as exc:
            await self._on_failure(exc, probe)
            raise
        except BaseException:
            # Cancellation (the activity's own timeout) or an unclassified bug: not evidence
            # about the provider; just let the next attempt probe again.
            if probe:
                self._probe_in_flight = False
            raise
        await self._on_success(probe)
        return result

    def _admit(self) -> bool:
        """True when this call is the half-open probe; raises CIRCUIT_OPEN when it must not run."""
        shared = self._shared_until - time.monotonic()
        if shared > 0 and self.state != CIRCUIT_OPEN:
            raise DeliveryError(
                ErrorCode.CIRCUIT_OPEN,
                f"{self.name} circuit was opened by another worker; retrying in {shared:.1f}s",
                retry_after=shared,
                details={"circuit": CIRCUIT_OPEN, "shared": True},
            )
        if self.state == CIRCUIT_CLOSED:
            return False
        remaining = self.remaining_cooldown()
        if remaining > 0:
            raise DeliveryError(
                ErrorCode.CIRCUIT_OPEN,
                f"{self.name} circuit is open after {self.consecutive_failures} consecutive failures; "
                f"retrying in {remaining:.1f}s",
                retry_after=remaining,
                details={"circuit": CIRCUIT_OPEN},
            )
        if self._probe_in_flight:
            raise DeliveryError(
                ErrorCode.CIRCUIT_OPEN,
                f"{self.name} circuit is half open and a probe is in flight",
                retry_after=min(self.cooldown, _PROBE_WAIT_SECONDS),
                details={"circuit": CIRCUIT_HALF_OPEN},
            )
        self._probe_in_flight = True
        self.state = CIRCUIT_HALF_OPEN
        return True

    async def _on_success(self, probe: bool) -> None:
        was = self.state
        self.consecutive_failures = 0
        self.state = CIRCUIT_CLOSED
        if probe:
            self._probe_in_flight = False
        if was != CIRCUIT_CLOSED:
            log.info("%s circuit closed", self.name, extra={"channel": self.channel, "provider": self.name})
        if was != CIRCUIT_CLOSED or not self._healthy_recorded:
            self._healthy_recorded = True
            await self._persist(success=True)

    async def _on_failure(self, error: DeliveryError, probe: bool) -> None:
        if probe:
            self._probe_in_flight = False
        category = error.category
        if category is ErrorCategory.TRANSIENT:
            self.consecutive_failures += 1
            if probe or (self.state == CIRCUIT_CLOSED and self.consecutive_failures >= self.threshold):
                self.state = CIRCUIT_OPEN
                self._opened_at = time.monotonic()
                log.warning(
                    "%s circuit opened after %d consecutive transient failures (%s)",
                    self.name,
                    self.consecutive_failures,
                    error.code.value,
                    extra={"channel": self.channel, "provider": self.name},
                )
        elif category is ErrorCategory.CONFIGURATION and self.open_on_configuration:
            self.state = CIRCUIT_OPEN
            self._opened_at = time.monotonic()
            log.warning(
                "%s circuit opened on a configuration error (%s): failing over",
                self.name,
                error.code.value,
                extra={"channel": self.channel, "provider": self.name},
            )
        elif category is not ErrorCategory.RATE_LIMITED:
            # The provider answered (it rejected this message or our key): it is up.
            self.consecutive_failures = 0
            self.state = CIRCUIT_CLOSED
        elif probe:
            self.state = CIRCUIT_CLOSED
        self._healthy_recorded = False
        await self._persist(error=error)

    async def _read_shared(self) -> None:
        """Refresh the copy of the shared row once it is older than the cache time; one reader at a time."""
        now = time.monotonic()
        if self._db is None or self._reading or now - self._shared_read_at < self.shared_cache_seconds:
            return
        self._reading, self._shared_read_at = True, now
        try:
            row = await provider_state.read_state(self._db, self.channel, self.name)
        except Exception as exc:  # keep the last copy; the delivery must not suffer
            log.debug("could not read the shared circuit: %s", type(exc).__name__)
            return
        finally:
            self._reading = False
        remaining = provider_state.open_for(row)
        self._shared_until = time.monotonic() + remaining if remaining > 0 else 0.0

    async def _persist(self, *, error: DeliveryError | None = None, success: bool = False) -> None:
        if self._db is None:
            return
        opened_until = utcnow() + timedelta(seconds=self.remaining_cooldown()) if self.state == CIRCUIT_OPEN else None
        try:
            await provider_state.record_state(
                self._db,
                self.channel,
                self.name,
                circuit=self.state,
                consecutive_failures=self.consecutive_failures,
                opened_until=opened_until,
                error_code=error.code.value if error else None,
                error_message=error.message if error else None,
                success=success,
            )
        except Exception as exc:  # the health view may lag; the delivery must not suffer
            log.warning(
                "could not record provider state: %s",
                type(exc).__name__,
                extra={"channel": self.channel, "provider": self.name},
            )
