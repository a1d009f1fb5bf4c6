"""The search attributes a notification's workflow starts with: what the Web UI lists it by."""

from __future__ import annotations

from datetime import UTC, datetime

from notifications.temporal import start_attributes
from notifications.types import (
    CHANNEL_ATTRIBUTE,
    PRIORITY_ATTRIBUTE,
    SEND_AT_ATTRIBUTE,
    STATUS_ATTRIBUTE,
    TYPE_ATTRIBUTE,
    NotificationInput,
)


def _values(inp: NotificationInput) -> dict[str, object]:
    return {pair.key.name: pair.value for pair in start_attributes(inp)}


def test_due_now_is_queued_with_its_channel_type_and_priority() -> None:
    inp = NotificationInput(notificationId="n-1", channel="email", priority=8, type="welcome")
    assert _values(inp) == {
        STATUS_ATTRIBUTE.name: "queued",
        CHANNEL_ATTRIBUTE.name: "email",
        TYPE_ATTRIBUTE.name: "welcome",
        PRIORITY_ATTRIBUTE.name: 8,
    }


def test_each_kind_gets_its_own_values_though_they_are_shared_between_notifications() -> None:
    first = start_attributes(NotificationInput(notificationId="a", channel="push", priority=2))
    again = start_attributes(NotificationInput(notificationId="b", channel="push", priority=2))
    assert again is first  # built once for a burst of the same kind
    other = _values(NotificationInput(notificationId="c", channel="push", priority=3, type="digest"))
    assert other[PRIORITY_ATTRIBUTE.name] == 3 and other[TYPE_ATTRIBUTE.name] == "digest"
    assert {pair.key.name: pair.value for pair in first}[TYPE_ATTRIBUTE.name] == "none"


def test_a_scheduled_send_is_scheduled_and_lists_when_it_is_due() -> None:
    inp = NotificationInput(notificationId="n-2", channel="push", sendAt="2026-12-24T18:00:00+00:00")
    values = _values(inp)
    assert values[STATUS_ATTRIBUTE.name] == "scheduled"
    assert values[SEND_AT_ATTRIBUTE.name] == datetime(2026, 12, 24, 18, 0, tzinfo=UTC)
    assert values[PRIORITY_ATTRIBUTE.name] == 5
