"""Log lines: made once per record for both outputs, redacted, and the file rotated by size."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from processes.logs import configure_logging


@pytest.fixture
def captured(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """stderr as the test reads it; the root logger's handlers put back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield capsys
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


@pytest.mark.parametrize("json_lines", [False, True])
def test_stderr_and_the_file_get_the_same_redacted_line(
    captured: pytest.CaptureFixture[str], tmp_path: Path, json_lines: bool
) -> None:
    log_file = tmp_path / "logs" / "n.log"
    configure_logging(json_lines=json_lines, log_file=log_file)
    logging.getLogger("notifications.delivery").warning(
        "refused %s", "ana.silva@patients.example.org", extra={"notification_id": "n-1", "attempt": 2}
    )
    line = captured.readouterr().err.strip()
    assert log_file.read_text().strip() == line
    assert "ana.silva@" not in line and "a***@p***" in line.replace("\\u2026", "")
    if json_lines:
        assert json.loads(line)["notification_id"] == "n-1"
    else:
        assert line.endswith("[notification_id=n-1 attempt=2]")


def test_the_file_rotates_once_it_reaches_its_size(captured: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    log_file = tmp_path / "n.log"
    configure_logging(log_file=log_file, max_bytes=2_000, backups=2)
    log = logging.getLogger("notifications.delivery")
    for i in range(200):
        log.info("sent %d", i, extra={"notification_id": f"n-{i}"})
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["n.log", "n.log.1", "n.log.2"]
    line = max(len(x) + 1 for x in captured.readouterr().err.splitlines())
    for name in files:
        assert (tmp_path / name).stat().st_size < 2_000 + line  # at most one record past the size
    assert "sent 199 " in log_file.read_text()
