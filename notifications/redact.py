"""Masking of personal data for logs, summaries and the Web UI.

Pure functions (the workflow sandbox imports this module): an operator must be
able to tell two recipients apart at a glance without reading the address.
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")


def mask_email(address: str | None) -> str:
    if not address:
        return ""
    local, sep, domain = address.partition("@")
    if not sep:
        return _mask_word(address)
    host, dot, tld = domain.rpartition(".")
    masked_domain = f"{_mask_word(host)}{dot}{tld}" if dot else _mask_word(domain)
    return f"{_mask_word(local)}@{masked_domain}"


def mask_emails_in(text: str) -> str:
    """Every email address inside free text (a log line, a provider's error message) masked."""
    return _EMAIL.sub(lambda m: mask_email(m.group(0)), text)


def mask_token(token: str | None) -> str:
    if not token:
        return ""
    return f"…{token[-4:]}" if len(token) > 8 else "…"


def mask_recipient(channel: str, to: str | None, token: str | None, user_id: str | None) -> str:
    """Who a notification goes to, as summaries and the Web UI may show it."""
    if channel == "email":
        return mask_email(to)
    return mask_token(token) if token else f"user {user_id}"


def _mask_word(word: str) -> str:
    return f"{word[:1]}***" if word else "***"
