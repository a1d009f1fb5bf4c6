"""Email through aiosmtplib to an aiosmtpd sink, end to end through the workflow."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes.smtp import SmtpSink
from notifications.config import Settings
from tests.support.outcomes import outcomes
from tests.support.system import System, free_port, make_settings


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink().start(free_port())
    yield server
    server.stop()


@pytest.fixture
def settings(temporal_address: str, database_url: str, tmp_path: Path, sink: SmtpSink) -> Settings:
    return make_settings(
        temporal_address,
        database_url,
        tmp_path,
        email_provider="smtp",
        smtp_host="127.0.0.1",
        smtp_port=sink.port,
        smtp_security="none",
        mail_from="noreply@uzima.health",
        provider_timeout_seconds=2,
        max_retries=3,
        circuit_failure_threshold=1000,
    )


async def test_template_email_is_multipart_with_stable_message_id(system: System, sink: SmtpSink) -> None:
    nid = f"smtp-{uuid.uuid4().hex[:10]}"
    async with system.worker():
        await system.client.enqueue_email(
            {
                "notificationId": nid,
                "to": "amina@example.com",
                "type": "welcome",
                "data": {"name": "Amina <b>", "login_url": "https://app.uzima.health/login"},
            }
        )
        result = (await outcomes(system, [nid]))[nid]

    assert result.row.status == "sent" and result.row.provider == "smtp"
    assert result.row.provider_message_id == f"<{nid}@uzima.health>"
    [message] = sink.messages
    assert sink.envelopes == [("noreply@uzima.health", ["amina@example.com"])]
    assert message["Message-ID"] == f"<{nid}@uzima.health>"
    assert message["Subject"] == "Welcome to Uzima Health, Amina <b>"
    assert message.get_content_type() == "multipart/alternative"
    text, html = (part for part in message.iter_parts())
    assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    assert "Welcome, Amina <b>!" in text.get_content()  # derived from the html, unescaped
    assert "Sign in to your account (https://app.uzima.health/login)" in text.get_content()
    assert "<h1>Welcome, Amina &lt;b&gt;!</h1>" in html.get_content()  # autoescaped
    # RFC 8058 one-click unsubscribe; the template links the same page
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = message["List-Unsubscribe"].strip("<>")
    assert link.startswith(f"{system.settings.public_base_url}/unsubscribe/") and "amina" not in link
    assert 'href="http://127.0.0.1:8000/unsubscribe/' in html.get_content()


async def test_a_critical_email_has_no_unsubscribe_link(system: System, sink: SmtpSink) -> None:
    nid = f"smtp-{uuid.uuid4().hex[:10]}"
    async with system.worker():
        await system.client.enqueue_email(
            {
                "notificationId": nid,
                "to": "amina@example.com",
                "type": "welcome",
                "critical": True,
                "data": {"name": "A"},
            }
        )
        assert (await outcomes(system, [nid]))[nid].row.status == "sent"
    [message] = sink.messages
    assert message["List-Unsubscribe"] is None and message["List-Unsubscribe-Post"] is None
    assert "/unsubscribe/" not in message.as_string()


async def test_refused_and_deferred_recipients(system: System, sink: SmtpSink) -> None:
    sink.script("ghost@example.com", "550 5.1.1 <ghost@example.com>: Recipient address rejected")
    sink.script("busy@example.com", "451 4.3.0 Try again later")
    ids = []
    async with system.worker():
        for to in ("ghost@example.com", "busy@example.com"):
            record = await system.client.enqueue_email({"to": to, "subject": "Hi", "text": "Plain only"})
            ids.append(record.notification_id)
        results = await outcomes(system, ids)

    ghost, busy = results[ids[0]], results[ids[1]]
    assert (ghost.row.status, ghost.row.attempts, ghost.codes) == ("failed", 1, ["INVALID_RECIPIENT"])
    assert "ghost@example.com" not in (ghost.row.error_message or "")
    assert (busy.row.status, busy.row.attempts, busy.codes) == ("sent", 2, ["PROVIDER_UNAVAILABLE", None])
    [message] = sink.messages
    assert message.get_content_type() == "text/plain" and message.get_content().strip() == "Plain only"
