"""One error taxonomy shared by every provider, the activities and the API.

A provider never decides *how* to retry; it only says what went wrong by raising
`DeliveryError` with a code from `ErrorCode`. The category attached to each code
decides the rest: transient and rate-limited errors are retried with the jittered
backoff (or the provider's Retry-After), permanent and configuration errors fail
the notification at once. The code is what lands in SQL as `errorCode`.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCategory(StrEnum):
    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    PERMANENT = "permanent"
    CONFIGURATION = "configuration"

    @property
    def retryable(self) -> bool:
        return self in (ErrorCategory.TRANSIENT, ErrorCategory.RATE_LIMITED)


class ErrorCode(StrEnum):
    # transient
    PROVIDER_UNAVAILABLE = "PROVIDER_UNAVAILABLE"  # 5xx
    TIMEOUT = "TIMEOUT"
    CONNECTION_ERROR = "CONNECTION_ERROR"
    CIRCUIT_OPEN = "CIRCUIT_OPEN"
    SEND_FAILED = "SEND_FAILED"  # the seed's generic code: an unclassified, retryable failure
    # rate limited
    RATE_LIMITED = "RATE_LIMITED"
    # permanent
    INVALID_RECIPIENT = "INVALID_RECIPIENT"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UNREGISTERED = "UNREGISTERED"
    NO_VALID_DEVICES = "NO_VALID_DEVICES"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    MAX_ATTEMPTS_EXCEEDED = "MAX_ATTEMPTS_EXCEEDED"
    # configuration
    CONFIGURATION_ERROR = "CONFIGURATION_ERROR"
    AUTH_ERROR = "AUTH_ERROR"


CATEGORY: dict[ErrorCode, ErrorCategory] = {
    ErrorCode.PROVIDER_UNAVAILABLE: ErrorCategory.TRANSIENT,
    ErrorCode.TIMEOUT: ErrorCategory.TRANSIENT,
    ErrorCode.CONNECTION_ERROR: ErrorCategory.TRANSIENT,
    ErrorCode.CIRCUIT_OPEN: ErrorCategory.TRANSIENT,
    ErrorCode.SEND_FAILED: ErrorCategory.TRANSIENT,
    ErrorCode.RATE_LIMITED: ErrorCategory.RATE_LIMITED,
    ErrorCode.INVALID_RECIPIENT: ErrorCategory.PERMANENT,
    ErrorCode.VALIDATION_ERROR: ErrorCategory.PERMANENT,
    ErrorCode.PAYLOAD_TOO_LARGE: ErrorCategory.PERMANENT,
    ErrorCode.UNREGISTERED: ErrorCategory.PERMANENT,
    ErrorCode.NO_VALID_DEVICES: ErrorCategory.PERMANENT,
    ErrorCode.IDEMPOTENCY_CONFLICT: ErrorCategory.PERMANENT,
    ErrorCode.MAX_ATTEMPTS_EXCEEDED: ErrorCategory.PERMANENT,
    ErrorCode.CONFIGURATION_ERROR: ErrorCategory.CONFIGURATION,
    ErrorCode.AUTH_ERROR: ErrorCategory.CONFIGURATION,
}


class NotificationError(Exception):
    """Base class of every error this package raises on purpose."""


class DeliveryError(NotificationError):
    """Raised by a provider; carries the classification the retry logic acts on.

    `retry_after` (seconds) is the provider's own hint (HTTP Retry-After); when set
    it replaces the jittered backoff for the next attempt.
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        retry_after: float | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message
        self.retry_after = retry_after
        self.details = details or {}

    @property
    def category(self) -> ErrorCategory:
        return CATEGORY[self.code]

    @property
    def retryable(self) -> bool:
        return self.category.retryable

    def __repr__(self) -> str:
        return f"DeliveryError({self.code.value}, {self.message!r}, retry_after={self.retry_after})"


class ProviderConfigurationError(NotificationError):
    """A provider cannot be built from the settings; the worker refuses to start."""


class NotificationValidationError(NotificationError, ValueError):
    """A payload was rejected before anything was stored.

    `errors` lists `{"field": ..., "message": ...}` so every caller (Python, CLI,
    HTTP) can name the field at fault.
    """

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        super().__init__(f"invalid notification: {summary}")


class NotificationNotFoundError(NotificationError, LookupError):
    """No notification with that ID exists."""


class NotificationConflictError(NotificationError):
    """The notification exists but the requested operation does not apply to its state."""


class PayloadTooLargeError(NotificationError):
    """More than one request may carry (the API's 413); the message says where the rest goes."""


class NotificationUnavailableError(NotificationError):
    """A service the operation needs (Temporal, or the database) cannot be reached.

    Nothing was stored or changed by the refused call; try again after `retry_after`
    seconds. `notification_id`, when set, is the ID the refused enqueue would have had:
    retrying with it is safe whatever happened.
    """

    def __init__(self, message: str, *, service: str, retry_after: int = 5, notification_id: str | None = None) -> None:
        super().__init__(message)
        self.service = service
        self.retry_after = retry_after
        self.notification_id = notification_id
