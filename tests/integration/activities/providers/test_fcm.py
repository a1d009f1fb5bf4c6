"""Push through the real firebase-admin SDK against a fake FCM v1 endpoint, through the workflow."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fakes.fcm import FakeFCM, Step, error
from notifications import suppressions
from notifications.config import Settings
from notifications.devices import list_devices, register_device
from notifications.types import Channel
from tests.support.outcomes import gap_seconds, outcomes
from tests.support.system import System, make_settings


@pytest.fixture
async def fake() -> AsyncIterator[FakeFCM]:
    async with FakeFCM() as server:
        yield server


@pytest.fixture
def settings(temporal_address: str, database_url: str, tmp_path: Path, fake: FakeFCM) -> Settings:
    return make_settings(
        temporal_address,
        database_url,
        tmp_path,
        push_provider="fcm",
        fcm_api_url=fake.url,
        fcm_project_id="uzima-test",
        provider_timeout_seconds=1.5,  # under the suite's load a local answer can take most of a second
        max_retries=4,
        circuit_failure_threshold=1000,
    )


def token(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex}"


async def push(system: System, *, user: str | None = None, device: str | None = None, label: str = "p") -> str:
    payload = {
        "notificationId": f"{label}-{uuid.uuid4().hex[:10]}",
        "title": "Hello",
        "message": "Your results",
        "data": {"screen": "results"},
    }
    if user:
        payload["userId"] = user
    if device:
        payload["token"] = device
    return (await system.client.enqueue_push(payload)).notification_id


async def test_user_push_reaches_every_valid_device_and_prunes_dead_one(system: System, fake: FakeFCM) -> None:
    user = f"user-{uuid.uuid4().hex[:6]}"
    alive1, dead, alive2 = token("a"), token("dead"), token("b")
    for t in (alive1, dead, alive2):
        await system.client.register_device(user, t, platform="android")
    fake.unregistered.add(dead)

    async with system.worker():
        first = await push(system, user=user, label="multi")
        result = (await outcomes(system, [first]))[first]
        entry = suppressions.NewSuppression(channel=Channel.PUSH, address=alive2, reason="manual")
        await suppressions.add(system.db, None, entry, "tests")
        second = await push(system, user=user, label="again")
        again = (await outcomes(system, [second]))[second]

    assert result.row.status == "sent" and result.row.attempts == 1 and result.row.provider == "fcm"
    [attempt] = result.attempts
    assert attempt.outcome == "sent"
    assert attempt.details["sent"] == 2 and attempt.details["failed"] == 1
    by_outcome = {d["outcome"]: d for d in attempt.details["devices"] if d["outcome"] == "failed"}
    assert by_outcome["failed"]["errorCode"] == "UNREGISTERED"
    assert by_outcome["failed"]["token"] == "…" + dead[-4:]  # masked in the log
    assert all(t not in str(attempt.details) for t in (alive1, dead, alive2))

    devices = {d.token: d for d in await list_devices(system.db, user)}
    assert devices[dead].valid is False and devices[dead].invalid_reason == "UNREGISTERED"
    assert devices[alive1].valid and devices[alive2].valid and devices[alive1].last_used_at is not None

    # the dead token is never used again, nor one put on the suppression list since
    assert again.row.status == "sent" and again.attempts[-1].details["sent"] == 1
    assert len(fake.requests_for(dead)) == 1 and len(fake.requests_for(alive1)) == 2
    assert len(fake.requests_for(alive2)) == 1
    sent = fake.requests_for(alive1)[0].json()["message"]
    assert sent["notification"] == {"title": "Hello", "body": "Your results"}
    assert sent["data"] == {"screen": "results", "notificationId": first}
    # a repeat of this push (its first answer lost) replaces it on the device instead of adding one
    assert sent["android"]["notification"]["tag"] == first
    assert sent["apns"]["headers"]["apns-collapse-id"] == first
    assert sent["webpush"]["notification"]["tag"] == first
    assert "collapse_key" not in sent["android"]
    assert fake.requests_for(alive1)[0].headers["authorization"] == "Bearer fcm-dev-token"


async def test_user_with_only_dead_devices_fails_permanently(system: System, fake: FakeFCM) -> None:
    user = f"user-{uuid.uuid4().hex[:6]}"
    dead = [token("d1"), token("d2")]
    for t in dead:
        await register_device(system.db, user, t)
    fake.unregistered.update(dead)
    async with system.worker():
        n = await push(system, user=user, label="alldead")
        nobody = await push(system, user="user-without-devices", label="nodevice")
        results = await outcomes(system, [n, nobody])

    assert results[n].row.status == "failed" and results[n].row.attempts == 1
    assert results[n].row.error_code == "NO_VALID_DEVICES"
    assert results[n].attempts[0].details["failed"] == 2
    assert all(not d.valid for d in await list_devices(system.db, user))
    assert results[nobody].row.status == "failed" and results[nobody].codes == ["NO_VALID_DEVICES"]


CASES: dict[str, tuple[list[Step], str, int, list[str | None]]] = {
    # device token label: (scripted answers, status, attempts, code of each attempt)
    "unregistered": ([error(404, "UNREGISTERED", "Requested entity was not found.")], "failed", 1, ["UNREGISTERED"]),
    "invalid": (
        [error(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token")],
        "failed",
        1,
        ["VALIDATION_ERROR"],
    ),
    "toobig": ([error(400, "INVALID_ARGUMENT", "Message is too big")], "failed", 1, ["PAYLOAD_TOO_LARGE"]),
    "quota": ([error(429, "QUOTA_EXCEEDED", "Quota exceeded.", retry_after="1")], "sent", 2, ["RATE_LIMITED", None]),
    "quotaNoRa": ([error(429, "QUOTA_EXCEEDED", "Quota exceeded.")], "sent", 2, ["RATE_LIMITED", None]),
    "unavailable": (
        [error(503, "UNAVAILABLE", "The service is currently unavailable.", retry_after="1")],
        "sent",
        2,
        ["PROVIDER_UNAVAILABLE", None],
    ),
    "internal": ([error(500, "INTERNAL", "Internal error.")] * 4, "failed", 4, ["PROVIDER_UNAVAILABLE"] * 4),
    "slow": ([Step(delay=3.5)], "sent", 2, ["TIMEOUT", None]),
    "apns": ([error(401, "THIRD_PARTY_AUTH_ERROR", "APNs certificate rejected")], "failed", 1, ["AUTH_ERROR"]),
    "sender": ([error(403, "SENDER_ID_MISMATCH", "SenderId mismatch")], "failed", 1, ["INVALID_RECIPIENT"]),
}


async def test_each_error_class_ends_right(system: System, fake: FakeFCM) -> None:
    tokens = {label: token(label) for label in CASES}
    # the explicit UNREGISTERED token is also a registered device: it gets marked invalid
    await register_device(system.db, "owner-1", tokens["unregistered"])
    ids = {}
    async with system.worker():
        for label, (steps, *_rest) in CASES.items():
            fake.script(tokens[label], *steps)
            ids[label] = await push(system, device=tokens[label], label=label)
        results = await outcomes(system, list(ids.values()))

    for label, (_steps, status, attempts, codes) in CASES.items():
        result = results[ids[label]]
        assert (label, result.row.status, result.row.attempts, result.codes) == (label, status, attempts, codes)
        # one Temporal attempt = one HTTP request: firebase-admin's own retries are off
        assert len(fake.requests_for(tokens[label])) == attempts, label

    for label in ("quota", "unavailable"):  # Retry-After honoured
        first, second = results[ids[label]].attempts
        assert gap_seconds(first, second) >= 0.95, label
    first = results[ids["quotaNoRa"]].attempts[0]
    # no Retry-After: the jittered backoff chose the delay (the delay chosen, not the wall gap, which
    # a loaded machine stretches)
    assert first.details["retryDelayMs"] < 800
    [device] = await list_devices(system.db, "owner-1")
    assert device.valid is False and device.invalid_reason == "UNREGISTERED"

    async with system.worker():  # an invalidated token named directly is refused without a call
        n = await push(system, device=tokens["unregistered"], label="deadagain")
        again = (await outcomes(system, [n]))[n]
    assert again.row.status == "failed" and again.codes == ["UNREGISTERED"]
    assert len(fake.requests_for(tokens["unregistered"])) == 1


async def test_a_partial_push_retries_only_the_devices_it_did_not_reach(system: System, fake: FakeFCM) -> None:
    user = f"user-{uuid.uuid4().hex[:6]}"
    reached, flaky, also = token("a"), token("flaky"), token("c")
    for t in (reached, flaky, also):
        await system.client.register_device(user, t, platform="android")
    fake.script(flaky, error(503, None, "The service is currently unavailable."))

    async with system.worker():
        n = await push(system, user=user, label="partial")
        result = (await outcomes(system, [n]))[n]

    assert result.row.status == "sent" and result.row.attempts == 2
    assert [a.error_code for a in result.attempts] == ["PROVIDER_UNAVAILABLE", None]
    # a device already reached is never pushed twice
    assert len(fake.requests_for(reached)) == 1 and len(fake.requests_for(also)) == 1
    assert len(fake.requests_for(flaky)) == 2
    first, last = result.attempts
    assert first.details["partial"] is True and first.details["sent"] == 2 and first.details["failed"] == 1
    devices = {d["token"]: d for d in last.details["devices"]}
    assert set(devices) == {"…" + t[-4:] for t in (reached, flaky, also)}  # every device, masked
    assert devices["…" + flaky[-4:]]["outcome"] == "sent" and "earlier" not in devices["…" + flaky[-4:]]
    assert devices["…" + reached[-4:]]["earlier"] is True and last.details["sent"] == 3
    assert all(t not in str(last.details) for t in (reached, flaky, also))


async def test_a_partial_push_on_its_last_attempt_counts_as_sent(system: System, fake: FakeFCM) -> None:
    user = f"user-{uuid.uuid4().hex[:6]}"
    good, down = token("good"), token("down")
    for t in (good, down):
        await system.client.register_device(user, t, platform="ios")
    fake.script(down, *[error(503, None, "unavailable")] * 10)

    async with system.worker():
        n = await push(system, user=user, label="lastpartial")
        result = (await outcomes(system, [n]))[n]

    assert result.row.status == "sent" and result.row.attempts == 4  # MAX_RETRIES
    assert len(fake.requests_for(good)) == 1 and len(fake.requests_for(down)) == 4
    last = result.attempts[-1]
    assert last.outcome == "sent" and last.details["partial"] is True
    outcome = {d["token"]: d["outcome"] for d in last.details["devices"]}
    assert outcome == {"…" + good[-4:]: "sent", "…" + down[-4:]: "failed"}
