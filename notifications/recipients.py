"""A recipient as the suppression list keys it: an email lower-cased and trimmed, a device token as is."""

from __future__ import annotations

from notifications.redact import mask_email, mask_token
from notifications.types import Channel


def address_of(channel: str, to: str | None, token: str | None) -> str | None:
    """A notification's recipient; None when a push goes to its user's registered devices."""
    if channel == Channel.EMAIL:
        return normalise(channel, to) if to else None
    return token or None


def normalise(channel: str, address: str) -> str:
    return address.strip().lower() if channel == Channel.EMAIL else address.strip()


def masked(channel: str, address: str) -> str:
    return mask_email(address) if channel == Channel.EMAIL else mask_token(address)
