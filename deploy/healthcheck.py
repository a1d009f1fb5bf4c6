"""Container health check of the notifications image: `python /app/healthcheck.py [worker|api|auto]`.

One image runs both processes, and a Dockerfile has one HEALTHCHECK, so `auto` (the default)
reads the command of PID 1 (`notifications worker ...` or `notifications api ...`) and checks that:

* worker: this container's worker is polling both task queues (notification-email and
  notification-push, workflow and activity pollers) as seen by the Temporal server. Pollers are
  identified by the SDK's default identity `<pid>@<hostname>`; a poller not seen for
  API_WORKER_STALE_SECONDS (90 s, longer than Temporal's 60 s long poll) counts as gone. A worker
  that is alive but cannot reach Temporal is therefore unhealthy, which a process check would miss.
* api: the API answers HTTP on the port it was started with (`--port`, else API_PORT):
  GET /openapi.json, the one route that needs no token.

Exit 0 = healthy, 1 = unhealthy (the reason on stderr, shown by `docker inspect`).
"""

from __future__ import annotations

import asyncio
import socket
import sys
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from notifications.config import Settings

TIMEOUT_SECONDS = 5.0


def pid1_command(proc: Path = Path("/proc/1/cmdline")) -> list[str]:
    """The `notifications` arguments of PID 1, e.g. ["api", "--host", "0.0.0.0", "--port", "8000"]."""
    try:
        argv = [part for part in proc.read_bytes().decode().split("\0") if part]
    except OSError:
        return []
    for index, part in enumerate(argv):
        if Path(part).name == "notifications":
            return argv[index + 1 :]
    return []


def detect_mode(command: list[str]) -> str:
    return "api" if command[:1] == ["api"] else "worker"


def api_port(command: list[str]) -> int:
    from notifications.config import get_settings
    from processes.cli import build_parser

    if command[:1] == ["api"]:
        args = build_parser().parse_args(command)
        if args.port:
            return int(args.port)
    return get_settings().api_port


def check_api(port: int) -> str | None:
    url = f"http://127.0.0.1:{port}/openapi.json"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            if response.status != 200:
                return f"{url} answered {response.status}"
    except OSError as exc:
        return f"{url}: {exc}"
    return None


async def check_worker(settings: Settings | None = None, hostname: str | None = None) -> str | None:
    from notifications.config import get_settings
    from notifications.temporal import POLLER_KINDS, connect, task_queue_pollers
    from notifications.types import TASK_QUEUES

    settings = settings or get_settings()
    suffix = f"@{hostname or socket.gethostname()}"
    client = await asyncio.wait_for(connect(settings), TIMEOUT_SECONDS)
    missing: list[str] = []
    for queue in TASK_QUEUES.values():
        for kind in POLLER_KINDS:
            pollers = await asyncio.wait_for(task_queue_pollers(client, queue, kind), TIMEOUT_SECONDS)
            live = [
                p for p in pollers if p.identity.endswith(suffix) and p.seconds_ago <= settings.api_worker_stale_seconds
            ]
            if not live:
                missing.append(f"{queue} ({kind})")
    if missing:
        return f"no poller from {suffix[1:]} on " + ", ".join(missing)
    return None


def main(argv: list[str]) -> int:
    mode = argv[0] if argv else "auto"
    if mode not in ("auto", "worker", "api"):
        print(f"usage: healthcheck.py [auto|worker|api], not {mode!r}", file=sys.stderr)
        return 2
    command = pid1_command()
    if mode == "auto":
        mode = detect_mode(command)
    try:
        problem = check_api(api_port(command)) if mode == "api" else asyncio.run(check_worker())
    except Exception as exc:  # any failure to check is an unhealthy container, with the reason
        problem = f"{type(exc).__name__}: {exc}"
    if problem:
        print(f"unhealthy ({mode}): {problem}", file=sys.stderr)
        return 1
    print(f"healthy ({mode})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
