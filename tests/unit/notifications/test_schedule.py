"""`check_schedule`: sendAt and expiresAt against a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from notifications.errors import NotificationValidationError
from notifications.schemas import check_schedule

NOW = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
BERLIN_SUMMER = timezone(timedelta(hours=2))


def fields(exc: NotificationValidationError) -> list[str]:
    return [e["field"] for e in exc.errors]


def test_a_future_send_at_is_kept_in_utc_and_a_past_one_means_now() -> None:
    local = datetime(2026, 3, 29, 4, 0, tzinfo=BERLIN_SUMMER)  # 02:00 UTC
    assert check_schedule(local, None, now=NOW, max_days=365) == (datetime(2026, 3, 29, 2, 0, tzinfo=UTC), None)
    assert check_schedule(NOW - timedelta(seconds=1), None, now=NOW, max_days=365) == (None, None)
    assert check_schedule(None, None, now=NOW, max_days=365) == (None, None)


def test_too_far_ahead_names_send_at() -> None:
    assert check_schedule(NOW + timedelta(days=365), None, now=NOW, max_days=365)[0] is not None
    with pytest.raises(NotificationValidationError) as caught:
        check_schedule(NOW + timedelta(days=365, seconds=1), None, now=NOW, max_days=365)
    assert fields(caught.value) == ["sendAt"]


@pytest.mark.parametrize(
    ("send_at", "expires_at"),
    [
        (None, NOW),  # not after now
        (None, NOW - timedelta(minutes=1)),
        (NOW + timedelta(hours=1), NOW + timedelta(minutes=59)),  # before sendAt
        (NOW + timedelta(hours=1), NOW + timedelta(hours=1)),
    ],
)
def test_expires_at_must_follow_send_at_and_now(send_at: datetime | None, expires_at: datetime) -> None:
    with pytest.raises(NotificationValidationError) as caught:
        check_schedule(send_at, expires_at, now=NOW, max_days=365)
    assert fields(caught.value) == ["expiresAt"]


def test_expires_at_after_a_past_send_at_is_measured_from_now() -> None:
    due, expires = check_schedule(NOW - timedelta(hours=2), NOW + timedelta(minutes=5), now=NOW, max_days=365)
    assert due is None and expires == NOW + timedelta(minutes=5)
