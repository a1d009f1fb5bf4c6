"""The `notifications` CLI as a user runs it: send, status, queues, outbox, and clear errors."""

from __future__ import annotations

import json

from tests.support.processes import cli
from tests.support.system import System


async def test_send_status_and_outbox(system: System) -> None:
    async with system.worker():
        sent = await cli(
            system,
            "send",
            "email",
            "--to",
            "a@example.com",
            "--subject",
            "Test Email",
            "--message",
            "<p>This is a test email from the notification worker.</p>",
            "--priority",
            "5",
            "--id",
            "cli-email-1",
            "--wait",
        )
        assert sent.returncode == 0, sent.stderr
        record = json.loads(sent.stdout)
        assert record["notificationId"] == "cli-email-1" and record["status"] == "sent"

        pushed = await cli(
            system,
            "send",
            "push",
            "--user-id",
            "507f1f77bcf86cd7994390e",
            "--title",
            "Test Push",
            "--message",
            "This is a test push notification",
            "--data",
            "k=v",
            "--wait",
        )
        assert pushed.returncode == 0, pushed.stderr
        assert json.loads(pushed.stdout)["status"] == "sent"

        shown = await cli(system, "status", "cli-email-1")
        assert shown.returncode == 0, shown.stderr
        status = json.loads(shown.stdout)
        assert status["notification"]["status"] == "sent"
        assert status["workflow"]["status"] == "sent" and status["workflow"]["attempts"] == 1
        assert [a["outcome"] for a in status["deliveryLog"]] == ["sent"]

    outbox = await cli(system, "outbox")
    assert outbox.returncode == 0 and "cli-email-1" in outbox.stdout and "Test Email" in outbox.stdout


async def test_queue_commands(system: System) -> None:
    paused = await cli(system, "queues", "pause", "--queue", "email", "--reason", "incident")
    assert paused.returncode == 0, paused.stderr
    states = json.loads(paused.stdout)
    assert states["email"]["paused"] is True and states["email"]["reason"] == "incident"
    assert states["push"]["paused"] is False
    shown = json.loads((await cli(system, "queues", "status")).stdout)
    assert shown["email"]["paused"] is True
    resumed = json.loads((await cli(system, "queues", "resume")).stdout)
    assert resumed["email"]["paused"] is False and resumed["push"]["paused"] is False
    bad = await cli(system, "queues", "pause", "--queue", "sms")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


async def test_cli_errors_are_clear(system: System) -> None:
    missing = await cli(system, "status", "no-such-id")
    assert missing.returncode == 1 and "no notification with ID 'no-such-id'" in missing.stderr
    invalid = await cli(system, "send", "email", "--to", "not-an-address", "--subject", "s", "--message", "m")
    assert invalid.returncode == 2 and invalid.stderr.startswith("error: to:")
    priority = await cli(system, "send", "push", "--user-id", "u", "--title", "t", "--message", "m", "--priority", "11")
    assert priority.returncode == 2 and "must be from 1 to 10" in priority.stderr


async def test_migrate_command(system: System) -> None:
    done = await cli(system, "migrate")
    assert done.returncode == 0 and "database migrated to head" in done.stdout


async def test_keygen_prints_a_usable_encryption_key(system: System) -> None:
    from notifications.codec import parse_keys

    made = await cli(system, "keygen", "--key-id", "k9")
    assert made.returncode == 0
    [(key_id, key)] = parse_keys(made.stdout.strip())
    assert key_id == "k9" and len(key) == 32
