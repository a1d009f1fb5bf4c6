"""Small helpers shared by the HTTP providers (Resend, FCM)."""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from notifications.errors import ErrorCode
from notifications.redact import mask_email

# A provider asking for more than this is treated as "use our backoff"; Temporal's
# max delay bounds the retries anyway and a huge hint would park a notification for days.
MAX_RETRY_AFTER_SECONDS = 3600.0


_ADDRESS = re.compile(r"[^\s<>@\"'`]+@[^\s<>@\"'`]+")


def scrub_addresses(text: str) -> str:
    """Providers quote the refused address in their error text; it lands in SQL and logs, masked."""
    return _ADDRESS.sub(lambda m: mask_email(m.group(0)), text)


def retry_after_seconds(headers: Mapping[str, Any] | None) -> float | None:
    """Retry-After (delta-seconds or HTTP date), looked up case-insensitively."""
    if not headers:
        return None
    value = None
    for key, item in headers.items():
        if str(key).lower() == "retry-after":
            value = str(item).strip()
            break
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds < 0:
        return 0.0
    return min(seconds, MAX_RETRY_AFTER_SECONDS)


def code_for_status(status: int) -> ErrorCode:
    """The generic mapping of an HTTP status; providers refine it with their error names."""
    if status == 429:
        return ErrorCode.RATE_LIMITED
    if status in (401, 403):
        return ErrorCode.AUTH_ERROR
    if status == 413:
        return ErrorCode.PAYLOAD_TOO_LARGE
    if status in (408, 504):
        return ErrorCode.TIMEOUT
    if status >= 500:
        return ErrorCode.PROVIDER_UNAVAILABLE
    if 400 <= status < 500:
        return ErrorCode.VALIDATION_ERROR
    return ErrorCode.SEND_FAILED
