"""A private PostgreSQL cluster for the database-outage scenario, never the machine's shared one.

initdb in a temp dir on a free port, trust auth, TCP on 127.0.0.1 only. The server refuses
to run as root, so under root it runs as the `postgres` user (the temp dir is handed to it).
The postmaster is this process's child: it is stopped by its PID on the way out.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import free_port

SERVER_USER = "postgres"


def pg_bin(name: str) -> str:
    """A PostgreSQL server binary: PG_BIN, then the Debian layout (newest version), then PATH."""
    candidates = [os.environ.get("PG_BIN", "")]
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(versions, key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0)[::-1]
    for directory in candidates:
        if directory and Path(directory, name).exists():
            return str(Path(directory, name))
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"PostgreSQL's {name} is not installed (set PG_BIN to its bin directory)")
    return found


def _as_server_user() -> dict[str, Any]:
    """Popen arguments that run a server binary as a non-root user when we are root."""
    if os.geteuid() != 0:
        return {}
    return {"user": SERVER_USER, "group": pwd.getpwnam(SERVER_USER).pw_gid}


@dataclass
class PrivatePostgres:
    root: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def initdb(self) -> None:
        subprocess.run(
            [pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
            cwd=self.root,
            timeout=120,
            **_as_server_user(),
        )

    def start(self, limit_s: float = 30.0) -> None:
        cmd = [pg_bin("postgres"), "-D", str(self.data), "-p", str(self.port)]
        cmd += ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.root, **_as_server_user())
        self.wait_ready(limit_s)

    def wait_ready(self, limit_s: float) -> None:
        import psycopg

        deadline = time.monotonic() + limit_s
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}; see {self.log}")
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"postgres did not accept connections within {limit_s:.0f} s") from None
                time.sleep(0.1)

    def stop_immediate(self) -> None:
        """The outage: `pg_ctl stop -m immediate` (no checkpoint, clients cut off; recovery on restart)."""
        subprocess.run(
            [pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "-t", "20", "stop"],
            capture_output=True,
            timeout=30,
            **_as_server_user(),
        )
        self._reap(signal.SIGQUIT)  # pg_ctl's own signal, by PID, should pg_ctl have failed

    def stop(self) -> None:
        self._reap(signal.SIGINT)  # a fast shutdown

    def _reap(self, sig: int) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextmanager
def private_postgres(keep: bool = False) -> Iterator[PrivatePostgres]:
    """A fresh cluster, started; stopped and removed (unless `keep`) on the way out."""
    # Its own dir under the system temp dir: the server user cannot enter a root-only scenario dir.
    root = Path(tempfile.mkdtemp(prefix="notifications-chaos-pg-"))
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SERVER_USER)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    pg = PrivatePostgres(root, free_port())
    try:
        pg.initdb()
        pg.start()
        yield pg
    finally:
        pg.stop()
        if not keep:
            with suppress(OSError):
                shutil.rmtree(root)
