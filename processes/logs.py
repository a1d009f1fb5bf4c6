"""Logging for every process: structured, rotated to a file, and free of personal data.

* development: readable lines; production: one JSON object per line;
* always also `logs/notifications.log` (rotated), the seed's `tail -f logs/notifications.log`;
* delivery lines carry `notification_id`, `workflow_id`, `channel`, `attempt` (passed as `extra`);
* a redaction filter on every handler masks email addresses and drops tokens, API keys and
  bearer credentials from messages, arguments, extra fields and tracebacks: code that logs
  carelessly still cannot leak them. Message bodies are never logged in the first place.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from notifications.redact import mask_emails_in

LIBRARY_LOGGERS = (
    "temporalio",
    "aiosqlite",
    "asyncpg",
    "sqlalchemy",
    "alembic.runtime.migration",
    "firebase_admin",
    "google",
    "urllib3",
    "httpx",
    "httpcore",
    "hpack",
    "resend",
    "aiosmtplib",
    "mail.log",
    "asyncio",
    "multipart",
)
CONTEXT_FIELDS = ("notification_id", "workflow_id", "channel", "attempt", "queue", "actor", "request_id")

_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]+")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*")
_RESEND_KEY = re.compile(r"\bre_[A-Za-z0-9_]{6,}")
_SECRET_ASSIGN = re.compile(
    r"(?i)\b(api[_-]?key|secret|password|token|private[_-]?key)(['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"
)
# FCM registration tokens and other long opaque credentials
_LONG_TOKEN = re.compile(r"\b[A-Za-z0-9_\-]{20,}:[A-Za-z0-9_\-]{40,}\b|\b[A-Za-z0-9_\-]{100,}\b")


def redact(text: str) -> str:
    """Mask personal data and credentials in free text."""
    text = _BEARER.sub(lambda m: f"{m.group(1)} [redacted]", text)
    text = _JWT.sub("[redacted-jwt]", text)
    text = _RESEND_KEY.sub("re_[redacted]", text)
    text = _SECRET_ASSIGN.sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", text)
    text = _LONG_TOKEN.sub("[redacted-token]", text)
    return mask_emails_in(text)


class RedactingFilter(logging.Filter):
    """Applied to handlers (not loggers) so records from every library pass through it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: keep what we can
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if isinstance(value, str):
                setattr(record, name, redact(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record._redacted = True
        return True


class _FormattedOnce(logging.Formatter):
    """Both handlers share one formatter: the line is made once per record, not once per handler."""

    def format(self, record: logging.LogRecord) -> str:
        made = record.__dict__.get("_line")
        if made is not None and made[0] is self:
            return str(made[1])
        line = self.format_line(record)
        record._line = (self, line)
        return line

    def format_line(self, record: logging.LogRecord) -> str:
        raise NotImplementedError


class SizeRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Rotates once the file has reached `maxBytes`, read from the open stream: the standard
    handler formats every record once more and stats the file twice to decide before writing."""

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        return bool(self.maxBytes) and self.stream is not None and self.stream.tell() >= self.maxBytes


class JsonFormatter(_FormattedOnce):
    def format_line(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


class ReadableFormatter(_FormattedOnce):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format_line(self, record: logging.LogRecord) -> str:
        line = logging.Formatter.format(self, record)
        context = " ".join(
            f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS if getattr(record, name, None) is not None
        )
        if not context:
            return line
        head, sep, tail = line.partition("\n")
        return f"{head} [{context}]{sep}{tail}"


def configure_logging(
    *,
    json_lines: bool = False,
    level: str = "INFO",
    log_file: Path | None = Path("logs/notifications.log"),
    max_bytes: int = 10 * 1024 * 1024,
    backups: int = 5,
) -> None:
    """Replace the root handlers: stderr plus the rotated file, both redacted."""
    formatter: logging.Formatter = JsonFormatter() if json_lines else ReadableFormatter()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(SizeRotatingFileHandler(log_file, maxBytes=max_bytes, backupCount=backups))
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    redactor = RedactingFilter()
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(redactor)
        root.addHandler(handler)
    root.setLevel(level)
    # Libraries that log queries, request bodies or headers at DEBUG (aiosqlite logs every SQL
    # statement with its parameters): capped at WARNING whatever LOG_LEVEL says.
    for library in LIBRARY_LOGGERS:
        logging.getLogger(library).setLevel(logging.WARNING)
    logging.captureWarnings(True)


def configure_from_settings(settings: Any) -> None:
    configure_logging(
        json_lines=settings.log_format == "json" or (settings.log_format == "auto" and settings.is_production),
        level=settings.log_level,
        log_file=settings.log_file or None,
    )
