"""py-spy around one phase of a scenario: record a worker's stacks, then rank its functions.

The recording is py-spy's raw format (collapsed stacks, `outer;...;inner count` per line, frames
as `function (file)` with --nolineno), which flamegraph tools read as well.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

# Our code, as py-spy shortens its file names: the frames worth ranking by inclusive time (the
# command line's entry point, under every sample of the event loop's thread, tells nothing).
OWN_PACKAGES = ("notifications/", "activities/", "workflows/", "processes/", "api/")
ENTRY_POINT = "processes/cli/"


def py_spy() -> str | None:
    """The venv's py-spy (installed with the dev extras), else one on PATH."""
    return shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")


def start_profiler(pid: int, output: Path, *, rate: int = 100) -> subprocess.Popen[bytes] | None:
    """py-spy recording `pid` (non-blocking: the worker is never paused) until stop_profiler."""
    exe = py_spy()
    if exe is None:
        return None
    output.parent.mkdir(parents=True, exist_ok=True)
    cmd = [exe, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw", "--nolineno"]
    cmd += ["--nonblocking", "--output", str(output)]
    with open(output.with_suffix(".log"), "ab") as log:
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)


def stop_profiler(proc: subprocess.Popen[bytes] | None, timeout: float = 30) -> None:
    """SIGINT: py-spy writes its output on it (not on SIGTERM)."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _frames(stack: str) -> list[str]:
    return [f.strip() for f in stack.split(";") if f.strip()]


def profile_top(path: Path, limit: int = 15) -> dict[str, Any]:
    """The functions the samples were in (`self`, the innermost frame) and, for our own code,
    under (`inclusive`, anywhere in the stack), as percentages of all samples."""
    if not path.exists():
        log = path.with_suffix(".log")
        reason = log.read_text(errors="replace")[-500:].strip() if log.exists() else ""
        return {"error": f"py-spy wrote no profile {reason}".strip()}
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _frames(stack)
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            if any(p in frame for p in OWN_PACKAGES) and ENTRY_POINT not in frame:
                inclusive[frame] += count

    def ranked(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"function": name, "pct": round(100 * n / total, 1), "samples": n} for name, n in counter.most_common(limit)
        ]

    return {
        "samples": total,
        "self": ranked(own) if total else [],
        "inclusive_own_code": ranked(inclusive) if total else [],
    }
