"""The fast path for plain addresses agrees with pydantic's EmailStr on every address it takes."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, EmailStr, TypeAdapter, ValidationError

from notifications.emails import FastEmailStr, plain_email
from notifications.errors import NotificationValidationError
from notifications.schemas import EmailNotification, validate_payload

EMAIL = TypeAdapter(EmailStr)


class Fast(BaseModel):
    to: FastEmailStr


@pytest.mark.parametrize(
    "address",
    [
        "amina@example.com",
        "Amina.Otieno+news@Mail.Example.CO.KE",
        "o'brien@example.org",
        "a@b.io",
        "x_y-z@sub-domain.example.museum",
    ],
)
def test_a_plain_address_is_normalised_as_emailstr_does(address: str) -> None:
    assert plain_email(address) == EMAIL.validate_python(address)
    assert Fast(to=address).to == EMAIL.validate_python(address)


@pytest.mark.parametrize(
    "address",
    [
        "jürgen@example.de",  # not ASCII: email-validator decides
        "amina@xn--bcher-kva.example",  # an IDN in its ASCII form
        '"quoted local"@example.com',
        "someone@localhost.local",  # special-use domain
        "a@example",  # no TLD
        "a..b@example.com",
        " amina@example.com",
    ],
)
def test_anything_else_goes_through_emailstr(address: str) -> None:
    assert plain_email(address) is None
    try:
        expected: str | None = EMAIL.validate_python(address)
    except ValidationError:
        expected = None
    if expected is None:
        with pytest.raises(ValidationError):
            Fast(to=address)
    else:
        assert Fast(to=address).to == expected


def test_a_payload_names_the_field_of_a_bad_address() -> None:
    with pytest.raises(NotificationValidationError) as info:
        validate_payload(EmailNotification, {"to": "not-an-address", "subject": "s", "text": "t"})
    assert info.value.errors[0]["field"] == "to"
    assert "email" in info.value.errors[0]["message"]


def test_the_openapi_schema_still_says_email() -> None:
    assert EmailNotification.model_json_schema()["properties"]["to"]["format"] == "email"
