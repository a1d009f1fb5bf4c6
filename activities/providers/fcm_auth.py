"""FCM credentials: a service account from the settings, or a static token for local fakes and proxies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import google.auth.credentials
from firebase_admin import credentials

from notifications.config import Settings
from notifications.errors import ProviderConfigurationError

DEV_TOKEN = "fcm-dev-token"


class StaticTokenCredentials(google.auth.credentials.Credentials):  # type: ignore[misc]
    """A bearer token that never expires and never refreshes: no OAuth call, ever."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.expiry = None

    def refresh(self, request: Any) -> None:
        return None

    @property
    def expired(self) -> bool:
        return False

    @property
    def valid(self) -> bool:
        return True


class StaticCredential(credentials.Base):  # type: ignore[misc]
    def __init__(self, token: str) -> None:
        self._g_credential = StaticTokenCredentials(token)

    def get_credential(self) -> google.auth.credentials.Credentials:
        return self._g_credential


def load_credential(settings: Settings) -> tuple[credentials.Base, str | None]:
    """(credential, project ID from it); ProviderConfigurationError saying what is missing or wrong."""
    if settings.fcm_credentials_json is not None:
        try:
            info = json.loads(settings.fcm_credentials_json.get_secret_value())
            cert = credentials.Certificate(info)
        except (ValueError, TypeError) as exc:
            raise ProviderConfigurationError(
                f"FCM_CREDENTIALS_JSON is not a service-account JSON: {type(exc).__name__}"
            ) from None
        return cert, cert.project_id
    if settings.google_application_credentials is not None:
        path = Path(settings.google_application_credentials).expanduser()
        if not path.is_file():
            raise ProviderConfigurationError(f"GOOGLE_APPLICATION_CREDENTIALS={path} does not exist")
        try:
            cert = credentials.Certificate(str(path))
        except (ValueError, TypeError, OSError) as exc:
            raise ProviderConfigurationError(
                f"GOOGLE_APPLICATION_CREDENTIALS={path} is not a service-account JSON: {exc}"
            ) from None
        return cert, cert.project_id
    if settings.fcm_api_url:
        return StaticCredential(DEV_TOKEN), None
    raise ProviderConfigurationError(
        "PUSH_PROVIDER=fcm needs service-account credentials: GOOGLE_APPLICATION_CREDENTIALS (a file) "
        "or FCM_CREDENTIALS_JSON (its content)"
    )
