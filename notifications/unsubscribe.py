"""One-click unsubscribe (RFC 8058): the signed token of an email's `List-Unsubscribe` link.

The token names the tenant, the user (or, for an email sent without `userId`, the address) and
the notification type. It is signed with HMAC-SHA256 and its content encrypted with AES-SIV, both
keyed from `UNSUBSCRIBE_SECRET`: it cannot be guessed or altered, and a URL in a log shows no
address. Both are deterministic, so every attempt at one email carries the same headers (the
provider's idempotency key refuses the same key with another payload). In development the secret
is generated once under DATA_DIR, like the JWT secret; in production a missing one is a startup
error, since Gmail and Yahoo refuse bulk mail without one-click unsubscribe.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from notifications.auth import AuthConfigurationError, stored_dev_secret
from notifications.config import Settings
from notifications.preferences import address_subject, tenant_key, user_subject

DEV_SECRET_FILE = "unsubscribe-secret"
ONE_CLICK = "List-Unsubscribe=One-Click"  # the List-Unsubscribe-Post header's value, and the POST body


@dataclass(frozen=True)
class Target:
    """Who unsubscribes from what."""

    tenant: str
    user_id: str | None
    address: str | None
    type: str | None

    @property
    def subject(self) -> str:
        """The preferences subject the opt-out is written to."""
        return user_subject(self.user_id) if self.user_id else address_subject(self.address or "")


class UnsubscribeTokens:
    def __init__(self, secret: str, public_url: str) -> None:
        self._cipher = AESSIV(_derive(secret, b"encrypt", 64))
        self._mac_key = _derive(secret, b"sign", 32)
        self._base = public_url.rstrip("/")

    @classmethod
    def from_settings(cls, settings: Settings) -> UnsubscribeTokens:
        return cls(unsubscribe_secret(settings), settings.public_base_url)

    def token(self, tenant: str | None, user_id: str | None, address: str | None, type_: str | None) -> str:
        body = {"t": tenant_key(tenant), "k": type_}
        body.update({"u": user_id} if user_id else {"a": (address or "").strip().lower()})
        sealed = self._cipher.encrypt(json.dumps(body, separators=(",", ":")).encode(), None)
        return f"{_b64(sealed)}.{_b64(self._sign(sealed))}"

    def url(self, tenant: str | None, user_id: str | None, address: str | None, type_: str | None) -> str:
        return f"{self._base}/unsubscribe/{self.token(tenant, user_id, address, type_)}"

    def read(self, token: str) -> Target | None:
        """The target of a token this secret issued; None for anything else."""
        sealed_text, _, signature = token.partition(".")
        try:
            sealed = _unb64(sealed_text)
            if not hmac.compare_digest(_unb64(signature), self._sign(sealed)):
                return None
            body: Any = json.loads(self._cipher.decrypt(sealed, None))
        except (InvalidTag, ValueError, TypeError, binascii.Error):
            return None
        if not isinstance(body, dict) or not isinstance(body.get("t"), str) or not (body.get("u") or body.get("a")):
            return None
        return Target(tenant=body["t"], user_id=body.get("u"), address=body.get("a"), type=body.get("k"))

    def _sign(self, sealed: bytes) -> bytes:
        return hmac.new(self._mac_key, sealed, hashlib.sha256).digest()


def _derive(secret: str, purpose: bytes, size: int) -> bytes:
    return hashlib.shake_256(b"notifications/unsubscribe/" + purpose + b"\0" + secret.encode()).digest(size)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def one_click_headers(url: str) -> dict[str, str]:
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": ONE_CLICK}


def unsubscribe_secret(settings: Settings) -> str:
    if settings.unsubscribe_secret is not None:
        return settings.unsubscribe_secret.get_secret_value()
    if settings.is_production:
        raise AuthConfigurationError(
            "UNSUBSCRIBE_SECRET is required in production: it signs the one-click unsubscribe links"
        )
    return stored_dev_secret(settings, DEV_SECRET_FILE)
