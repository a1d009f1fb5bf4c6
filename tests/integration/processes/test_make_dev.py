"""`make dev` brings the whole system up on its embedded default, and Ctrl-C takes it all down."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx

from notifications.client import NotificationClient
from notifications.config import Settings
from processes.devserver import is_listening
from tests.support.system import ROOT, free_port


async def test_make_dev_runs_the_system(tmp_path: Path) -> None:
    temporal_port, ui_port, api_port = free_port(), free_port(), free_port()
    address = f"127.0.0.1:{temporal_port}"
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_UI_PORT": str(ui_port),
        "API_PORT": str(api_port),
        "TEMPORAL_HTTP_PORT": str(free_port()),
        "TEMPORAL_METRICS_PORT": str(free_port()),
        "METRICS_BIND": f"127.0.0.1:{free_port()}",
        "DATA_DIR": str(tmp_path / "data"),
    }
    env.pop("DATABASE_URL", None)
    log = tmp_path / "dev.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["make", "dev"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 240  # may (re)install the virtualenv first
        while "Worker:" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            await asyncio.sleep(0.2)
        output = log.read_text()
        assert f"http://127.0.0.1:{ui_port}" in output
        assert is_listening(f"127.0.0.1:{ui_port}")
        for _ in range(100):  # the admin API starts beside the worker and prints a token
            if "Admin token" in log.read_text():
                break
            await asyncio.sleep(0.1)
        token_line = log.read_text().split("Admin token", 1)[1].splitlines()[0]  # "(12 h): <jwt>"
        token = token_line.split()[-1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as http:
            for _ in range(50):  # healthy once the worker's first polls reach Temporal
                health = await http.get(
                    "/api/admin/notifications/queues/health", headers={"Authorization": f"Bearer {token}"}
                )
                if health.status_code == 200:
                    break
                await asyncio.sleep(0.2)
            assert health.status_code == 200, health.text
            assert health.json()["status"] == "healthy"
            # the dashboard's sign-in link: it sets the session cookie and leads to the Overview
            link = log.read_text().split("Dashboard: ", 1)[1].split()[0]
            assert link.startswith(f"http://127.0.0.1:{api_port}/dashboard/login?token=")
            assert "Sign in as dev-admin" in (await http.get(link)).text
            signed_in = await http.post("/dashboard/login", data={"token": link.split("token=", 1)[1]})
            assert signed_in.status_code == 303 and signed_in.headers["location"] == "/dashboard"
            assert "notifications_dashboard=" in signed_in.headers["set-cookie"]
            overview = await http.get("/dashboard")
            assert overview.status_code == 200 and "Overview" in overview.text

        settings = Settings(temporal_address=address, data_dir=tmp_path / "data")
        client = await NotificationClient.connect(settings)
        try:
            nid = f"dev-{uuid.uuid4().hex[:8]}"
            await client.enqueue_email(
                {"notificationId": nid, "to": "a@example.com", "subject": "Hi", "html": "<p>Hello</p>"}, 7
            )
            for _ in range(200):
                if (await client.get(nid)).status == "sent":
                    break
                await asyncio.sleep(0.1)
            assert (await client.get(nid)).status == "sent"
            assert (tmp_path / "data" / "notifications.db").exists()
            assert (tmp_path / "data" / "temporal.db").exists()
        finally:
            await client.close()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does to the foreground process group
        code = await asyncio.to_thread(proc.wait, 60)
    assert code in (0, 2, 130, -signal.SIGINT), log.read_text()  # make reports the interrupt
    assert "stopped" in log.read_text()
    assert not is_listening(address)
