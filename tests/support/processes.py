"""Our processes as operators run them: `notifications worker` in its own process, on a test's system."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from tests.support.system import ROOT, System, free_port


def start_worker(system: System, **env: str) -> subprocess.Popen[bytes]:
    s = system.settings
    environment = {
        **os.environ,
        "TEMPORAL_ADDRESS": s.temporal_address,
        "DATABASE_URL": s.database_url,
        "DATA_DIR": str(s.data_dir),
        "BASE_DELAY_MS": str(s.base_delay_ms),
        "METRICS_BIND": f"127.0.0.1:{free_port()}",
        "LOG_FILE": str(s.data_dir / "worker.log"),
        **env,
    }
    exe = Path(sys.executable).parent / "notifications"
    return subprocess.Popen(
        [str(exe), "worker"], env=environment, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


async def cli(system: System, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """`notifications <args>` against the system's Temporal and database, as an operator runs it."""
    s = system.settings
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": s.temporal_address,
        "DATABASE_URL": s.database_url,
        "DATA_DIR": str(s.data_dir),
    }
    exe = Path(sys.executable).parent / "notifications"
    return await asyncio.to_thread(
        subprocess.run, [str(exe), *map(str, args)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60
    )
