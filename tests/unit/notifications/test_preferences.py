"""Preferences without a server: the document's validation, the merge, the verdict, and the quiet-hours
window arithmetic on fixed clocks (across midnight, across both DST changes, by day)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from notifications.errors import NotificationValidationError
from notifications.preferences import Action, Subjects, decide, gate_keys, gates, merge, validate_preferences
from notifications.quiet_hours import Window

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone).astimezone(UTC)  # type: ignore[misc]


def test_a_window_across_midnight_ends_the_next_morning() -> None:
    window = Window.parse("22:00", "07:00")
    assert window.end_of(local(BERLIN, 2026, 6, 10, 23, 30), BERLIN) == local(BERLIN, 2026, 6, 11, 7, 0)
    assert window.end_of(local(BERLIN, 2026, 6, 11, 6, 59), BERLIN) == local(BERLIN, 2026, 6, 11, 7, 0)
    assert window.end_of(local(BERLIN, 2026, 6, 11, 7, 0), BERLIN) is None  # the end is outside
    assert window.end_of(local(BERLIN, 2026, 6, 11, 21, 59), BERLIN) is None
    assert window.end_of(local(BERLIN, 2026, 6, 11, 22, 0), BERLIN) == local(BERLIN, 2026, 6, 12, 7, 0)


def test_a_window_within_a_day() -> None:
    window = Window.parse("12:00", "14:00")
    assert window.end_of(local(NEW_YORK, 2026, 1, 5, 13, 0), NEW_YORK) == local(NEW_YORK, 2026, 1, 5, 14, 0)
    assert window.end_of(local(NEW_YORK, 2026, 1, 5, 11, 59), NEW_YORK) is None


def test_the_spring_dst_change_makes_the_night_an_hour_shorter() -> None:
    # Berlin moves from +01:00 to +02:00 at 02:00 on 29 March 2026: 07:00 is 05:00 UTC, not 06:00
    window = Window.parse("22:00", "07:00")
    end = window.end_of(utc(2026, 3, 28, 23, 0), BERLIN)  # 00:00 local, the night of the change
    assert end == utc(2026, 3, 29, 5, 0)
    assert end - local(BERLIN, 2026, 3, 28, 22, 0) == (utc(2026, 3, 29, 5) - utc(2026, 3, 28, 21))  # 8 hours


def test_the_autumn_dst_change_makes_the_night_an_hour_longer() -> None:
    # New York moves from -04:00 to -05:00 at 02:00 on 1 November 2026
    window = Window.parse("22:00", "07:00")
    end = window.end_of(utc(2026, 11, 1, 6, 30), NEW_YORK)  # 01:30 local, the first time (EDT)
    assert end == utc(2026, 11, 1, 12, 0)  # 07:00 EST
    assert window.end_of(utc(2026, 11, 1, 11, 59), NEW_YORK) == utc(2026, 11, 1, 12, 0)
    assert window.end_of(utc(2026, 11, 1, 12, 0), NEW_YORK) is None


def test_a_bound_inside_the_dst_gap_is_the_same_wall_time_after_the_clocks_moved() -> None:
    # 02:30 does not exist in Berlin on 29 March 2026; the window ends when the clocks read 03:30
    window = Window.parse("01:00", "02:30")
    assert window.end_of(utc(2026, 3, 29, 0, 30), BERLIN) == utc(2026, 3, 29, 1, 30)


def test_days_name_the_day_a_window_starts_on() -> None:
    weeknights = Window.parse("22:00", "07:00", ["mon", "tue", "wed", "thu", "fri"])
    # Friday 23:00 belongs to Friday's window, which runs into Saturday morning
    assert weeknights.end_of(local(BERLIN, 2026, 12, 4, 23, 0), BERLIN) == local(BERLIN, 2026, 12, 5, 7, 0)
    assert weeknights.end_of(local(BERLIN, 2026, 12, 5, 6, 0), BERLIN) == local(BERLIN, 2026, 12, 5, 7, 0)
    # Saturday night has none; Monday morning is Sunday's window, which is not quiet either
    assert weeknights.end_of(local(BERLIN, 2026, 12, 5, 23, 0), BERLIN) is None
    assert weeknights.end_of(local(BERLIN, 2026, 12, 7, 6, 0), BERLIN) is None


def test_the_example_document_is_accepted_and_stored_without_unset_keys() -> None:
    document = {
        "channels": {"email": True, "push": False},
        "types": {"marketing": False, "appointment_reminder": {"channels": {"push": False}}},
        "timezone": "Europe/Berlin",
        "quietHours": {"start": "22:00", "end": "07:00", "channels": ["push"], "days": ["mon", "tue"]},
    }
    assert validate_preferences(document) == document
    assert validate_preferences({"timezone": None}) == {}
    assert gates(document) == ["channel:push", "quiet:push", "type:appointment_reminder:push", "type:marketing"]


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"channels": {"email": 1}}, "channels.email"),
        ({"types": {"bad name!": False}}, "types.bad name!.[key]"),
        ({"timezone": "Europe/Nowhere"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"quietHours": {"start": "7:00", "end": "09:00"}}, "quietHours.start"),
        ({"quietHours": {"start": "07:00", "end": "09:60"}}, "quietHours.end"),
        ({"quietHours": {"start": "07:00"}}, "quietHours.end"),
        ({"quietHours": {"start": "07:00", "end": "09:00", "channels": ["sms"]}}, "quietHours.channels.0"),
        ({"quietHours": {"start": "07:00", "end": "09:00", "extra": 1}}, "quietHours.extra"),
    ],
)
def test_bad_documents_name_the_field(document: dict[str, Any], field: str) -> None:
    with pytest.raises(NotificationValidationError) as caught:
        validate_preferences(document)
    assert [e["field"] for e in caught.value.errors] == [field]


def test_the_user_wins_key_by_key() -> None:
    tenant = {
        "channels": {"push": False, "email": False},
        "types": {"digest": {"channels": {"email": False, "push": False}}, "marketing": False},
        "timezone": "Europe/Berlin",
    }
    user = {"channels": {"email": True}, "types": {"digest": {"channels": {"email": True}}}}
    assert merge(tenant, user) == {
        "channels": {"push": False, "email": True},
        "types": {"digest": {"channels": {"email": True, "push": False}}, "marketing": False},
        "timezone": "Europe/Berlin",
    }


def test_the_verdict() -> None:
    now = local(BERLIN, 2026, 6, 10, 23, 0)
    subjects = Subjects.of("acme", "u1", "push", None)
    documents = {
        "tenant": {"types": {"marketing": False}},
        "user:u1": {
            "timezone": "Europe/Berlin",
            "quietHours": {"start": "22:00", "end": "07:00", "channels": ["push"]},
        },
    }

    def verdict(channel: str = "push", type_: str | None = None, critical: bool = False) -> Any:
        return decide(documents, subjects, channel=channel, type_=type_, critical=critical, now=now)

    assert verdict(type_="marketing").action is Action.OPTED_OUT and verdict(type_="marketing").rule == (
        "types.marketing"
    )
    quiet = verdict()
    assert quiet.action is Action.QUIET and quiet.until == local(BERLIN, 2026, 6, 11, 7, 0)
    assert verdict(channel="email").action is Action.SEND  # quiet hours for push only
    assert verdict(type_="marketing", critical=True).action is Action.SEND
    assert gate_keys("push", "marketing") == ["channel:push", "quiet:push", "type:marketing", "type:marketing:push"]


def test_an_address_opt_out_holds_whatever_the_user_allows() -> None:
    subjects = Subjects.of(None, "u1", "email", "Pat@Example.com")
    assert subjects.tenant == "default" and subjects.address == "address:pat@example.com"
    documents = {
        "user:u1": {"types": {"news": True}},
        "address:pat@example.com": {"types": {"news": {"channels": {"email": False}}}},
    }
    found = decide(documents, subjects, channel="email", type_="news", critical=False, now=utc(2026, 1, 1))
    assert found.action is Action.OPTED_OUT and found.rule == "address.types.news.channels.email"
