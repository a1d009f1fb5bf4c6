"""`notifications worker` with EMAIL_PROVIDERS=resend,smtp, configured through the environment as an
operator does: an outage fails over, and the worker's Prometheus endpoint counts it."""

from __future__ import annotations

import asyncio
import re
import signal
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from fakes.resend import API_KEY, FakeResend
from fakes.smtp import SmtpSink
from tests.support.processes import start_worker
from tests.support.system import System, free_port


@pytest.fixture
async def fake() -> AsyncIterator[FakeResend]:
    async with FakeResend() as server:
        yield server


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink().start(free_port())
    yield server
    server.stop()


def _scrape(port: int) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def failovers(scraped: str, **labels: str) -> float:
    """The value of `notification_failovers_total` with these labels (0 when absent)."""
    for line in scraped.splitlines():
        if not line.startswith("notification_failovers_total{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_a_worker_fails_over_and_counts_it(system: System, fake: FakeResend, sink: SmtpSink) -> None:
    fake.outage = 503
    port = free_port()
    worker = start_worker(
        system,
        EMAIL_PROVIDERS="resend,smtp",
        RESEND_API_KEY=API_KEY,
        RESEND_API_URL=fake.url,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(sink.port),
        SMTP_SECURITY="none",
        MAIL_FROM="noreply@uzima.health",
        METRICS_BIND=f"127.0.0.1:{port}",
    )
    nid = f"fo-{uuid.uuid4().hex[:8]}"
    try:
        await system.client.enqueue_email(
            {"notificationId": nid, "to": "zawadi@example.com", "subject": "s", "text": "t"}
        )
        row = await system.wait_status(nid, "sent", timeout=40)
        scraped = await asyncio.to_thread(_scrape, port)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)
    assert row.provider == "smtp"
    assert [(a.provider, a.outcome) for a in await system.attempts(nid)] == [
        ("resend", "transient_error"),
        ("resend", "transient_error"),
        ("smtp", "sent"),
    ]
    assert failovers(scraped, channel="email", to="smtp", reason="transient", **{"from": "resend"}) == 1
    assert 'notifications_sent_total{channel="email",provider="smtp",' in scraped
