"""The environment variables that choose and configure the providers, as Settings reads them."""

from __future__ import annotations

import pytest

from notifications.config import Settings


def test_settings_names(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "EMAIL_PROVIDER": "smtp",
        "SMTP_HOST": "relay",
        "SMTP_SECURITY": "tls",
        "FCM_PROJECT_ID": "p1",
        "FCM_API_URL": "http://x",
        "CIRCUIT_FAILURE_THRESHOLD": "3",
        "CIRCUIT_COOLDOWN_SECONDS": "12",
        "TEMPLATES_DIR": "/srv/t",
    }.items():
        monkeypatch.setenv(name, value)
    s = Settings()
    assert (s.email_provider, s.smtp_host, s.smtp_security, s.fcm_project_id, s.fcm_api_url) == (
        "smtp",
        "relay",
        "tls",
        "p1",
        "http://x",
    )
    assert (s.circuit_failure_threshold, s.circuit_cooldown_seconds, str(s.templates_dir)) == (3, 12.0, "/srv/t")


def test_the_web_ui_the_dashboard_links_to() -> None:
    assert Settings(temporal_address="temporal:7233").web_ui_base_url == "http://temporal:8233"
    assert Settings(temporal_address="127.0.0.1:7233", temporal_ui_port=9000).web_ui_base_url == "http://127.0.0.1:9000"
    assert Settings(temporal_ui_url="https://ui.example.com/").web_ui_base_url == "https://ui.example.com"
