"""A campaign's content: inline Jinja templates or a type's, compiled once and rendered per recipient."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifications.campaign_content import CampaignContent, CampaignTemplates
from notifications.errors import NotificationValidationError


def email(**fields: str) -> CampaignContent:
    return CampaignContent(channel="email", type=fields.pop("type", None), **fields)


def push(**fields: str) -> CampaignContent:
    return CampaignContent(channel="push", type=fields.pop("type", None), **fields)


def fields_of(exc: pytest.ExceptionInfo[NotificationValidationError]) -> list[str]:
    return [e["field"] for e in exc.value.errors]


def test_inline_templates_render_per_recipient() -> None:
    templates = CampaignTemplates(
        email(subject="Hello {{ name }}", html="<p>Your plan: {{ plan }}</p>", text="Plan {{ plan }}, {{ name }}")
    )
    assert templates.render_email({"name": "Amina", "plan": "gold"}) == (
        "Hello Amina",
        "<p>Your plan: gold</p>",
        "Plan gold, Amina",
    )
    assert templates.render({"name": "Otieno", "plan": "free"}) == (
        "Hello Otieno",
        "<p>Your plan: free</p>",
        "Plan free, Otieno",
    )


def test_html_is_autoescaped_subject_and_text_are_not() -> None:
    templates = CampaignTemplates(email(subject="Hi {{ name }} & co", html="<p>{{ name }}</p>", text="Hi {{ name }}"))
    assert templates.render_email({"name": "<b>Tom & Jerry</b>"}) == (
        "Hi <b>Tom & Jerry</b> & co",
        "<p>&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;</p>",
        "Hi <b>Tom & Jerry</b>",
    )


def test_text_derived_from_html_and_subject_made_one_line() -> None:
    templates = CampaignTemplates(
        email(subject="Hello\n  {{ name }}\n", html="<h1>Hi {{ name }}</h1><p><a href='{{ url }}'>Open</a></p>")
    )
    subject, html, text = templates.render_email({"name": "Amina", "url": "https://x.test/a?b=1&c=2"})
    assert subject == "Hello Amina"
    assert html == "<h1>Hi Amina</h1><p><a href='https://x.test/a?b=1&amp;c=2'>Open</a></p>"
    assert text == "Hi Amina\n\nOpen (https://x.test/a?b=1&c=2)"
    # text only: no html
    only_text = CampaignTemplates(email(subject="S", text="Hi {{ name }}"))
    assert only_text.render_email({"name": "Amina"}) == ("S", None, "Hi Amina")


def test_a_missing_variable_names_its_data_field() -> None:
    templates = CampaignTemplates(email(subject="Hi {{ name }}", html="<p>{{ plan }}</p>"))
    with pytest.raises(NotificationValidationError) as err:
        templates.render_email({"name": "Amina"})
    assert err.value.errors == [{"field": "data.plan", "message": "template html needs it: 'plan' is undefined"}]
    with pytest.raises(NotificationValidationError) as err:
        templates.render_email({"plan": "gold"})
    assert fields_of(err) == ["data.name"]
    nested = CampaignTemplates(email(subject="Order {{ order.id }}", text="x"))
    with pytest.raises(NotificationValidationError) as err:
        nested.render_email({"order": {}})
    assert fields_of(err) == ["data.id"]
    # the recipient after one with missing data renders: nothing is left over from a failed render
    assert templates.render_email({"name": "A", "plan": "p"})[0] == "Hi A"


def test_a_data_value_of_the_wrong_kind_is_the_recipients_error() -> None:
    templates = CampaignTemplates(email(subject="S", text="{{ count + 1 }}"))
    assert templates.render_email({"count": 1})[2] == "2"
    with pytest.raises(NotificationValidationError) as err:
        templates.render_email({"count": "secret@example.com"})  # a CSV cell is a string
    assert fields_of(err) == ["data"] and "secret" not in str(err.value)


def test_welcome_type_email_and_push() -> None:
    # welcome/body.html extends _layout.html: it needs `name`; `unsubscribeUrl` (the layout's
    # footer) is given by render_email; `login_url` is optional.
    templates = CampaignTemplates(email(type="welcome"))
    subject, html, text = templates.render_email({"name": "Amina"}, unsubscribe_url="https://u.test/1")
    assert subject == "Welcome to Uzima Health, Amina"
    assert html is not None and "<h1>Welcome, Amina!</h1>" in html and 'href="https://u.test/1"' in html
    assert "Sign in" not in html
    assert text.startswith("Welcome, Amina!") and "Unsubscribe (https://u.test/1)" in text
    _, html, _ = templates.render_email({"name": "<Amina>", "login_url": "https://x.test/login"})
    assert html is not None and "&lt;Amina&gt;" in html and "Sign in" in html and "Unsubscribe" not in html
    with pytest.raises(NotificationValidationError) as err:
        templates.render_email({})
    assert fields_of(err) == ["data.name"]
    # the campaign's link wins over a data column of the same name
    _, html, _ = templates.render_email({"name": "A", "unsubscribeUrl": "https://evil.test/"}, unsubscribe_url="")
    assert html is not None and "evil" not in html
    # an inline subject replaces the type's
    assert CampaignTemplates(email(type="welcome", subject="Hi {{ name }}")).render_email({"name": "A"})[0] == "Hi A"

    pushes = CampaignTemplates(push(type="welcome"))
    assert pushes.render_push({"name": "Amina"}) == ("Welcome to Uzima Health", "Hi Amina, thanks for joining!")
    assert pushes.render({"name": "Otieno"}) == ("Welcome to Uzima Health", "Hi Otieno, thanks for joining!")
    with pytest.raises(NotificationValidationError) as err:
        pushes.render_push({})
    assert fields_of(err) == ["data.name"]


def test_inline_push() -> None:
    templates = CampaignTemplates(push(title="Visit on\n{{ day }}", message="See you {{ day }}, {{ name }} & co"))
    assert templates.render_push({"day": "Monday", "name": "<Amina>"}) == (
        "Visit on Monday",
        "See you Monday, <Amina> & co",
    )
    with pytest.raises(NotificationValidationError) as err:
        templates.render_push({"day": ""})
    assert fields_of(err) == ["data.name"]
    with pytest.raises(NotificationValidationError) as err:
        CampaignTemplates(push(title="{{ x }}", message="m")).render_push({"x": " "})
    assert err.value.errors == [{"field": "title", "message": "template title rendered empty"}]
    with pytest.raises(TypeError):
        templates.render_email({})


def test_inline_html_may_extend_the_layout() -> None:
    templates = CampaignTemplates(
        email(subject="S", html='{% extends "_layout.html" %}{% block content %}<p>{{ name }}</p>{% endblock %}')
    )
    _, html, _ = templates.render_email({"name": "<A>"})
    assert html is not None and html.startswith("<!DOCTYPE html>") and "<p>&lt;A&gt;</p>" in html
    missing = CampaignTemplates(email(subject="S", html='{% extends "nope.html" %}'))
    with pytest.raises(NotificationValidationError) as err:
        missing.render_email({})
    assert fields_of(err) == ["html"]


def test_a_syntax_error_names_the_field() -> None:
    with pytest.raises(NotificationValidationError) as err:
        CampaignTemplates(email(subject="Hi {{ name", html="<p>ok</p>"))
    assert fields_of(err) == ["subject"] and "line 1" in err.value.errors[0]["message"]
    with pytest.raises(NotificationValidationError) as err:
        CampaignTemplates(email(subject="{{ a }", html="<p>\n{% if %}</p>", text="{{ x|no_such_filter }}"))
    assert fields_of(err) == ["subject", "html", "text"]
    assert "line 2" in err.value.errors[1]["message"]
    with pytest.raises(NotificationValidationError) as err:
        CampaignTemplates(push(title="ok", message="{% for %}"))
    assert fields_of(err) == ["message"]


def test_content_required() -> None:
    cases: list[tuple[CampaignContent, list[str]]] = [
        (email(), ["subject", "html"]),
        (email(subject="S"), ["html"]),
        (email(html="<p>x</p>"), ["subject"]),
        (email(type="no_such_type"), ["type"]),
        (email(type="../welcome"), ["type"]),
        (push(), ["title", "message"]),
        (push(title="t"), ["message"]),
        (push(type="no_such_type"), ["type"]),
        (CampaignContent(channel="sms", type=None, text="x"), ["channel"]),
    ]
    for content, expected in cases:
        with pytest.raises(NotificationValidationError) as err:
            CampaignTemplates(content)
        assert fields_of(err) == expected, content


def test_templates_dir(tmp_path: Path) -> None:
    folder = tmp_path / "promo"
    folder.mkdir()
    (folder / "subject.txt").write_text("{{ percent }}% off")
    (folder / "body.html").write_text("<p>Save {{ percent }}%</p>")
    (folder / "body.txt").write_text("Save {{ percent }} percent")
    (folder / "push_title.txt").write_text("{% if %}")
    templates = CampaignTemplates(email(type="promo"), templates_dir=tmp_path)
    assert templates.render_email({"percent": 20}) == ("20% off", "<p>Save 20%</p>", "Save 20 percent")
    # compiled once: editing the file later changes nothing for this campaign
    (folder / "body.txt").write_text("changed")
    assert templates.render_email({"percent": 5})[2] == "Save 5 percent"
    with pytest.raises(NotificationValidationError) as err:
        CampaignTemplates(push(type="promo"), templates_dir=tmp_path)
    assert fields_of(err) == ["type"] and "promo/push_title.txt is broken" in err.value.errors[0]["message"]


def test_inline_templates_run_in_the_sandbox() -> None:
    """A campaign's inline templates come from the API's caller: no Python attribute that runs code."""
    import pytest

    from notifications.campaign_content import CampaignContent, CampaignTemplates
    from notifications.errors import NotificationValidationError

    attack = "{{ lipsum.__globals__['os'].getpid() }}"
    templates = CampaignTemplates(CampaignContent("email", None, attack, "<p>{{ name }}</p>"))
    with pytest.raises(NotificationValidationError) as refused:
        templates.render_email({"name": "Ann"})
    assert refused.value.errors[0]["field"] == "subject" and "unsafe" in refused.value.errors[0]["message"]
    fine = CampaignTemplates(CampaignContent("email", None, "Hi {{ name|upper }}", "<p>{{ name }}</p>"))
    assert fine.render_email({"name": "<Ann>"})[:2] == ("Hi <ANN>", "<p>&lt;Ann&gt;</p>")
