"""Turning a payload into the subject and bodies that are sent: raw content or a Jinja2 template.

Rendering happens at enqueue (the client calls `render_email` / `render_push`), so an
unknown template or a missing variable is the caller's error, named by field,
before anything is stored, instead of a failure discovered at send time.

Rules, in order:
- raw content given (`html`/`text` for email, `title`/`message` for push): it is sent
  as is and `type` is only a label (the seed sends type "welcome" with its own html);
- otherwise `type` names a template folder `<type>/` holding `subject.txt`,
  `body.html`, `body.txt` (optional: derived from the html) and, for push,
  `push_title.txt` and `push_body.txt`; `data` holds its variables.
Variables are StrictUndefined (a missing one is an error, not an empty string) and
html templates are autoescaped, so user data cannot inject markup.
Operators extend or override templates with TEMPLATES_DIR, searched first.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
)

from notifications.errors import NotificationValidationError
from notifications.schemas import EmailNotification, PushNotification

BUILTIN_TEMPLATES = Path(__file__).resolve().parent / "templates"

EMAIL_SUBJECT = "subject.txt"
EMAIL_HTML = "body.html"
EMAIL_TEXT = "body.txt"
PUSH_TITLE = "push_title.txt"
PUSH_BODY = "push_body.txt"


def _autoescape(name: str | None) -> bool:
    return bool(name) and ".html" in str(name)


# How every template renders: a missing variable is an error, blocks leave no blank lines.
RENDERING: dict[str, Any] = {
    "undefined": StrictUndefined,
    "trim_blocks": True,
    "lstrip_blocks": True,
    "keep_trailing_newline": False,
}


@lru_cache(maxsize=8)
def _environment(templates_dir: str | None) -> Environment:
    loaders = []
    if templates_dir:
        loaders.append(FileSystemLoader(templates_dir))
    loaders.append(FileSystemLoader(str(BUILTIN_TEMPLATES)))
    return Environment(loader=ChoiceLoader(loaders), autoescape=_autoescape, **RENDERING)


def environment(templates_dir: Path | str | None = None) -> Environment:
    """The template environment; TEMPLATES_DIR from the process settings when none is given."""
    if templates_dir is None:
        from notifications.config import get_settings

        templates_dir = get_settings().templates_dir
    return _environment(str(templates_dir) if templates_dir else None)


def template_names(templates_dir: Path | str | None = None) -> list[str]:
    """Every template type available (built-in and operator's), for CLIs and docs."""
    names = {name.split("/", 1)[0] for name in environment(templates_dir).list_templates() if "/" in name}
    return sorted(names)


def _has(env: Environment, name: str) -> bool:
    try:
        env.get_template(name)
    except TemplateNotFound:
        return False
    return True


_UNDEFINED = re.compile(r"'([^']+)' is undefined")
_NO_ATTRIBUTE = re.compile(r"has no attribute '([^']+)'")


def missing_variable(name: str, exc: UndefinedError) -> NotificationValidationError:
    """The error of template `name` rendered without a variable it needs: field `data.<variable>`."""
    message = str(exc.message or exc)
    match = _UNDEFINED.search(message) or _NO_ATTRIBUTE.search(message)
    field = f"data.{match.group(1)}" if match else "data"
    return NotificationValidationError([{"field": field, "message": f"template {name} needs it: {message}"}])


def _render(env: Environment, name: str, data: dict[str, Any]) -> str:
    try:
        return env.get_template(name).render(**data)
    except UndefinedError as exc:
        raise missing_variable(name, exc) from None
    except TemplateSyntaxError as exc:
        raise NotificationValidationError(
            [{"field": "type", "message": f"template {name} is broken (line {exc.lineno}): {exc.message}"}]
        ) from None
    except TemplateError as exc:
        raise NotificationValidationError([{"field": "data", "message": f"template {name}: {exc}"}]) from None


def _one_line(value: str) -> str:
    return " ".join(value.split())


def render_email(
    payload: EmailNotification,
    *,
    templates_dir: Path | str | None = None,
    unsubscribe_url: Callable[[], str] | None = None,
) -> tuple[str, str | None, str | None]:
    """(subject, html, text) of an email; raises NotificationValidationError naming the field.

    A template sees `unsubscribeUrl` (the one-click link, empty for a critical email) beside `data`."""
    if not payload.html and not payload.text and payload.type:
        env = environment(templates_dir)
        base = payload.type
        if _has(env, f"{base}/{EMAIL_HTML}") or _has(env, f"{base}/{EMAIL_TEXT}"):
            link = unsubscribe_url() if unsubscribe_url is not None and not payload.critical else ""
            return _render_email_template(env, payload, base, link)
        raise NotificationValidationError(
            [{"field": "type", "message": f"no email template named {payload.type!r} and no html or text given"}]
        )
    errors = []
    if not payload.subject:
        errors.append({"field": "subject", "message": "is required"})
    if not payload.html and not payload.text:
        errors.append({"field": "html", "message": "html or text is required (or a type naming a template)"})
    if errors:
        raise NotificationValidationError(errors)
    assert payload.subject is not None
    return payload.subject, payload.html, payload.text


def _render_email_template(
    env: Environment, payload: EmailNotification, base: str, unsubscribe_url: str
) -> tuple[str, str | None, str]:
    data = {"unsubscribeUrl": unsubscribe_url, **(payload.data or {})}
    html = _render(env, f"{base}/{EMAIL_HTML}", data).strip() if _has(env, f"{base}/{EMAIL_HTML}") else ""
    if _has(env, f"{base}/{EMAIL_TEXT}"):
        text = _render(env, f"{base}/{EMAIL_TEXT}", data).strip()
    else:
        text = html_to_text(html)
    if payload.subject:
        subject = payload.subject
    elif _has(env, f"{base}/{EMAIL_SUBJECT}"):
        subject = _one_line(_render(env, f"{base}/{EMAIL_SUBJECT}", data))
    else:
        raise NotificationValidationError(
            [{"field": "subject", "message": f"is required: template {base!r} has no {EMAIL_SUBJECT}"}]
        )
    if not subject:
        raise NotificationValidationError([{"field": "subject", "message": f"template {base!r} rendered empty"}])
    return subject, html or None, text


def render_push(payload: PushNotification, *, templates_dir: Path | str | None = None) -> tuple[str, str]:
    """(title, message) of a push."""
    if not payload.title and not payload.message and payload.type:
        env = environment(templates_dir)
        base = payload.type
        if _has(env, f"{base}/{PUSH_TITLE}") and _has(env, f"{base}/{PUSH_BODY}"):
            data = dict(payload.data or {})
            title = _one_line(_render(env, f"{base}/{PUSH_TITLE}", data))
            message = _render(env, f"{base}/{PUSH_BODY}", data).strip()
            if title and message:
                return title, message
            raise NotificationValidationError(
                [{"field": "type", "message": f"push template {base!r} rendered an empty title or message"}]
            )
        raise NotificationValidationError(
            [{"field": "type", "message": f"no push template named {payload.type!r} and no title/message given"}]
        )
    errors = []
    if not payload.title:
        errors.append({"field": "title", "message": "is required"})
    if not payload.message:
        errors.append({"field": "message", "message": "is required"})
    if errors:
        raise NotificationValidationError(errors)
    assert payload.title is not None and payload.message is not None
    return payload.title, payload.message


# -- html -> text ----------------------------------------------------------------------------------
_BLOCK_TAGS = {
    "p",
    "div",
    "br",
    "tr",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "ul",
    "ol",
    "blockquote",
    "hr",
    "section",
    "article",
    "header",
    "footer",
}
_SKIP_TAGS = {"style", "script", "head", "title"}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._href: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")
        if tag == "a":
            self._href.append(dict(attrs).get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")
        if tag == "a" and self._href:
            href = self._href.pop()
            if href and not href.startswith(("#", "mailto:")):
                self.parts.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(markup: str | None) -> str:
    """A readable text part from html: block tags become line breaks, links keep their URL."""
    if not markup:
        return ""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    raw = html_lib.unescape("".join(parser.parts))
    lines = [" ".join(line.split()) for line in raw.splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
