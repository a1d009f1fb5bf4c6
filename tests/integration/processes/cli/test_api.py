"""`notifications token` and `notifications api` as a user runs them: separate processes, one dev secret."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import jwt

from notifications.auth import DEV_SECRET_FILE
from tests.support.system import ROOT, System, free_port, run_cli


def _env(system: System) -> dict[str, str]:
    s = system.settings
    return {
        "TEMPORAL_ADDRESS": s.temporal_address,
        "DATABASE_URL": s.database_url,
        "DATA_DIR": str(s.data_dir),
        "ENV": "development",
        "JWT_SECRET": "",
    }


async def test_token_and_api_commands_agree_on_the_dev_secret(system: System) -> None:
    env = _env(system)
    minted = run_cli("token", "--role", "admin", "--ttl", "15m", "--tenant", "acme", "--subject", "ops", env=env)
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    secret = (Path(system.settings.data_dir) / DEV_SECRET_FILE).read_text().strip()
    claims = jwt.decode(token, secret, algorithms=["HS256"])
    assert claims["role"] == "admin" and claims["tenant"] == "acme" and claims["sub"] == "ops"
    assert 890 <= claims["exp"] - claims["iat"] <= 900
    assert oct(os.stat(Path(system.settings.data_dir) / DEV_SECRET_FILE).st_mode & 0o777) == "0o600"

    port = free_port()
    exe = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "notifications"
    proc = subprocess.Popen(
        [str(exe), "api", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    r = await http.get(
                        "/api/admin/notifications/queues/stats", headers={"Authorization": f"Bearer {token}"}
                    )
                    break
                except httpx.TransportError:
                    assert proc.poll() is None and time.monotonic() < deadline, proc.stdout and proc.stdout.read()
                    await asyncio.sleep(0.1)
            assert r.status_code == 200, r.text
            assert (await http.get("/api/admin/notifications/queues/stats")).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert token not in out  # the token never lands in the API's output


async def test_production_without_a_key_refuses_to_start(system: System) -> None:
    env = {**_env(system), "ENV": "production"}
    result = run_cli("api", "--port", str(free_port()), env=env, timeout=60)
    assert result.returncode != 0
    assert "JWT_SECRET" in result.stderr
    result = run_cli("token", "--role", "service", env=env)
    assert result.returncode == 1 and "JWT_SECRET" in result.stderr
