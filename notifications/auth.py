"""JWT bearer tokens for the admin API: minting (CLI, `notifications dev`) and verification (API).

Two key setups, chosen by the settings:
- HS256 with `JWT_SECRET`: one shared secret signs and verifies;
- RS256 with `JWT_PUBLIC_KEY` (verification) and optionally `JWT_PRIVATE_KEY` (minting), for
  deployments where an identity provider signs tokens and the API only holds the public key.

In development, with neither configured, a random secret is generated once and kept in
`DATA_DIR/api-jwt-secret` (mode 0600) so `notifications dev`'s API and `notifications token`
agree across processes. In production a missing key is a startup error, never a silent default.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jwt

from notifications.config import Settings
from notifications.errors import NotificationError

Role = Literal["admin", "service"]
ROLES: tuple[str, ...] = ("admin", "service", "codec")  # codec: decode payloads only (Web UI)
DEV_SECRET_FILE = "api-jwt-secret"


class AuthConfigurationError(NotificationError):
    """The API cannot verify tokens with the current settings; it refuses to start."""


class InvalidTokenError(NotificationError):
    """The bearer token is missing, malformed, badly signed, expired or lacks required claims."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the verified claims the API acts on."""

    subject: str
    role: str
    tenant: str | None = None
    use: str | None = None  # a token minted for one purpose only (the dashboard's link and session)


@dataclass(frozen=True)
class KeySet:
    algorithm: Literal["HS256", "RS256"]
    verify_key: Any
    signing_key: Any | None


def _pem(value: str) -> str:
    """Keys may be given inline (PEM text) or as a path to a PEM file."""
    if "-----BEGIN" in value:
        return value
    return Path(value).expanduser().read_text()


def dev_secret(settings: Settings) -> str:
    """The development JWT secret under DATA_DIR, created on first use (atomically, owner-only)."""
    return stored_dev_secret(settings, DEV_SECRET_FILE)


def stored_dev_secret(settings: Settings, name: str) -> str:
    """A development secret kept in DATA_DIR/<name>: every process of `notifications dev` agrees on it."""
    path = settings.data_dir / name
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process (the CLI, the dev API) won the race: use its secret
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return secret


def key_set(settings: Settings) -> KeySet:
    if settings.jwt_public_key:
        try:
            public = _pem(settings.jwt_public_key)
            private = _pem(settings.jwt_private_key.get_secret_value()) if settings.jwt_private_key else None
        except OSError as exc:
            raise AuthConfigurationError(f"cannot read the JWT key: {exc}") from None
        return KeySet("RS256", public, private)
    if settings.jwt_secret is not None and settings.jwt_secret.get_secret_value():
        secret = settings.jwt_secret.get_secret_value()
        if len(secret.encode()) < 32:
            raise AuthConfigurationError("JWT_SECRET must be at least 32 bytes long")
        return KeySet("HS256", secret, secret)
    if settings.is_production:
        raise AuthConfigurationError(
            "the admin API needs JWT_SECRET (HS256) or JWT_PUBLIC_KEY (RS256) in production; "
            "refusing to start without a way to verify tokens"
        )
    secret = dev_secret(settings)
    return KeySet("HS256", secret, secret)


def mint_token(
    settings: Settings,
    *,
    role: str,
    ttl_seconds: float,
    subject: str | None = None,
    tenant: str | None = None,
    keys: KeySet | None = None,
    jti: str | None = None,
    use: str | None = None,
) -> str:
    """A signed token; `jti` names it (a link used once, a session ended by signing out) and `use`
    limits it to one purpose: the admin API refuses a token that has one."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    keys = keys or key_set(settings)
    if keys.signing_key is None:
        raise AuthConfigurationError("minting RS256 tokens needs JWT_PRIVATE_KEY")
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject or f"{role}-cli",
        "role": role,
        "iat": now,
        "exp": now + max(1, int(ttl_seconds)),
    }
    if tenant:
        claims["tenant"] = tenant
    if jti:
        claims["jti"] = jti
    if use:
        claims["use"] = use
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, keys.signing_key, algorithm=keys.algorithm)


def verify_token(settings: Settings, token: str, keys: KeySet) -> Principal:
    """Only the configured algorithm is accepted (no `alg: none`, no HS/RS confusion)."""
    try:
        claims = jwt.decode(
            token,
            keys.verify_key,
            algorithms=[keys.algorithm],
            options={"require": ["exp", "sub"], "verify_aud": settings.jwt_audience is not None},
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway_seconds,
        )
    except jwt.ExpiredSignatureError:
        raise InvalidTokenError("token expired") from None
    except jwt.PyJWTError as exc:
        raise InvalidTokenError(f"invalid token: {type(exc).__name__}") from None
    subject, role, tenant, use = claims.get("sub"), claims.get("role"), claims.get("tenant"), claims.get("use")
    if not isinstance(subject, str) or not subject:
        raise InvalidTokenError("invalid token: sub must be a non-empty string")
    if not isinstance(role, str):
        raise InvalidTokenError("invalid token: missing role claim")
    if tenant is not None and (not isinstance(tenant, str) or not tenant):
        raise InvalidTokenError("invalid token: tenant must be a non-empty string")
    if use is not None and not isinstance(use, str):
        raise InvalidTokenError("invalid token: use must be a string")
    return Principal(subject=subject[:128], role=role, tenant=tenant, use=use)


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a token `verify_token` has accepted (its expiry and ID), without checking again."""
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def parse_ttl(value: str) -> float:
    """`90`, `90s`, `15m`, `1h`, `7d` -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = value.strip().lower()
    try:
        if text and text[-1] in units:
            seconds = float(text[:-1]) * units[text[-1]]
        else:
            seconds = float(text)
    except ValueError:
        raise ValueError(f"invalid duration {value!r}: use e.g. 90s, 15m, 1h or 7d") from None
    if seconds <= 0:
        raise ValueError("the duration must be positive")
    return seconds
