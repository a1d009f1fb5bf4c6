"""One outbound webhook attempt has one deadline: an endpoint that trickles its answer, each byte
within httpx's per-read timeout, still counts as no answer once `WEBHOOK_TIMEOUT_SECONDS` have passed."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

from activities.webhooks import WebhookActivities
from notifications.config import Settings
from notifications.sql.engine import Database
from notifications.sql.store.webhooks import Due


async def _trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
    try:
        for _ in range(100):  # a byte every 0.1 s: 10 s in all
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.1)
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def test_a_trickled_answer_is_no_answer_after_the_timeout(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, webhook_timeout_seconds=0.5, webhook_retry_schedule="0,5")
    server = await asyncio.start_server(_trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    db = Database.from_settings(settings)
    dispatcher = WebhookActivities(settings, db)
    now = datetime.now(UTC)
    snapshot = {"id": "n-1", "channel": "email", "status": "sent", "workflow_id": "w", "priority": 5, "attempts": 1}
    snapshot.update(created_at=now.isoformat(), updated_at=now.isoformat())
    due = Due(
        1, 0, "we_1", f"http://127.0.0.1:{port}/hook", ["whsec_" + "A" * 32], 1, "notification.sent", 1, now, snapshot
    )
    try:
        started = time.monotonic()
        outcome = await dispatcher._deliver(due)
        took = time.monotonic() - started
    finally:
        server.close()
        await db.dispose()
    assert took < 3, took
    assert outcome["status"] == "pending" and outcome["last_status_code"] is None
    assert outcome["last_error"] == "TimeoutError: no answer" and outcome["attempts"] == 1
