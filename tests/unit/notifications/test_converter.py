"""The payload converter writes exactly the SDK default's bytes for every contract, so histories
recorded with either replay under the other, and reads them back to equal values."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.converter import DataConverter

from notifications.codec import data_converter
from notifications.types import (
    AttemptReport,
    DeliveryPolicy,
    LoggedAttempt,
    NotificationInput,
    PauseRequest,
    SendInput,
    SendResult,
    Status,
    StatusUpdate,
)

INPUT = NotificationInput(
    notificationId="n-1",
    channel="push",
    priority=3,
    type="reminder",
    userId="u-1",
    tenant="t",
    title="Hi",
    message="Ünïcode ✓",
    token="tok",
    data={"nested": [1, {"a": None, "b": 2.5}], "flag": True},
    policy=DeliveryPolicy(),
    enqueuedAt="2026-12-04T10:00:00+00:00",
)
LOGGED = LoggedAttempt(attempt=2, outcome="sent", startedAt="s", finishedAt="f", details={"k": ["v"]})
VALUES: list[Any] = [
    INPUT,
    SendInput(notification=INPUT, attemptOffset=2, afterResume=True),
    SendResult(attempt=1, provider="outbox", providerMessageId=None, completedAt="c", unlogged=LOGGED),
    AttemptReport(attempt=1, errorCode="E", errorMessage="m", attemptedAt="a", unlogged=LOGGED),
    PauseRequest(reason="maintenance", scope="queue"),
    StatusUpdate(notification=INPUT, status=Status.SENT.value, attemptLog=[LOGGED, LOGGED]),
    {"plain": "dict", "status": Status.FAILED},
    ["a", 1, None],
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_same_bytes_as_the_sdk_default(value: Any) -> None:
    ours = data_converter(None).payload_converter
    default = DataConverter.default.payload_converter
    payload = ours.to_payloads([value])[0]
    assert payload == default.to_payloads([value])[0]
    assert ours.from_payloads([payload], [type(value)])[0] == value
