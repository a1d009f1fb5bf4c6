"""Operations endpoints of the API: Prometheus /metrics and the /livez liveness probe."""

from __future__ import annotations

import httpx

from api.main import create_app
from notifications.auth import mint_token
from tests.support.system import System


async def test_metrics_and_livez(system: System) -> None:
    app = create_app(system.settings, client=system.client)
    token = mint_token(system.settings, role="admin", ttl_seconds=600, subject="ops")
    async with system.worker():
        await system.client.enqueue_email({"to": "a@example.com", "subject": "s", "html": "<p>x</p>"})
        sent = await system.client.enqueue_push({"userId": "u", "title": "t", "message": "m"})
        await system.wait_status(sent.notification_id, "sent")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        assert (await http.get("/livez")).json() == {"status": "ok"}
        await http.get("/api/admin/notifications/queues/stats", headers={"Authorization": f"Bearer {token}"})
        await http.get("/api/admin/notifications/queues/stats")  # a 401 is counted too
        scraped = (await http.get("/metrics")).text
    assert 'http_requests_total{method="GET",route="/api/admin/notifications/queues/stats",status="200"} 1.0' in scraped
    assert 'route="/api/admin/notifications/queues/stats",status="401"} 1.0' in scraped
    assert "http_request_duration_seconds_bucket" in scraped
    assert 'notification_queue_jobs{queue="push",state="completed"} 1.0' in scraped
    assert "a@example.com" not in scraped
