"""One campaign's content, compiled once and rendered per recipient.

Unlike a single notification's raw html, a campaign's inline subject/html/text/title/message are
Jinja templates, since one message goes to many people with their own `data`. They follow
templating.py's rules: StrictUndefined (a variable missing for a recipient raises
NotificationValidationError naming `data.<name>`), the html autoescaped, the subject and title one
line, the text derived from the html when there is none. Without inline content, `type` names a
template folder as for a single notification. Templates are compiled in `__init__` (a syntax error
names the field); `render_*` only runs them, so a render costs tens of microseconds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from notifications.errors import NotificationValidationError
from notifications.schemas import MAX_BODY, MAX_SUBJECT, NAME_PATTERN
from notifications.templating import (
    EMAIL_HTML,
    EMAIL_SUBJECT,
    EMAIL_TEXT,
    PUSH_BODY,
    PUSH_TITLE,
    RENDERING,
    _one_line,
    environment,
    html_to_text,
    missing_variable,
)
from notifications.types import Channel

MAX_TITLE = 1024  # PushNotification's limits
MAX_MESSAGE = 4096
_CACHE_SIZE = 32  # templates of one campaign: its own, a layout, includes

_NAME = re.compile(NAME_PATTERN)


@dataclass(frozen=True)
class CampaignContent:
    channel: str
    type: str | None
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    title: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class _Part:
    template: Template
    name: str  # in messages: the inline field ("html") or the template file ("welcome/body.html")
    field: str  # a broken template is reported as this field: the inline one, or "type"

    def render(self, data: Mapping[str, Any]) -> str:
        try:
            return self.template.render(data)
        except UndefinedError as exc:
            raise missing_variable(self.name, exc) from None
        except SecurityError as exc:  # the sandbox refused an attribute or a call
            raise NotificationValidationError(
                [{"field": self.field, "message": f"template {self.name}: {exc}"}]
            ) from None
        except TemplateNotFound as exc:  # an {% extends %} or {% include %} of a missing file
            raise NotificationValidationError(
                [{"field": self.field, "message": f"template {self.name} uses {exc.name!r}, which does not exist"}]
            ) from None
        except TemplateSyntaxError as exc:  # in a layout or include, loaded at its first render
            raise NotificationValidationError(
                [{"field": self.field, "message": f"template {exc.name or self.name} is broken (line {exc.lineno})"}]
            ) from None
        except TemplateError as exc:
            raise NotificationValidationError([{"field": "data", "message": f"template {self.name}: {exc}"}]) from None
        except (TypeError, ValueError, LookupError, ArithmeticError, AttributeError) as exc:
            # e.g. arithmetic on a CSV cell (always a string): one recipient's data, not the campaign's
            # fault. The exception's text could quote a data value, so only its kind is said.
            raise NotificationValidationError(
                [{"field": "data", "message": f"template {self.name} failed on this data ({type(exc).__name__})"}]
            ) from None


class CampaignTemplates:
    """A campaign's content compiled once; `render_email` / `render_push` (or `render`) per recipient."""

    def __init__(self, content: CampaignContent, *, templates_dir: str | Path | None = None) -> None:
        if content.channel not in (Channel.EMAIL, Channel.PUSH):
            raise NotificationValidationError([{"field": "channel", "message": "must be email or push"}])
        if content.type is not None and not _NAME.fullmatch(content.type):
            raise NotificationValidationError([{"field": "type", "message": f"must match {NAME_PATTERN}"}])
        self.channel = content.channel
        self.type = content.type
        base = environment(templates_dir)
        # Own caches and no auto_reload: a template (and the layout it extends) is loaded once,
        # without the stat of its file that auto_reload costs at every render.
        self._text_env = base.overlay(auto_reload=False, cache_size=_CACHE_SIZE)
        self._html_env = base.overlay(autoescape=True, auto_reload=False, cache_size=_CACHE_SIZE)
        # Inline templates come from the API's caller: rendered in Jinja's sandbox, where they can
        # reach no Python attribute (`__globals__` ...) that would run code on the server.
        self._inline_text = _sandbox(base, autoescape=False)
        self._inline_html = _sandbox(base, autoescape=True)
        self._errors: list[dict[str, str]] = []
        self._subject: _Part | None = None
        self._html: _Part | None = None
        self._text: _Part | None = None
        self._title: _Part | None = None
        self._message: _Part | None = None
        if content.channel == Channel.EMAIL:
            self._compile_email(content)
        else:
            self._compile_push(content)
        if self._errors:
            raise NotificationValidationError(self._errors)

    # -- compiling ---------------------------------------------------------------------------------

    def _inline(self, field: str, source: str, *, html: bool = False) -> _Part | None:
        env = self._inline_html if html else self._inline_text
        try:
            return _Part(env.from_string(source), field, field)
        except TemplateSyntaxError as exc:
            self._errors.append(
                {"field": field, "message": f"template syntax error (line {exc.lineno}): {exc.message}"}
            )
            return None

    def _file(self, name: str) -> _Part | None:
        """The type's template `name`, None when it has no such file."""
        path = f"{self.type}/{name}"
        try:
            return _Part(self._text_env.get_template(path), path, "type")
        except TemplateNotFound:
            return None
        except TemplateSyntaxError as exc:
            self._errors.append(
                {"field": "type", "message": f"template {path} is broken (line {exc.lineno}): {exc.message}"}
            )
            return None

    def _compile_email(self, content: CampaignContent) -> None:
        if content.html or content.text:
            if content.subject:
                self._subject = self._inline("subject", content.subject)
            else:
                self._errors.append({"field": "subject", "message": "is required"})
            if content.html:
                self._html = self._inline("html", content.html, html=True)
            if content.text:
                self._text = self._inline("text", content.text)
            return
        if not content.type:
            if not content.subject:
                self._errors.append({"field": "subject", "message": "is required"})
            self._errors.append({"field": "html", "message": "html or text is required (or a type naming a template)"})
            return
        self._html, self._text = self._file(EMAIL_HTML), self._file(EMAIL_TEXT)
        if self._html is None and self._text is None:
            if not self._errors:
                self._errors.append(
                    {"field": "type", "message": f"no email template named {content.type!r} and no html or text given"}
                )
            return
        if content.subject:
            self._subject = self._inline("subject", content.subject)
        else:
            self._subject = self._file(EMAIL_SUBJECT)
            if self._subject is None and not self._errors:
                self._errors.append(
                    {"field": "subject", "message": f"is required: template {content.type!r} has no {EMAIL_SUBJECT}"}
                )

    def _compile_push(self, content: CampaignContent) -> None:
        if content.title or content.message:
            for field, source in (("title", content.title), ("message", content.message)):
                if source:
                    setattr(self, f"_{field}", self._inline(field, source))
                else:
                    self._errors.append({"field": field, "message": "is required"})
            return
        if not content.type:
            self._errors += [
                {"field": "title", "message": "is required"},
                {"field": "message", "message": "is required"},
            ]
            return
        self._title, self._message = self._file(PUSH_TITLE), self._file(PUSH_BODY)
        if (self._title is None or self._message is None) and not self._errors:
            self._errors.append(
                {"field": "type", "message": f"no push template named {content.type!r} and no title/message given"}
            )

    # -- rendering ---------------------------------------------------------------------------------

    def render_email(
        self, data: Mapping[str, Any], *, unsubscribe_url: str | None = None
    ) -> tuple[str, str | None, str]:
        """(subject, html, text); the text is derived from the html when the campaign has none.

        Templates see `unsubscribeUrl` (the layout's footer needs it): `unsubscribe_url` when
        given, wins over the data's; otherwise the data's, or ""."""
        if self.channel != Channel.EMAIL or self._subject is None:
            raise TypeError(f"a {self.channel} campaign renders with render_push")
        if unsubscribe_url is None:
            data = {"unsubscribeUrl": "", **data}
        else:
            data = {**data, "unsubscribeUrl": unsubscribe_url}
        subject = _one_line(self._subject.render(data))
        html = self._html.render(data).strip() if self._html is not None else ""
        text = self._text.render(data).strip() if self._text is not None else html_to_text(html)
        _check(self._subject, subject, MAX_SUBJECT)
        body = self._html or self._text
        assert body is not None
        _check(body, html or text, MAX_BODY)
        _check(body, text, MAX_BODY, empty_ok=True)
        return subject, html or None, text

    def render_push(self, data: Mapping[str, Any]) -> tuple[str, str]:
        """(title, message)."""
        if self.channel != Channel.PUSH or self._title is None or self._message is None:
            raise TypeError(f"a {self.channel} campaign renders with render_email")
        title = _one_line(self._title.render(data))
        message = self._message.render(data).strip()
        _check(self._title, title, MAX_TITLE)
        _check(self._message, message, MAX_MESSAGE)
        return title, message

    def render(self, data: Mapping[str, Any]) -> tuple[str, str | None, str] | tuple[str, str]:
        """render_email's (subject, html, text) or render_push's (title, message), by channel."""
        return self.render_email(data) if self.channel == Channel.EMAIL else self.render_push(data)


def _sandbox(base: Environment, *, autoescape: bool) -> Environment:
    return ImmutableSandboxedEnvironment(
        loader=base.loader, autoescape=autoescape, auto_reload=False, cache_size=_CACHE_SIZE, **RENDERING
    )


def _check(part: _Part, value: str, limit: int, *, empty_ok: bool = False) -> None:
    if not value and not empty_ok:
        message = f"template {part.name} rendered empty"
    elif len(value) > limit:
        message = f"template {part.name} rendered more than {limit} characters"
    else:
        return
    raise NotificationValidationError([{"field": part.field, "message": message}])
