"""A campaign's recipients: an inline list or an upload (CSV or NDJSON, streamed), checked row by row.
A row's problem is a `RecipientError` naming its line and field, and the rest goes on; a problem of
the whole upload (no header, no `to` column, not UTF-8, a line over 64 KiB) raises
`RecipientsFormatError`, possibly after some batches were yielded. The parsers read an async
stream of byte chunks of any size and hold one batch and about one chunk at a time, never the
whole body.

Keys: `to` (the email address, or a push's device token), `userId`, `notificationId`; every other
key or column is the recipient's template `data`. Surrounding whitespace is stripped and an empty
`to`/`userId`/`notificationId` is absent. CSV cells are strings (an empty data cell is ""); CSV
header names are matched exactly, case included.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import re
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import EmailStr, TypeAdapter, ValidationError

from notifications.campaign_types import MAX_INLINE_RECIPIENTS
from notifications.emails import plain_email
from notifications.errors import NotificationValidationError
from notifications.schemas import ID_PATTERN
from notifications.types import Channel

MAX_LINE_BYTES = 64 * 1024  # one line (or one CSV record), its line break included
MAX_USER_ID = 128
MAX_TOKEN = 512
RESERVED = ("to", "userId", "notificationId")

# Built once: building a TypeAdapter costs far more than validating one address with it.
_EMAIL: TypeAdapter[str] = TypeAdapter(EmailStr)


def _email(value: str) -> str:
    """The address as pydantic's EmailStr normalises it (domain lower-cased); ValidationError if invalid."""
    return plain_email(value) or _EMAIL.validate_python(value)


_ID = re.compile(ID_PATTERN)
_NEWLINE = re.compile(r"\r\n|\r|\n")  # what csv (newline="") and NDJSON break lines on


@dataclass(frozen=True, slots=True)
class Recipient:
    line: int  # CSV/NDJSON line (the CSV header is line 1), or index + 1 in an inline list
    to: str | None  # email address (normalised by EmailStr) or device token
    user_id: str | None
    notification_id: str | None
    data: dict[str, Any]  # every other key: the recipient's template data


@dataclass(frozen=True, slots=True)
class RecipientError:
    line: int
    field: str  # "to", "userId", "notificationId", "data.<key>", "line"
    message: str


class RecipientsFormatError(NotificationValidationError):
    """The upload as a whole cannot be read; `field` is "header", "to", "body", "line" or "recipients"."""

    def __init__(self, field: str, message: str, *, line: int | None = None) -> None:
        self.field = field
        self.line = line
        super().__init__([{"field": field, "message": f"line {line}: {message}" if line else message}])


def _check_channel(channel: str) -> None:
    if channel not in (Channel.EMAIL, Channel.PUSH):
        raise ValueError(f"unknown channel {channel!r}")


def check_recipient(obj: Mapping[str, Any], line: int, channel: str) -> Recipient | RecipientError:
    """One recipient checked for `channel`; the first problem found, named by field, otherwise."""
    _check_channel(channel)
    found: dict[str, str | None] = {}
    for name in RESERVED:
        value = obj.get(name)
        if isinstance(value, str):
            value = value.strip() or None
        elif value is not None:
            return RecipientError(line, name, "must be a string")
        found[name] = value
    to, user_id, notification_id = found["to"], found["userId"], found["notificationId"]
    if user_id is not None and len(user_id) > MAX_USER_ID:
        return RecipientError(line, "userId", f"must be at most {MAX_USER_ID} characters")
    if notification_id is not None and not _ID.fullmatch(notification_id):
        return RecipientError(
            line,
            "notificationId",
            "must be 1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit",
        )
    if channel == Channel.EMAIL:
        if to is None:
            return RecipientError(line, "to", "is required (an email address)")
        try:
            to = _email(to)
        except ValidationError as exc:
            # email-validator's reason: what is wrong (at most a character or a domain label), not the address
            return RecipientError(line, "to", exc.errors()[0]["msg"])
    else:
        if to is None and user_id is None:
            return RecipientError(line, "to", "a push needs a userId or a device token (to)")
        if to is not None and len(to) > MAX_TOKEN:
            return RecipientError(line, "to", f"a device token must be at most {MAX_TOKEN} characters")
    data = {key: value for key, value in obj.items() if key not in RESERVED}
    if channel == Channel.PUSH:
        for key, value in data.items():
            # FCM data values are strings; nested objects would be silently stringified.
            if isinstance(value, dict | list):
                return RecipientError(line, f"data.{key}", "must be a string, number or boolean")
    return Recipient(line=line, to=to, user_id=user_id, notification_id=notification_id, data=data)


def check_inline(items: Sequence[Any], channel: str) -> list[Recipient | RecipientError]:
    """An inline JSON list of recipient objects (at most MAX_INLINE_RECIPIENTS), line = index + 1."""
    _check_channel(channel)
    if len(items) > MAX_INLINE_RECIPIENTS:
        raise RecipientsFormatError(
            "recipients", f"at most {MAX_INLINE_RECIPIENTS} inline; upload a CSV or NDJSON file for more"
        )
    return [
        check_recipient(item, index, channel)
        if isinstance(item, Mapping)
        else RecipientError(index, "line", "must be an object")
        for index, item in enumerate(items, 1)
    ]


def dedupe_key(channel: str, r: Recipient) -> str:
    """The same key for the same recipient listed twice, as a sha256 hex digest (no address in clear)."""
    _check_channel(channel)
    if not r.to and not r.user_id:
        raise ValueError("a recipient needs a `to` or a `userId`")
    if channel == Channel.EMAIL:
        key = f"email:{r.to.strip().lower()}" if r.to else f"email-user:{r.user_id}"
    else:
        key = f"push-token:{r.to}" if r.to else f"push-user:{r.user_id}"
    return hashlib.sha256(key.encode()).hexdigest()


# -- streaming ------------------------------------------------------------------------------------


def _size(text: str) -> int:
    """UTF-8 size; isascii() is O(1) in CPython, so only non-ASCII text is encoded."""
    return len(text) if text.isascii() else len(text.encode())


class _Lines:
    """Decodes UTF-8 incrementally (a leading BOM dropped) and cuts lines, each keeping its break."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
        self._partial: list[str] = []  # pieces of a line whose break has not arrived yet
        self._partial_len = 0
        self._cr = False  # the partial line ends with a "\r" held back
        self.count = 0  # lines handed out so far

    def feed(self, chunk: bytes, final: bool = False) -> list[str]:
        try:
            text = self._decoder.decode(chunk, final)
        except UnicodeDecodeError as exc:
            line = self.count + 1 + bytes(exc.object[: exc.start]).count(b"\n")
            raise RecipientsFormatError("body", "is not valid UTF-8", line=line) from None
        lines: list[str] = []
        if self._cr and text:
            self._cr = False
            if text[0] != "\n":  # the held "\r" was a line break of its own
                lines.append(self._complete("", 0))
        start = 0
        for match in _NEWLINE.finditer(text):
            end = match.end()
            if end == len(text) and text[-1] == "\r" and not final:
                self._cr = True  # a "\r\n" may be split across chunks: hold the "\r"
                break
            lines.append(self._complete(text[start:end], len(lines)))
            start = end
        if start < len(text):
            self._partial.append(text[start:])
            self._partial_len += len(text) - start
            if self._partial_len > MAX_LINE_BYTES:  # characters: already over in bytes
                raise RecipientsFormatError(
                    "line", f"is longer than {MAX_LINE_BYTES} bytes", line=self.count + len(lines) + 1
                )
        if final and self._partial:
            lines.append(self._complete("", len(lines)))
        self.count += len(lines)
        return lines

    def _complete(self, tail: str, index: int) -> str:
        if self._partial:
            tail = "".join(self._partial) + tail
            self._partial.clear()
            self._partial_len = 0
        if _size(tail) > MAX_LINE_BYTES:
            raise RecipientsFormatError("line", f"is longer than {MAX_LINE_BYTES} bytes", line=self.count + index + 1)
        return tail


class _Rows(Protocol):
    def push(self, lines: list[str], final: bool) -> Iterator[Recipient | RecipientError]: ...


async def _parse(
    chunks: AsyncIterator[bytes], rows: _Rows, batch: int
) -> AsyncIterator[list[Recipient | RecipientError]]:
    if batch < 1:
        raise ValueError("batch must be at least 1")
    lines = _Lines()
    out: list[Recipient | RecipientError] = []
    final = False
    while not final:
        try:
            chunk = await anext(chunks)
        except StopAsyncIteration:
            chunk, final = b"", True
        for item in rows.push(lines.feed(chunk, final), final):
            out.append(item)
            if len(out) >= batch:
                yield out
                out = []  # the caller owns the batch it was given
    if out:
        yield out


class _NeedMore(Exception):
    """csv.reader asked for a line that has not arrived yet."""


class _Feed:
    """The lines csv.reader pulls; keeps those of the record in progress to replay them.

    csv.reader loses a half-read record when its input raises, so a quoted field still open at
    the end of the lines received so far is parsed again, whole, once more lines arrive."""

    def __init__(self) -> None:
        self.ready: deque[str] = deque()
        self.taken: list[str] = []
        self.taken_size = 0
        self.start = 1  # line of the record in progress
        self.final = False

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        if not self.ready:
            if self.final:
                raise StopIteration
            raise _NeedMore
        line = self.ready.popleft()
        self.taken.append(line)
        self.taken_size += _size(line)
        if self.taken_size > MAX_LINE_BYTES:
            raise RecipientsFormatError(
                "line", f"a record is longer than {MAX_LINE_BYTES} bytes (a quote not closed?)", line=self.start
            )
        return line

    def replay(self) -> None:
        self.ready.extendleft(reversed(self.taken))
        self.taken.clear()
        self.taken_size = 0

    def done(self) -> None:
        self.start += len(self.taken)
        self.taken.clear()
        self.taken_size = 0


class _CsvRows:
    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.feed = _Feed()
        # strict: an unclosed quote at the end or text after a closing quote is an error, not a guess
        self.reader = csv.reader(self.feed, strict=True)
        self.header: list[str] | None = None

    def push(self, lines: list[str], final: bool) -> Iterator[Recipient | RecipientError]:
        feed = self.feed
        feed.ready.extend(lines)
        feed.final = final
        while feed.ready:
            start = feed.start
            try:
                cells = next(self.reader)
            except _NeedMore:
                feed.replay()
                return
            except StopIteration:
                return
            except csv.Error as exc:
                feed.done()
                if self.header is None:
                    raise RecipientsFormatError("header", f"malformed CSV: {exc}", line=start) from None
                yield RecipientError(start, "line", f"malformed CSV: {exc}")
                continue
            feed.done()
            if not cells:
                continue  # a blank line
            if self.header is None:
                self.header = self._check_header(cells, start)
            else:
                yield self._row(cells, start)
        if final and self.header is None:
            raise RecipientsFormatError("header", "the upload is empty: a header row is required")

    def _check_header(self, cells: list[str], line: int) -> list[str]:
        names = [cell.strip() for cell in cells]
        seen: dict[str, int] = {}
        for column, name in enumerate(names, 1):
            if not name:
                raise RecipientsFormatError("header", f"column {column} has no name", line=line)
            if name in seen:
                # columns by position: a file without a header would show an address here
                raise RecipientsFormatError(
                    "header", f"columns {seen[name]} and {column} have the same name", line=line
                )
            seen[name] = column
        if self.channel == Channel.EMAIL and "to" not in seen:
            raise RecipientsFormatError("to", "the header has no `to` column (the email addresses)", line=line)
        if self.channel == Channel.PUSH and "to" not in seen and "userId" not in seen:
            raise RecipientsFormatError(
                "header", "the header needs a `to` (device token) or `userId` column", line=line
            )
        return names

    def _row(self, cells: list[str], line: int) -> Recipient | RecipientError:
        assert self.header is not None
        if len(cells) != len(self.header):
            return RecipientError(line, "line", f"has {len(cells)} cells, the header has {len(self.header)}")
        return check_recipient(
            {name: cell.strip() for name, cell in zip(self.header, cells, strict=True)}, line, self.channel
        )


class _NdjsonRows:
    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.line = 0

    def push(self, lines: list[str], final: bool) -> Iterator[Recipient | RecipientError]:
        for text in lines:
            self.line += 1
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                yield RecipientError(self.line, "line", f"is not valid JSON: {exc.msg} (column {exc.colno})")
                continue
            except RecursionError:
                yield RecipientError(self.line, "line", "is nested too deeply")
                continue
            if not isinstance(obj, dict):
                yield RecipientError(self.line, "line", "must be a JSON object")
                continue
            yield check_recipient(obj, self.line, self.channel)


async def parse_csv(
    chunks: AsyncIterator[bytes], channel: str, *, batch: int = 1000
) -> AsyncIterator[list[Recipient | RecipientError]]:
    """Recipients of a CSV upload (a header row naming the columns), in lists of at most `batch`."""
    _check_channel(channel)
    async for items in _parse(chunks, _CsvRows(channel), batch):
        yield items
        del items  # not held while the next batch is built


async def parse_ndjson(
    chunks: AsyncIterator[bytes], channel: str, *, batch: int = 1000
) -> AsyncIterator[list[Recipient | RecipientError]]:
    """Recipients of an NDJSON upload (one object a line; blank lines skipped), in lists of at most `batch`."""
    _check_channel(channel)
    async for items in _parse(chunks, _NdjsonRows(channel), batch):
        yield items
        del items  # not held while the next batch is built
