"""The payload converter writes exactly the SDK default's bytes for every contract, so histories
recorded with either replay under the other, and reads them back as the SDK default does: equal
values, and the same errors for payloads that do not fit."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from temporalio.common import RawValue
from temporalio.converter import DataConverter

from notifications.codec import data_converter
from notifications.types import (
    AttemptReport,
    DeliveryPolicy,
    FallbackEmail,
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
    fallback=FallbackEmail(to="a@example.com", subject="s", html="<p>h</p>"),
)


class _Name(str):
    pass


@dataclasses.dataclass(init=False, eq=False)
class _Blob(bytes):  # the SDK's binary converter takes it before the JSON one
    pass


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
    "email · welcome · to p***@e***.com",
    'Ünïcode "quoted" \\ \n\t\x00 ✓ 𝄞',
    "",
    _Blob(b"a bytes dataclass"),
    Status.SENT,
    5,
    None,
    b"\x00bytes",
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_same_bytes_as_the_sdk_default(value: Any) -> None:
    ours = data_converter(None).payload_converter
    default = DataConverter.default.payload_converter
    payload = ours.to_payloads([value])[0]
    assert payload == default.to_payloads([value])[0]
    assert ours.from_payloads([payload], [type(value)])[0] == value


def test_many_values_in_their_order_and_a_raw_value_as_it_is() -> None:
    raw = RawValue(DataConverter.default.payload_converter.to_payloads(["kept"])[0])
    values = [INPUT, None, "s", raw, 7, PauseRequest(reason="r"), _Name("a str subclass")]
    ours = data_converter(None).payload_converter.to_payloads(values)
    assert ours == DataConverter.default.payload_converter.to_payloads(values)
    assert ours[3] == raw.payload


def _decoded(converter: Any, data: bytes, hint: type) -> Any:
    payload = DataConverter.default.payload_converter.to_payloads([None])[0]
    payload.metadata["encoding"] = b"json/plain"
    payload.data = data
    try:
        return converter.from_payloads([payload], [hint])[0]
    except Exception as exc:  # the error the caller would see, cause included
        return (type(exc), str(exc), type(exc.__cause__), str(exc.__cause__))


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        (b'{"notificationId":"n","channel":"email","priority":5.0,"unknown":1}', NotificationInput),
        (b'{"notificationId":"n","channel":"email","priority":true}', NotificationInput),
        (b'{"notificationId":"n","channel":"email","priority":"5"}', NotificationInput),
        (b'{"notificationId":"n","channel":null}', NotificationInput),
        (b'{"notificationId":"n"}', NotificationInput),
        (b'{"notificationId":"n","channel":"push","critical":1}', NotificationInput),
        (b'{"notificationId":"n","channel":"push","data":{"k":[1]},"policy":{"maxAttempts":2}}', NotificationInput),
        (b'{"notificationId":"n","channel":"push","policy":{"maxAttempts":"two"}}', NotificationInput),
        (b'{"notificationId":"n","channel":"push","fallback":{"to":"a@example.com"}}', NotificationInput),
        (b'{"notification":{"notificationId":"n","channel":"email"},"attemptOffset":1}', SendInput),
        (b'{"notification":[],"attemptOffset":1}', SendInput),
        (b'{"attempt":1,"provider":"p","providerMessageId":null,"completedAt":"c","unlogged":null}', SendResult),
        (b"[1,2]", SendResult),
    ],
)
def test_reads_what_the_sdk_default_reads_and_refuses_what_it_refuses(data: bytes, hint: type) -> None:
    ours, default = data_converter(None).payload_converter, DataConverter.default.payload_converter
    mine, theirs = _decoded(ours, data, hint), _decoded(default, data, hint)
    assert repr(mine) == repr(theirs)  # True == 1, but a priority of True is not a priority of 1
