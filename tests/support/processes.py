"""Our processes as operators run them: `notifications worker` in its own process, on a test's system."""

from __future__ import annotations

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
