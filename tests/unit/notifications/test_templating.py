"""Jinja2 templates: rendering, autoescaping, derived text, operator overrides, template errors.

The errors at enqueue time (nothing stored) are in tests/integration/notifications/test_templating.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from notifications.config import get_settings
from notifications.errors import NotificationValidationError
from notifications.schemas import EmailNotification, PushNotification
from notifications.templating import html_to_text, render_email, render_push, template_names


def email(**fields: object) -> EmailNotification:
    return EmailNotification.model_validate({"to": "amina@example.com", **fields})


def push(**fields: object) -> PushNotification:
    return PushNotification.model_validate({"userId": "u1", **fields})


def test_builtin_templates_render_email_and_push() -> None:
    assert {"welcome", "appointment_reminder", "test"} <= set(template_names())
    subject, html, text = render_email(
        email(
            type="appointment_reminder",
            data={
                "name": "Amina",
                "provider_name": "Dr. Otieno",
                "appointment_time": "12 May 2026, 10:00",
                "location": "Nairobi clinic",
            },
        )
    )
    assert subject == "Reminder: your appointment on 12 May 2026, 10:00"
    assert text is not None and html is not None and "<strong>12 May 2026, 10:00</strong> at Nairobi clinic" in html
    assert "with Dr. Otieno on 12 May 2026, 10:00 at Nairobi clinic." in text
    assert "<" not in text and "Appointment reminder" in text

    title, message = render_push(push(type="welcome", data={"name": "Amina"}))
    assert (title, message) == ("Welcome to Uzima Health", "Hi Amina, thanks for joining!")
    subject, _html, text = render_email(email(type="test"))
    assert text is not None and subject == "Test notification" and "delivery works" in text


def test_html_is_autoescaped_and_subject_is_not() -> None:
    subject, html, text = render_email(email(type="welcome", data={"name": "<script>alert(1)</script>"}))
    assert text is not None and html is not None and "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert subject == "Welcome to Uzima Health, <script>alert(1)</script>"  # a header, not markup
    assert "Welcome, <script>alert(1)</script>!" in text


def test_raw_content_wins_and_type_is_a_label() -> None:
    assert render_email(email(type="welcome", subject="Hi", html="<p>raw</p>")) == ("Hi", "<p>raw</p>", None)
    assert render_email(email(type="no_such_template", subject="Hi", text="raw")) == ("Hi", None, "raw")
    assert render_push(push(type="welcome", title="T", message="M")) == ("T", "M")
    # a subject given with a template overrides the template's subject
    subject, _, _ = render_email(email(type="welcome", subject="Custom", data={"name": "A"}))
    assert subject == "Custom"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"type": "welcome"}, "data.name"),
        ({"type": "appointment_reminder", "data": {"name": "A", "appointment_time": "10:00"}}, "data.provider_name"),
        ({"type": "no_such_template"}, "type"),
        ({}, "subject"),
    ],
)
def test_template_errors_name_the_field(payload: dict[str, object], field: str) -> None:
    with pytest.raises(NotificationValidationError) as info:
        render_email(email(**payload))
    assert info.value.errors[0]["field"] == field


def test_push_template_errors() -> None:
    with pytest.raises(NotificationValidationError) as info:
        render_push(push(type="appointment_reminder", data={"name": "A"}))
    assert info.value.errors[0]["field"] == "data.provider_name"
    with pytest.raises(NotificationValidationError) as info:
        render_push(push(type="nothing_here"))
    assert info.value.errors[0]["field"] == "type"


def test_html_to_text() -> None:
    markup = (
        "<html><head><style>p{}</style></head><body><h1>Title</h1><p>One &amp; two<br>three</p>"
        "<ul><li>a</li><li>b</li></ul><a href='https://x.test/'>link</a></body></html>"
    )
    assert html_to_text(markup) == "Title\n\nOne & two\nthree\n\n- a\n\n- b\n\nlink (https://x.test/)"


@pytest.fixture
def operator_templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "operator-templates"
    (folder / "promo").mkdir(parents=True)
    (folder / "promo" / "subject.txt").write_text("{{ percent }}% off")
    (folder / "promo" / "body.html").write_text("<p>Save {{ percent }}%</p>")
    (folder / "promo" / "body.txt").write_text("Save {{ percent }} percent")
    (folder / "test").mkdir()
    (folder / "test" / "subject.txt").write_text("Overridden test")
    monkeypatch.setenv("TEMPLATES_DIR", str(folder))
    get_settings.cache_clear()
    yield folder
    monkeypatch.delenv("TEMPLATES_DIR")
    get_settings.cache_clear()


def test_templates_dir_extends_and_overrides(operator_templates: Path) -> None:
    assert render_email(email(type="promo", data={"percent": 20})) == ("20% off", "<p>Save 20%</p>", "Save 20 percent")
    subject, html, _ = render_email(email(type="test"))
    assert subject == "Overridden test" and html is not None and "delivery works" in html  # body still built-in
    assert "promo" in template_names()
