"""All log output of a full run (worker and API processes, successes, retries, failures, API calls)
carries no email address, device token, API key, bearer token or message body in clear."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from fakes.fcm import FakeFCM
from fakes.resend import API_KEY, FakeResend, error
from notifications.auth import mint_token
from tests.support.system import ROOT, System, free_port, wait_until


def spawn(args: list[str], env: dict[str, str], out: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).parent / "notifications"
    with open(out, "wb") as stream:
        return subprocess.Popen([str(exe), *args], env=env, cwd=ROOT, stdout=stream, stderr=subprocess.STDOUT)


async def test_no_personal_data_or_secrets_in_any_log(system: System, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    ok, flaky, bad = (f"{name}.{tag}@patients.example.org" for name in ("ok", "flaky", "bad"))
    device = f"fcm{uuid.uuid4().hex}:APA91b{uuid.uuid4().hex}{uuid.uuid4().hex}"
    body_text = f"Hemoglobin {tag} is 13.5 g/dL"
    user = f"user-{tag}"
    await system.client.register_device(user, device, platform="android")

    async with FakeResend() as resend, FakeFCM() as fcm:
        resend.script(flaky, error(500, "application_error"), error(500, "application_error"))
        resend.script(bad, error(422, "validation_error", f"invalid recipient {bad}"))
        s = system.settings
        api_port = free_port()
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": s.temporal_address,
            "DATABASE_URL": s.database_url,
            "DATA_DIR": str(s.data_dir),
            "BASE_DELAY_MS": "100",
            "LOG_LEVEL": "DEBUG",
            "LOG_FORMAT": "json",
            "LOG_FILE": str(tmp_path / "logs" / "notifications.log"),
            "METRICS_BIND": f"127.0.0.1:{free_port()}",
            "EMAIL_PROVIDER": "resend",
            "RESEND_API_KEY": API_KEY,
            "RESEND_API_URL": resend.url,
            "PUSH_PROVIDER": "fcm",
            "FCM_API_URL": fcm.url,
            "FCM_PROJECT_ID": "uzima-test",
            "API_PORT": str(api_port),
        }
        worker = spawn(["worker"], env, tmp_path / "worker.out")
        api = spawn(["api", "--port", str(api_port)], env, tmp_path / "api.out")
        token = mint_token(s, role="admin", ttl_seconds=600, subject="ops")
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", headers=headers) as http:
                for _ in range(100):
                    try:
                        if (await http.get("/livez")).status_code == 200:
                            break
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)
                ids = []
                for to in (ok, flaky, bad):
                    answer = await http.post(
                        "/api/admin/notifications/queues/test-email",
                        json={
                            "to": to,
                            "subject": f"Results for {to}",
                            "message": f"<p>{body_text}</p>",
                            "priority": 5,
                        },
                    )
                    assert answer.status_code == 202, answer.text
                    ids.append(answer.json()["notificationId"])
                answer = await http.post(
                    "/api/admin/notifications/queues/test-push",
                    json={"userId": user, "title": "Results", "message": body_text, "priority": 7},
                )
                assert answer.status_code == 202, answer.text
                ids.append(answer.json()["notificationId"])

                async def all_done() -> bool:
                    rows = [await system.row(nid) for nid in ids]
                    return all(r is not None and r.status in ("sent", "failed") for r in rows)

                await wait_until(all_done, timeout=60)
                listed = await http.get("/api/admin/notifications", params={"userId": user})
                assert listed.status_code == 200
                assert (await http.get(f"/api/admin/notifications/{ids[2]}")).json()
        finally:
            for proc in (worker, api):
                proc.send_signal(signal.SIGTERM)
            for proc in (worker, api):
                await asyncio.to_thread(proc.wait, 30)

    statuses = {nid: (await system.row(nid)).status for nid in ids}  # type: ignore[union-attr]
    assert list(statuses.values()) == ["sent", "sent", "failed", "sent"]
    output = "\n".join(
        p.read_text(errors="replace")
        for p in (tmp_path / "worker.out", tmp_path / "api.out", tmp_path / "logs" / "notifications.log")
    )
    for secret in (ok, flaky, bad, device, API_KEY, token, body_text, device[-30:]):
        assert secret not in output, f"leaked in the logs: {secret[:12]}…"
    # The logs are really there, structured, and carry the delivery context.
    lines = [
        json.loads(line)
        for line in (tmp_path / "logs" / "notifications.log").read_text().splitlines()
        if line.startswith("{")
    ]
    delivery = [entry for entry in lines if entry.get("notification_id") in ids]
    assert any(entry.get("attempt") == 3 for entry in delivery)  # the flaky one's third attempt
    assert {"notification_id", "workflow_id", "channel", "attempt"} <= set().union(*map(set, delivery))
