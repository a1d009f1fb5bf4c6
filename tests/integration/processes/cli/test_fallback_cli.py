"""`notifications send push --fallback-*`: the push's fallback email from the command line."""

from __future__ import annotations

import json
import uuid

from activities.providers import OutboxProvider, Providers
from notifications.errors import DeliveryError, ErrorCode
from tests.support.processes import cli
from tests.support.scripted import ScriptedProvider
from tests.support.system import System


async def test_send_push_with_a_fallback_email(system: System) -> None:
    provider = ScriptedProvider()
    nid = f"cli-fb-{uuid.uuid4().hex[:8]}"
    provider.fail(nid, DeliveryError(ErrorCode.NO_VALID_DEVICES, "no valid device"))
    async with system.worker(Providers(email=OutboxProvider(system.db), push=provider)):
        sent = await cli(
            system,
            *("send", "push", "--id", nid, "--user-id", "u-cli", "--title", "Results", "--message", "Ready"),
            *("--data", "name=Amina", "--data", "provider_name=Dr. Otieno", "--data", "appointment_time=Monday"),
            *("--fallback-email-to", "patient@example.com", "--fallback-type", "appointment_reminder", "--wait"),
        )
        assert sent.returncode == 0, sent.stderr
        assert json.loads(sent.stdout)["status"] == "failed"
        email = await system.wait_status(f"{nid}-fallback-email", "sent")
    assert email.fallback_of == nid and email.recipient == "patient@example.com"
    assert email.subject == "Reminder: your appointment on Monday"


async def test_a_bad_fallback_names_its_field(system: System) -> None:
    no_address = await cli(
        system, "send", "push", "--user-id", "u", "--title", "t", "--message", "m", "--fallback-subject", "s"
    )
    assert no_address.returncode == 2 and "error: fallback.email.to:" in no_address.stderr
    no_body = await cli(
        system,
        *("send", "push", "--user-id", "u", "--title", "t", "--message", "m"),
        *("--fallback-email-to", "a@example.com", "--fallback-subject", "s"),
    )
    assert no_body.returncode == 2 and "error: fallback.email.html:" in no_body.stderr
