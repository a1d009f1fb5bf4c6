"""User and tenant preferences: the document, how the two merge, and what they decide for a send.

A preferences document says which channels and notification types a user allows, their time zone
and their quiet hours. Anything unset is allowed. A tenant's document holds its defaults; a user's
values win key by key (`channels.push`, `types.marketing`, `types.x.channels.email`; `timezone` and
`quietHours` each as a whole). An address without a user (one-click unsubscribe from an email sent
without `userId`) has a document of its own, whose opt-outs hold whatever the user's say.

`decide` is evaluated by the send when it is due, in the transaction that opens the attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints, field_validator, model_validator

from notifications.quiet_hours import Window, parse_clock, zone
from notifications.schemas import NAME_PATTERN, validate_payload
from notifications.types import Channel

DEFAULT_TENANT = "default"  # the tenant whose defaults apply to notifications without one
TENANT_SUBJECT = "tenant"
TypeName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TypePreference(_Doc):
    channels: dict[Channel, StrictBool] = Field(default_factory=dict)


class QuietHours(_Doc):
    start: str
    end: str
    channels: list[Channel] | None = None  # absent: every channel
    days: list[Day] | None = None  # the days a window may start on; absent: every day

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        parse_clock(value)
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self

    def window(self) -> Window:
        return Window.parse(self.start, self.end, list(self.days) if self.days is not None else None)


class Preferences(_Doc):
    """`GET/PUT /api/admin/users/{userId}/preferences` and `.../tenants/{tenant}/preferences`."""

    channels: dict[Channel, StrictBool] | None = None
    types: dict[TypeName, StrictBool | TypePreference] | None = None
    timezone: str | None = None
    quietHours: QuietHours | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone(value)
        return value

    def document(self) -> dict[str, Any]:
        """As stored and as answered: without the keys left unset."""
        return self.model_dump(mode="json", exclude_none=True)


def validate_preferences(document: Any) -> dict[str, Any]:
    """The stored form of a document; NotificationValidationError (422) naming the field at fault."""
    prefs: Preferences = validate_payload(Preferences, document)
    return prefs.document()


class Action(StrEnum):
    SEND = "send"
    OPTED_OUT = "opted_out"
    QUIET = "quiet"
    SUPPRESSED = "suppressed"  # the recipient is on the suppression list (rule: its reason)


@dataclass(frozen=True)
class Verdict:
    action: Action
    rule: str | None = None  # which preference decided, e.g. "types.marketing"
    until: datetime | None = None  # QUIET: when the window ends

    @property
    def sends(self) -> bool:
        return self.action is Action.SEND


SEND = Verdict(Action.SEND)


@dataclass(frozen=True)
class Subjects:
    """Whose documents apply to a notification, as keys of the preferences table."""

    tenant: str
    user: str | None
    address: str | None

    @classmethod
    def of(cls, tenant: str | None, user_id: str | None, channel: str, to: str | None) -> Subjects:
        return cls(
            tenant=tenant_key(tenant),
            user=user_subject(user_id) if user_id else None,
            address=address_subject(to) if channel == Channel.EMAIL and to else None,
        )

    def keys(self) -> list[str]:
        return [key for key in (TENANT_SUBJECT, self.user, self.address) if key]


def tenant_key(tenant: str | None) -> str:
    """The tenant whose preferences, suppressions and unsubscribe links apply: `default` for none."""
    return tenant or DEFAULT_TENANT


def user_subject(user_id: str) -> str:
    return f"user:{user_id}"


def address_subject(address: str) -> str:
    return f"address:{address.strip().lower()}"


def gate_keys(channel: str, type_: str | None) -> list[str]:
    """What a notification of this channel and type could be stopped by (see `gates`)."""
    keys = [f"channel:{channel}", f"quiet:{channel}"]
    if type_:
        keys += [f"type:{type_}", f"type:{type_}:{channel}"]
    return keys


def gates(document: dict[str, Any]) -> list[str]:
    """The notifications a stored document could stop, as `gate_keys`: the hot path opens an attempt
    without evaluating the documents when none of them could stop it."""
    found = [f"channel:{c}" for c, allowed in (document.get("channels") or {}).items() if not allowed]
    for name, value in (document.get("types") or {}).items():
        if value is False:
            found.append(f"type:{name}")
        elif isinstance(value, dict):
            found += [f"type:{name}:{c}" for c, allowed in (value.get("channels") or {}).items() if not allowed]
    quiet = document.get("quietHours")
    if quiet:
        found += [f"quiet:{c}" for c in quiet.get("channels") or [c.value for c in Channel]]
    return sorted(set(found))


def merge(tenant: dict[str, Any] | None, user: dict[str, Any] | None) -> dict[str, Any]:
    """The tenant's defaults with the user's values winning key by key."""
    merged = dict(tenant or {})
    for key, value in (user or {}).items():
        if key == "channels":
            merged[key] = {**(merged.get(key) or {}), **value}
        elif key == "types":
            types = dict(merged.get(key) or {})
            for name, rule in value.items():
                base = types.get(name)
                if isinstance(rule, dict) and isinstance(base, dict):
                    rule = {"channels": {**base.get("channels", {}), **rule.get("channels", {})}}
                types[name] = rule
            merged[key] = types
        else:
            merged[key] = value
    return merged


def opt_out(document: dict[str, Any], channel: str, type_: str | None) -> str | None:
    """The rule of `document` that refuses this channel and type, or None."""
    if (document.get("channels") or {}).get(channel) is False:
        return f"channels.{channel}"
    rule = (document.get("types") or {}).get(type_) if type_ else None
    if rule is False:
        return f"types.{type_}"
    if isinstance(rule, dict) and (rule.get("channels") or {}).get(channel) is False:
        return f"types.{type_}.channels.{channel}"
    return None


def decide(
    documents: dict[str, dict[str, Any]],
    subjects: Subjects,
    *,
    channel: str,
    type_: str | None,
    critical: bool,
    now: datetime,
) -> Verdict:
    """Send, opted out, or quiet until when. `documents`: the stored ones by subject key."""
    if critical:
        return SEND
    effective = merge(documents.get(TENANT_SUBJECT), documents.get(subjects.user) if subjects.user else None)
    rule = opt_out(effective, channel, type_)
    if rule is None and subjects.address and subjects.address in documents:
        rule = opt_out(documents[subjects.address], channel, type_)
        rule = f"address.{rule}" if rule else None
    if rule is not None:
        return Verdict(Action.OPTED_OUT, rule=rule)
    quiet = effective.get("quietHours")
    if quiet and channel in (quiet.get("channels") or [c.value for c in Channel]):
        hours = QuietHours.model_validate(quiet)
        until = hours.window().end_of(now, zone(effective.get("timezone") or "UTC"))
        if until is not None:
            return Verdict(Action.QUIET, rule="quietHours", until=until)
    return SEND
