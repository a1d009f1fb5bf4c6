"""`notifications worker`'s options: its help, and a bad value refused before anything starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


async def test_worker_cli_help_and_bad_options() -> None:
    exe = Path(sys.executable).parent / "notifications"
    help_text = subprocess.run([str(exe), "worker", "--help"], capture_output=True, text=True).stdout
    for option in ("--email-concurrency", "--push-concurrency", "--env", "--help"):
        assert option in help_text
    bad = subprocess.run([str(exe), "worker", "--email-concurrency", "0"], capture_output=True, text=True)
    assert bad.returncode == 2 and "must be a positive integer" in bad.stderr
