"""Campaign recipients: row checks, CSV and NDJSON streamed in chunks of any size, bounded memory."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator, Iterable, Iterator

import pytest

from notifications.campaign_recipients import (
    MAX_INLINE_RECIPIENTS,
    MAX_LINE_BYTES,
    Recipient,
    RecipientError,
    RecipientsFormatError,
    check_inline,
    check_recipient,
    dedupe_key,
    parse_csv,
    parse_ndjson,
)


async def chunked(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def varied(body: bytes, sizes: Iterable[int]) -> AsyncIterator[bytes]:
    """Chunks of 1..7 bytes in turn: they split UTF-8 characters, CRLFs and quoted fields."""
    start = 0
    sizes = iter(sizes)
    while start < len(body):
        size = next(sizes)
        yield body[start : start + size]
        start += size


def field_of(item: Recipient | RecipientError) -> str | None:
    return item.field if isinstance(item, RecipientError) else None


def cycle(*sizes: int) -> Iterator[int]:
    while True:
        yield from sizes


async def csv_items(body: bytes, channel: str = "email", size: int = 65536, **kw: int) -> list:
    return [item async for batch in parse_csv(chunked(body, size), channel, **kw) for item in batch]


async def ndjson_items(body: bytes, channel: str = "email", size: int = 65536) -> list:
    return [item async for batch in parse_ndjson(chunked(body, size), channel) for item in batch]


# -- one recipient ---------------------------------------------------------------------------------


def test_check_recipient_email_rules() -> None:
    r = check_recipient(
        {"to": "  amina@Example.COM ", "userId": " u1 ", "notificationId": "", "plan": "gold"}, 4, "email"
    )
    assert r == Recipient(line=4, to="amina@example.com", user_id="u1", notification_id=None, data={"plan": "gold"})
    assert check_recipient({"userId": "u1"}, 1, "email") == RecipientError(1, "to", "is required (an email address)")
    bad = check_recipient({"to": "amina.wanjiru@@example.com"}, 2, "email")
    assert isinstance(bad, RecipientError) and (bad.line, bad.field) == (2, "to")
    assert "amina.wanjiru" not in bad.message  # the reason, not the address
    assert field_of(check_recipient({"to": "a@x.com", "userId": "u" * 129}, 1, "email")) == "userId"
    assert field_of(check_recipient({"to": "a@x.com", "notificationId": "-x"}, 1, "email")) == "notificationId"
    assert check_recipient({"to": 42}, 1, "email") == RecipientError(1, "to", "must be a string")
    # email data may be nested: a template can walk it
    nested = check_recipient({"to": "a@x.com", "order": {"id": 7}}, 1, "email")
    assert isinstance(nested, Recipient) and nested.data == {"order": {"id": 7}}


def test_check_recipient_push_rules() -> None:
    by_user = check_recipient({"userId": "u1", "n": 3, "ok": True}, 1, "push")
    assert by_user == Recipient(line=1, to=None, user_id="u1", notification_id=None, data={"n": 3, "ok": True})
    by_token = check_recipient({"to": "fcm-token-1"}, 2, "push")
    assert isinstance(by_token, Recipient) and by_token.to == "fcm-token-1"
    assert field_of(check_recipient({"to": "", "userId": " "}, 3, "push")) == "to"
    assert field_of(check_recipient({"to": "t" * 513}, 4, "push")) == "to"
    assert check_recipient({"userId": "u1", "x": {"a": 1}}, 5, "push") == RecipientError(
        5, "data.x", "must be a string, number or boolean"
    )
    assert field_of(check_recipient({"userId": "u1", "x": [1]}, 6, "push")) == "data.x"


def test_unknown_channel_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="channel"):
        check_recipient({"to": "a@x.com"}, 1, "sms")
    with pytest.raises(ValueError, match="channel"):
        dedupe_key("sms", Recipient(1, "a@x.com", None, None, {}))


async def test_unknown_channel_in_a_parser() -> None:
    with pytest.raises(ValueError, match="channel"):
        await csv_items(b"to\na@x.com\n", "sms")


def test_dedupe_key() -> None:
    def email(to: str | None, user: str | None = None) -> Recipient:
        return Recipient(1, to, user, None, {})

    assert dedupe_key("email", email("A@x.com")) == dedupe_key("email", email("a@x.com"))
    assert dedupe_key("email", email("a@x.com")) != dedupe_key("email", email("b@x.com"))
    key = dedupe_key("email", email("a@x.com"))
    assert len(key) == 64 and int(key, 16) >= 0 and "x.com" not in key
    assert dedupe_key("push", email(None, "u1")) == dedupe_key("push", email(None, "u1"))
    assert dedupe_key("push", email("u1")) != dedupe_key("push", email(None, "u1"))  # a token is not a user
    assert dedupe_key("email", email("a@x.com")) != dedupe_key("push", email("a@x.com"))
    with pytest.raises(ValueError):
        dedupe_key("push", email(None))


def test_check_inline() -> None:
    items = check_inline([{"to": "a@x.com"}, "b@x.com", {"to": "nope"}], "email")
    assert [type(i).__name__ for i in items] == ["Recipient", "RecipientError", "RecipientError"]
    assert [(i.line, field_of(i)) for i in items] == [(1, None), (2, "line"), (3, "to")]
    with pytest.raises(RecipientsFormatError) as err:
        check_inline([{"to": "a@x.com"}] * (MAX_INLINE_RECIPIENTS + 1), "email")
    assert err.value.errors[0]["field"] == "recipients"


# -- CSV -------------------------------------------------------------------------------------------


async def test_csv_extra_columns_become_data() -> None:
    body = b"to,name,plan,userId\na@x.com,Amina,gold,u1\n b@x.com , Otieno ,,\n"
    assert await csv_items(body) == [
        Recipient(2, "a@x.com", "u1", None, {"name": "Amina", "plan": "gold"}),
        Recipient(3, "b@x.com", None, None, {"name": "Otieno", "plan": ""}),  # an empty userId cell: absent
    ]


async def test_csv_header_must_name_the_recipient() -> None:
    with pytest.raises(RecipientsFormatError) as err:
        await csv_items(b"userId,name\nu1,Amina\n", "email")
    assert err.value.errors[0]["field"] == "to"
    with pytest.raises(RecipientsFormatError) as err:
        await csv_items(b"name,city\nAmina,Nairobi\n", "push")
    assert err.value.errors[0]["field"] == "header"
    assert await csv_items(b"userId,name\nu1,Amina\n", "push") == [Recipient(2, None, "u1", None, {"name": "Amina"})]
    for header in (b"to,,name\n", b"to,name,name\n"):
        with pytest.raises(RecipientsFormatError) as err:
            await csv_items(header + b"a@x.com,b,c\n")
        assert err.value.errors[0]["field"] == "header"
    with pytest.raises(RecipientsFormatError, match="header"):
        await csv_items(b"")
    with pytest.raises(RecipientsFormatError, match="header"):
        await csv_items(b"\r\n\n")


async def test_csv_a_bad_address_names_its_line_and_field() -> None:
    body = b"to,name\na@x.com,Amina\nnot-an-address,Otieno\nc@x.com,Wanjiru\n"
    items = await csv_items(body)
    assert [i.line for i in items] == [2, 3, 4]
    assert isinstance(items[1], RecipientError) and (items[1].line, items[1].field) == (3, "to")
    assert "not-an-address" not in items[1].message


async def test_csv_quoted_comma_newline_and_quote() -> None:
    body = b'to,name,note\r\na@x.com,"Smith, J","two\r\nlines"\r\nb@x.com,"say ""hi""",x\r\n'
    items = await csv_items(body)
    assert items == [
        Recipient(2, "a@x.com", None, None, {"name": "Smith, J", "note": "two\r\nlines"}),
        Recipient(4, "b@x.com", None, None, {"name": 'say "hi"', "note": "x"}),  # the line after the 2-line record
    ]


async def test_csv_rows_with_the_wrong_number_of_cells_or_bad_quotes() -> None:
    body = b'to,name\na@x.com\na@x.com,b,c\n"a@x.com"x,b\nb@x.com,ok\n'
    items = await csv_items(body)
    assert [(i.line, field_of(i)) for i in items] == [(2, "line"), (3, "line"), (4, "line"), (5, None)]
    assert items[0].message == "has 1 cells, the header has 2"


async def test_csv_unclosed_quote_at_the_end() -> None:
    items = await csv_items(b'to,name\na@x.com,"Amina\nb@x.com,x\n')
    assert len(items) == 1 and isinstance(items[0], RecipientError) and (items[0].line, items[0].field) == (2, "line")


UNICODE_CSV = (
    "\ufeffto,name,city\r\n"
    "zoe@example.com,Zoë,Zürich\r\n"
    'kenji@example.jp,"東京, 日本","line one\nline two 🎉"\r\n'
    "bad@@example.com,Ana,São Paulo\r\n"
    "\r\n"
    "last@example.com,Émile,Montréal"  # no final line break
).encode()


@pytest.mark.parametrize("sizes", [(1,), (2,), (3,), (5,), (7,), (1, 7, 2, 6, 3, 5, 4)])
async def test_csv_chunks_split_anywhere(sizes: tuple[int, ...]) -> None:
    whole = await csv_items(UNICODE_CSV)
    split = [item async for batch in parse_csv(varied(UNICODE_CSV, cycle(*sizes)), "email") for item in batch]
    assert split == whole
    assert [i.line for i in whole] == [2, 3, 5, 7]
    assert whole[0] == Recipient(2, "zoe@example.com", None, None, {"name": "Zoë", "city": "Zürich"})  # BOM dropped
    assert whole[1].data == {"name": "東京, 日本", "city": "line one\nline two 🎉"}
    assert isinstance(whole[2], RecipientError) and whole[2].field == "to"


async def test_csv_line_breaks_of_every_kind() -> None:
    body = b'to,name\ra@x.com,Amina\rb@x.com,"Otieno\rJr"\r\nc@x.com,Wanjiru\n\rd@x.com,Zoe'
    whole = await csv_items(body)
    assert [(i.line, i.to) for i in whole] == [(2, "a@x.com"), (3, "b@x.com"), (5, "c@x.com"), (7, "d@x.com")]
    assert whole[1].data == {"name": "Otieno\rJr"}
    for sizes in ((1,), (2,), (3,), (4,)):
        split = [item async for batch in parse_csv(varied(body, cycle(*sizes)), "email") for item in batch]
        assert split == whole, sizes


async def test_csv_batches() -> None:
    body = b"to\n" + b"".join(b"u%d@x.com\n" % i for i in range(25))
    batches = [batch async for batch in parse_csv(chunked(body, 7), "email", batch=10)]
    assert [len(b) for b in batches] == [10, 10, 5]
    with pytest.raises(ValueError):
        await csv_items(body, batch=0)


async def test_not_utf8_names_the_line() -> None:
    with pytest.raises(RecipientsFormatError) as err:
        await csv_items(b"to,name\na@x.com,Amina\nb@x.com,\xe9mile\n", size=4)
    assert err.value.errors == [{"field": "body", "message": "line 3: is not valid UTF-8"}]


async def test_a_line_over_64_kib_is_refused() -> None:
    long_cell = b"x" * MAX_LINE_BYTES
    with pytest.raises(RecipientsFormatError) as err:
        await csv_items(b"to,note\na@x.com,ok\nb@x.com," + long_cell + b"\n", size=4096)
    assert (err.value.field, err.value.line) == ("line", 3)
    # a quoted field spanning lines is bounded as one record
    lines = b"\n".join([b"y" * 1000] * 70)
    with pytest.raises(RecipientsFormatError) as err:
        await csv_items(b'to,note\na@x.com,"' + lines + b'"\n', size=4096)
    assert (err.value.field, err.value.line) == ("line", 2)
    # just under the bound is fine, multi-byte characters counted in bytes
    cell = "é" * ((MAX_LINE_BYTES - 20) // 2)
    assert len(await csv_items(f"to,note\na@x.com,{cell}\n".encode(), size=1000)) == 1
    with pytest.raises(RecipientsFormatError):
        await csv_items(f"to,note\na@x.com,{cell}{cell}\n".encode(), size=1000)


async def test_100k_rows_stream_in_bounded_memory() -> None:
    rows = 100_000
    header = b"to,userId,name,city,plan\r\n"

    def row(i: int) -> bytes:
        return f"device-token-{i:06d},user-{i},Name {i},Nairobi,gold-{i % 7}\r\n".encode()

    size = len(header) + sum(len(row(i)) for i in range(rows))

    async def body() -> AsyncIterator[bytes]:
        # built as it is sent, 64 KiB at a time: the test itself never holds the body
        buffer = bytearray(header)
        for i in range(rows):
            buffer += row(i)
            if len(buffer) >= 65536:
                yield bytes(buffer[:65536])
                del buffer[:65536]
        yield bytes(buffer)

    parsed = errors = 0
    last = 0
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        # push: the address checks of email would only slow this memory test down under tracemalloc
        async for batch in parse_csv(body(), "push"):
            assert len(batch) <= 1000
            parsed += sum(isinstance(i, Recipient) for i in batch)
            errors += sum(isinstance(i, RecipientError) for i in batch)
            last = batch[-1].line
            del batch  # a consumer that stored its batch lets it go; the parser keeps none
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (parsed, errors, last) == (rows, 0, rows + 1)
    assert size > 5_000_000
    assert peak < size / 4, f"peak {peak} bytes for a {size}-byte body"


# -- NDJSON ----------------------------------------------------------------------------------------


async def test_ndjson_lines() -> None:
    body = (
        b'{"to": "a@x.com", "name": "Amina", "n": 2}\n'
        b"\n"
        b"   \r\n"
        b'["b@x.com"]\n'
        b'{"to": "c@x.com",\n'
        b'{"to": "not-an-address"}\r\n'
        b'{"to": "d@x.com", "userId": "u4", "notificationId": "n-4"}'
    )
    items = await ndjson_items(body)
    assert items[0] == Recipient(1, "a@x.com", None, None, {"name": "Amina", "n": 2})
    assert [(i.line, field_of(i)) for i in items] == [
        (1, None),
        (4, "line"),
        (5, "line"),
        (6, "to"),
        (7, None),
    ]
    assert items[1].message == "must be a JSON object"
    assert items[4] == Recipient(7, "d@x.com", "u4", "n-4", {})
    split = [item async for batch in parse_ndjson(varied(body, cycle(1, 3, 7)), "email") for item in batch]
    assert split == items


async def test_ndjson_push() -> None:
    body = (
        b'\xef\xbb\xbf{"userId": "u1", "visit": "Monday"}\n'
        b'{"to": "fcm-token"}\n'
        b'{"userId": "u3", "visit": {"day": "Monday"}}\n'
        b'{"name": "nobody"}\n'
    )
    items = await ndjson_items(body, "push", size=3)
    assert items[:2] == [
        Recipient(1, None, "u1", None, {"visit": "Monday"}),
        Recipient(2, "fcm-token", None, None, {}),
    ]
    assert items[2:] == [
        RecipientError(3, "data.visit", "must be a string, number or boolean"),
        RecipientError(4, "to", "a push needs a userId or a device token (to)"),
    ]
