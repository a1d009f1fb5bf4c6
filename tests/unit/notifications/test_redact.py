"""Masking personal data in free text: what a provider's error message or a log line may carry."""

from __future__ import annotations

from notifications.redact import mask_emails_in


def test_addresses_inside_text_are_masked_and_the_rest_kept() -> None:
    text = "550 5.1.1 <Jane.Doe+news@mail.example.co.uk>: user unknown; also bob@example.com"
    masked = mask_emails_in(text)
    assert "Jane.Doe" not in masked and "bob@example.com" not in masked
    assert masked == "550 5.1.1 <J***@m***.uk>: user unknown; also b***@e***.com"
    assert mask_emails_in("no address here") == "no address here"
